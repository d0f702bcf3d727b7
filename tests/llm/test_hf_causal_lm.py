"""HFCausalLM on a tiny random Llama built in the test: batching, padding, seeds, truncation, scoring."""

from __future__ import annotations

import sys

import pytest
import torch

from darec.llm import ChoiceScorer, HFCausalLM, LLMBackend, PromptTruncatedWarning
from tests.llm.conftest import VOCAB

pytest.importorskip("transformers")

PROMPTS = [
    "the movie is good",
    "a user likes drama and comedy very very much",
    "old film",
    "one two three four five six seven eight nine",
    "the user dislikes loud action",
]


@pytest.fixture(scope="module")
def llm(tiny_llama) -> HFCausalLM:
    return HFCausalLM(tiny_llama, device="cpu", max_batch_size=2, progress=False)


def test_is_a_backend_and_a_scorer(llm):
    assert isinstance(llm, LLMBackend) and isinstance(llm, ChoiceScorer)
    assert llm.device.type == "cpu" and llm.model.dtype == torch.float32  # "auto" is float32 on the CPU
    assert llm.tokenizer.pad_token == "</s>" and llm.tokenizer.padding_side == "left"  # none in the tokenizer


def test_batched_answers_come_back_in_prompt_order(llm):
    answers = llm.generate(PROMPTS, max_new_tokens=6)
    assert len(answers) == len(PROMPTS) and all(isinstance(a, str) for a in answers)
    assert len(set(answers)) > 2, "the tiny model answers every prompt alike: the test could not see a reordering"
    assert llm.generate(PROMPTS[::-1], max_new_tokens=6) == answers[::-1]


def test_left_padding_gives_each_prompt_its_greedy_answer_alone(llm, monkeypatch):
    alone = [llm.generate([prompt], max_new_tokens=6)[0] for prompt in PROMPTS]
    assert llm.generate(PROMPTS, max_new_tokens=6) == alone  # batches of 2 prompts of similar lengths
    monkeypatch.setattr(llm, "max_batch_size", len(PROMPTS))
    assert llm.generate(PROMPTS, max_new_tokens=6) == alone  # one batch: prompts of 5 to 13 words


def test_greedy_by_default_and_seeded_sampling_reproduces(llm):
    assert llm.generate(PROMPTS[:3], max_new_tokens=6) == llm.generate(PROMPTS[:3], max_new_tokens=6, temperature=0)
    state = torch.get_rng_state()
    first = llm.generate(PROMPTS, max_new_tokens=8, temperature=1.5, seed=7)
    assert torch.equal(torch.get_rng_state(), state), "a seed must not change the global random state"
    assert llm.generate(PROMPTS, max_new_tokens=8, temperature=1.5, seed=7) == first
    assert llm.generate(PROMPTS, max_new_tokens=8, temperature=1.5, seed=8) != first
    assert first != llm.generate(PROMPTS, max_new_tokens=8)  # sampling really sampled


def _greedy_with_answer_penalty(llm, prompt, steps, penalty):
    """Naive reference: greedy decoding that penalises the tokens of the answer so far, not the prompt's."""
    ids = llm.tokenizer(llm.render(prompt), add_special_tokens=False)["input_ids"]
    answer = []
    with torch.no_grad():
        for _ in range(steps):
            logits = llm.model(torch.tensor([ids + answer])).logits[0, -1].clone()
            for token in set(answer):
                logits[token] = logits[token] / penalty if logits[token] > 0 else logits[token] * penalty
            answer.append(int(logits.argmax()))
            if answer[-1] in llm._eos_ids:
                break
    return llm.tokenizer.decode(answer, skip_special_tokens=True).strip()


def test_the_repetition_penalty_applies_to_the_answer_only(llm):
    for prompt in PROMPTS[:3]:
        expected = _greedy_with_answer_penalty(llm, prompt, 10, 5.0)
        assert llm.generate([prompt], max_new_tokens=10, repetition_penalty=5.0) == [expected]
    plain = llm.generate(PROMPTS, max_new_tokens=10)
    penalised = llm.generate(PROMPTS, max_new_tokens=10, repetition_penalty=5.0)
    assert penalised != plain  # the option reached generation
    # batched with left padding, each prompt keeps the answer it gets alone
    assert penalised == [llm.generate([p], max_new_tokens=10, repetition_penalty=5.0)[0] for p in PROMPTS]


def test_chat_template_wraps_each_prompt_with_the_system_prompt(llm, monkeypatch):
    assert llm.chat
    assert llm.render("old film", system="one two") == (
        "<|im_start|>system one two<|im_end|> <|im_start|>user old film<|im_end|> <|im_start|>assistant "
    )
    seen = []
    original = llm.model.generate
    monkeypatch.setattr(llm.model, "generate", lambda **kw: seen.append(kw["input_ids"].clone()) or original(**kw))
    llm.generate(["old film"], max_new_tokens=2, system="one two")
    expected = llm.tokenizer(llm.render("old film", system="one two"), add_special_tokens=False)["input_ids"]
    assert seen[0][0].tolist() == expected


def test_a_tokenizer_without_chat_template_gets_the_plain_prompt(tiny_llama_plain):
    plain = HFCausalLM(tiny_llama_plain, device="cpu", progress=False)
    assert not plain.chat
    assert plain.render("old film") == "old film"
    assert plain.render("old film", system="one two") == "one two\n\nold film"
    assert len(plain.generate(["old film", "the movie is good"], max_new_tokens=3)) == 2


def test_a_response_prefix_is_tokenized_after_the_chat_template_and_starts_the_answer(llm, tiny_llama_plain, monkeypatch):
    prefix = "summary one "  # words of the tiny vocabulary; the trailing space keeps the answer's words apart
    assert llm.render("old film", response_prefix=prefix) == llm.render("old film") + prefix
    seen = []
    original = llm.model.generate
    monkeypatch.setattr(llm.model, "generate", lambda **kw: seen.append(kw["input_ids"].clone()) or original(**kw))
    prefilled = llm.generate(["old film"], max_new_tokens=4, response_prefix=prefix)[0]
    plain = llm.generate(["old film"], max_new_tokens=4)[0]
    vocab = llm.tokenizer.get_vocab()
    assert seen[0][0].tolist() == llm.tokenizer(llm.render("old film") + prefix, add_special_tokens=False)["input_ids"]
    assert seen[0][0].tolist()[-2:] == [vocab["summary"], vocab["one"]]  # after the template's answer prompt
    assert seen[1][0].tolist() == seen[0][0].tolist()[:-2]  # and only when asked for
    assert prefilled.startswith(prefix) and not plain.startswith("summary")
    plain_model = HFCausalLM(tiny_llama_plain, device="cpu", progress=False)  # no chat template: after the prompt
    assert plain_model.render("old film", system="one", response_prefix=" summary") == "one\n\nold film summary"


def test_an_over_long_prompt_is_cut_to_the_context_with_a_warning_naming_it(llm):
    long_prompt = " ".join(["the movie is very good"] * 20)  # 100 words; the context holds 64 tokens
    with pytest.warns(PromptTruncatedWarning, match=r"prompt 1 has \d+ tokens, more than the 56 that fit"):
        answers = llm.generate(["old film", long_prompt], max_new_tokens=8)
    assert len(answers) == 2
    with pytest.warns(PromptTruncatedWarning):
        ids = llm._encode(1, long_prompt, None, 8)
    assert 50 <= len(ids) <= 56 and ids[-3:] == llm._ids("x", None)[-3:]  # the answer turn is kept
    with pytest.raises(ValueError, match="prompt 0: the chat template and system prompt leave no room"):
        llm.generate(["old film"], max_new_tokens=64)


def test_choice_logits_agree_with_a_forward_pass(llm):
    prompt = "the movie is good"
    scores = llm.choice_logits(prompt, ["Yes", "No", "maybe"])
    assert scores.shape == (3,) and scores.dtype == torch.float32
    ids = llm.tokenizer(llm.render(prompt), add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        log_probs = llm.model(input_ids=ids).logits[0, -1].log_softmax(-1)
    vocab = llm.tokenizer.get_vocab()
    torch.testing.assert_close(scores, log_probs[[vocab["Yes"], vocab["No"], vocab["maybe"]]])


def test_choice_logits_of_whole_options_sum_their_tokens(llm):
    prompt = "old film"
    scores = llm.choice_logits(prompt, ["very good", "bad"], full=True)
    vocab = llm.tokenizer.get_vocab()
    ids = llm.tokenizer(llm.render(prompt), add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        log_probs = llm.model(input_ids=torch.tensor([ids + [vocab["very"], vocab["good"]]])).logits[0].log_softmax(-1)
    expected = log_probs[len(ids) - 1, vocab["very"]] + log_probs[len(ids), vocab["good"]]
    torch.testing.assert_close(scores[0], expected)
    torch.testing.assert_close(scores[1], llm.choice_logits(prompt, ["bad"])[0])
    with pytest.raises(ValueError, match=r"options 0 \('very good'\) and 1 \('very bad'\) start with the same token"):
        llm.choice_logits(prompt, ["very good", "very bad"])


def test_stats_count_generated_tokens(tiny_llama):
    fresh = HFCausalLM(tiny_llama, device="cpu", progress=False)
    fresh.generate(PROMPTS, max_new_tokens=5)
    assert fresh.stats["prompts"] == len(PROMPTS)
    assert len(PROMPTS) <= fresh.stats["new_tokens"] <= 5 * len(PROMPTS) and fresh.stats["seconds"] > 0


def test_bad_input_fails_before_any_work(llm, tiny_llama, tmp_path):
    with pytest.raises(TypeError, match="unknown generation option 'max_tokens'"):
        llm.generate(["old film"], max_tokens=3)
    with pytest.raises(ValueError, match="prompt 1 is empty"):
        llm.generate(["old film", ""])
    with pytest.raises(TypeError, match="got one string"):
        llm.generate("old film")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        HFCausalLM(tmp_path / "missing", device="cpu")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no config.json: it is not a model folder"):
        HFCausalLM(tmp_path / "empty", device="cpu")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{}")
    with pytest.raises((FileNotFoundError, ValueError), match="cannot load a causal language model from .*broken"):
        HFCausalLM(tmp_path / "broken", device="cpu")
    with pytest.raises(ValueError, match="dtype must be"):
        HFCausalLM(tiny_llama, device="cpu", dtype="float8")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_half_precision_on_a_gpu(tiny_llama):
    gpu = HFCausalLM(tiny_llama, progress=False)  # the GPU is the default device when there is one
    assert gpu.device.type == "cuda" and gpu.model.dtype in (torch.bfloat16, torch.float16)
    assert len(gpu.generate(PROMPTS, max_new_tokens=4)) == len(PROMPTS)
    scores = gpu.choice_logits("old film", ["Yes", "No"])
    assert scores.device.type == "cpu" and scores.dtype == torch.float32


def test_dtype_is_honoured(tiny_llama):
    assert HFCausalLM(tiny_llama, device="cpu", dtype="bfloat16", progress=False).model.dtype == torch.bfloat16


def test_smollm2_names_the_offline_default(tiny_llama, monkeypatch):
    import darec.llm.hf_causal_lm as module

    calls = []
    monkeypatch.setattr(module, "fetch_smollm2", lambda root=None: calls.append(root) or tiny_llama)
    assert HFCausalLM("smollm2", device="cpu", progress=False).model.config.vocab_size == len(VOCAB)
    assert HFCausalLM.offline_default("/some/root", device="cpu", progress=False).name == "smollm2"
    assert calls == [None, "/some/root"]


def test_missing_transformers_names_the_extra(tiny_llama, monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ImportError, match=r'HFCausalLM needs the `transformers` package.*pip install "darec\[llm\]"'):
        HFCausalLM(tiny_llama, device="cpu")


def test_a_peft_adapter_changes_the_model(llm, tiny_llama, tmp_path):
    peft = pytest.importorskip("peft")
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_llama)
    lora = peft.get_peft_model(base, peft.LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    lora.save_pretrained(tmp_path / "adapter")
    adapted = HFCausalLM(tiny_llama, device="cpu", adapter=tmp_path / "adapter", progress=False)
    assert isinstance(adapted.model, peft.PeftModel) and "adapter=" in repr(adapted)
    assert not torch.allclose(adapted.choice_logits("old film", ["Yes", "No"]), llm.choice_logits("old film", ["Yes", "No"]))
    with pytest.raises(FileNotFoundError, match="adapter folder"):
        HFCausalLM(tiny_llama, device="cpu", adapter=tmp_path / "nowhere")


def test_num_threads_holds_only_during_a_call(tiny_llama, monkeypatch):
    one = HFCausalLM(tiny_llama, device="cpu", num_threads=1, progress=False)
    seen = []
    original = one.model.generate
    monkeypatch.setattr(one.model, "generate", lambda **kw: seen.append(torch.get_num_threads()) or original(**kw))
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        one.generate(["old film"], max_new_tokens=2)
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
