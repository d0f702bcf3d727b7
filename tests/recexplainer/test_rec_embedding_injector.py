"""RX-2: the embedding injector on a tiny random Llama (forward, injection, frozen weights, generation, errors, saving)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

pytest.importorskip("transformers")
pytest.importorskip("peft")

from darec.recexplainer.rec_embedding_injector import RecEmbeddingInjector  # noqa: E402
from tests.recexplainer.tiny_lm import REC_DIM, VOCAB, make_injector, tiny_llama, tiny_tokenizer  # noqa: E402


def encode(injector: RecEmbeddingInjector, texts: list[str], side: str = "right") -> tuple[torch.Tensor, torch.Tensor]:
    """Plain (no chat template) ids of ``texts``, padded on ``side``."""
    from darec.recexplainer._prompting import pad_rows

    rows = [injector.tokenizer(text, add_special_tokens=False)["input_ids"] for text in texts]
    return pad_rows(rows, injector.tokenizer.pad_token_id, side)


def test_placeholders_are_single_new_tokens_and_the_vocabulary_grows():
    injector = make_injector()
    ids = injector.placeholder_token_ids
    assert ids == {"user": len(VOCAB), "item": len(VOCAB) + 1}
    assert injector.tokenizer("the <user> and <item>", add_special_tokens=False)["input_ids"] == [
        VOCAB["the"], ids["user"], VOCAB["and"], ids["item"]
    ]
    embedding = injector.model.get_input_embeddings().weight
    assert embedding.shape == (len(VOCAB) + 2, 32)
    # new rows are the mean of the old ones: deterministic, so a saved injector reloads over a fresh LM
    torch.testing.assert_close(embedding[-1], embedding[: len(VOCAB)].mean(0))
    assert injector.tokenizer.pad_token_id == VOCAB["</s>"]  # the tokenizer had none


def test_logits_shape_unchanged_and_equal_to_the_bare_lm_without_placeholders():
    lm = tiny_llama()
    bare = copy.deepcopy(lm)
    injector = RecEmbeddingInjector(lm, REC_DIM, tiny_tokenizer(), lora_r=4).eval()
    input_ids, mask = encode(injector, ["which movie next for the item", "the movie"])
    with torch.no_grad():
        expected = bare(input_ids=input_ids, attention_mask=mask).logits
        got = injector(input_ids, mask).logits
    assert got.shape[:2] == expected.shape[:2] == input_ids.shape
    assert got.shape[2] == expected.shape[2] + 2  # the two placeholder tokens
    torch.testing.assert_close(got[..., : len(VOCAB)], expected)  # LoRA starts at zero: the same model


@pytest.mark.parametrize("mode", ["add", "replace"])
@pytest.mark.parametrize("kind", ["<user>", "<item>"])
def test_a_vector_changes_the_logits_iff_the_prompt_holds_its_placeholder(mode, kind):
    injector = make_injector(mode=mode).eval()
    input_ids, mask = encode(injector, [f"which movie next for {kind} the", "which movie next for the movie"])
    position = 4  # the placeholder's position in row 0
    vector = torch.randn(REC_DIM)
    with torch.no_grad():
        first = injector(input_ids, mask, rec_vectors=[vector, None]).logits
        second = injector(input_ids, mask, rec_vectors=[vector + 1.0, None]).logits
        flat = injector(input_ids, mask, rec_vectors=(vector + 1.0).unsqueeze(0)).logits
    assert not torch.allclose(first[0, position:], second[0, position:])  # from the placeholder on
    torch.testing.assert_close(first[0, :position], second[0, :position])  # causal: earlier positions unchanged
    torch.testing.assert_close(first[1], second[1])  # the row without a placeholder
    torch.testing.assert_close(flat, second)  # flat (P, d) and per-row vectors are the same thing


def test_add_mode_adds_to_the_placeholder_row_and_replace_mode_replaces_it():
    vector = torch.randn(1, REC_DIM)
    for mode in ("add", "replace"):
        injector = make_injector(mode=mode)
        input_ids, _ = encode(injector, ["the <item>"])
        embeds = injector.embed(input_ids, vector)
        projected = injector.connectors["item"](vector)[0]
        row = injector.model.get_input_embeddings().weight[injector.placeholder_token_ids["item"]]
        expected = row + projected if mode == "add" else projected
        torch.testing.assert_close(embeds[0, 1], expected)
        torch.testing.assert_close(embeds[0, 0], injector.model.get_input_embeddings().weight[VOCAB["the"]])


def test_users_and_items_use_their_own_connector_in_reading_order():
    injector = make_injector()
    input_ids, mask = encode(injector, ["<item> the <user>", "<user> <item> <item>"])
    vectors = torch.randn(5, REC_DIM)  # row 0: item, user; row 1: user, item, item
    embeds = injector.embed(input_ids, vectors, mask)
    kinds = ["item", "user", "user", "item", "item"]
    positions = [(0, 0), (0, 2), (1, 0), (1, 1), (1, 2)]
    for k, (kind, (r, t)) in enumerate(zip(kinds, positions)):
        expected = injector.placeholder_embeddings[0 if kind == "user" else 1] + injector.connectors[kind](vectors[k])
        torch.testing.assert_close(embeds[r, t], expected)
    shared = make_injector(shared_connector=True)
    assert list(shared.connectors) == ["shared"]


@pytest.mark.parametrize("train_rows", [True, False])
def test_only_lora_connectors_and_placeholder_rows_get_gradients(train_rows):
    injector = make_injector(train_placeholder_embeddings=train_rows).train()
    target = nn.Embedding(4, REC_DIM)  # a trainable "recommender": its vectors must arrive detached
    input_ids, mask = encode(injector, ["which movie next for <user>", "the <item> is <user> Heat"])
    vectors = target(torch.tensor([0, 1, 2]))
    labels = input_ids.masked_fill(mask == 0, -100)
    injector(input_ids, mask, rec_vectors=vectors, labels=labels).loss.backward()

    with_grad = {name for name, p in injector.named_parameters() if p.grad is not None}
    assert with_grad == {name for name, p in injector.named_parameters() if p.requires_grad}
    assert all("lora_" in name or name.startswith(("connectors.", "placeholder_embeddings")) for name in with_grad)
    assert any("lora_B" in name for name in with_grad)
    assert any(name.startswith("connectors.user.") for name in with_grad)
    assert any(name.startswith("connectors.item.") for name in with_grad)
    assert ("placeholder_embeddings" in with_grad) is train_rows
    base = [p for name, p in injector.named_parameters() if "lora_" not in name and name.startswith("model.")]
    assert base and all(not p.requires_grad and p.grad is None for p in base)
    assert target.weight.grad is None  # the recommender stays frozen


def test_lora_targets_are_configurable_and_zero_rank_trains_no_adapter():
    injector = make_injector(lora_target_modules=["q_proj", "v_proj"])
    adapted = {name.split(".")[-4] for name, _ in injector.named_parameters() if "lora_A" in name}
    assert adapted == {"q_proj", "v_proj"}
    plain = make_injector(lora_r=0)
    assert not any("lora_" in name for name, _ in plain.named_parameters())
    assert {name.split(".")[0] for name, p in plain.named_parameters() if p.requires_grad} == {
        "connectors",
        "placeholder_embeddings",
    }


def test_generate_with_injected_embeddings_runs_and_depends_on_the_vector():
    injector = make_injector()
    prompts = ["which movie next for the <user>"]
    vector = torch.randn(1, REC_DIM)
    input_ids, mask = encode(injector, prompts, side="left")
    out = injector.generate(input_ids, mask, vector, max_new_tokens=3, output_logits=True, return_dict_in_generate=True)
    other = injector.generate(input_ids, mask, vector + 3.0, max_new_tokens=3, output_logits=True, return_dict_in_generate=True)
    assert out.sequences.shape == (1, 3)  # the new tokens only
    assert not torch.allclose(out.logits[0], other.logits[0])
    with torch.no_grad():  # generation's first step is the forward pass at the last prompt position
        forward = injector.eval()(input_ids, mask, vector).logits[:, -1]
    torch.testing.assert_close(out.logits[0], forward)
    assert not set(out.sequences.flatten().tolist()) & set(injector.placeholder_token_ids.values())
    answers = injector.generate_text(prompts, vector, max_new_tokens=3)
    assert len(answers) == 1 and isinstance(answers[0], str)


def test_batched_left_padded_generation_equals_one_prompt_at_a_time():
    injector = make_injector()
    prompts = ["which movie next for the <user>", "the <item> is like the item <item> and the <user>"]
    vectors = [torch.randn(1, REC_DIM), torch.randn(3, REC_DIM)]
    together = injector.generate_text(prompts, vectors, max_new_tokens=4)
    alone = [injector.generate_text([p], v, max_new_tokens=4)[0] for p, v in zip(prompts, vectors)]
    assert together == alone


def test_generation_leaves_the_training_mode_as_it_was():
    injector = make_injector().train()
    injector.generate_text(["the <user>"], torch.randn(1, REC_DIM), max_new_tokens=1)
    assert injector.training


# -- errors ---------------------------------------------------------------------------------------
def test_vectors_that_do_not_match_the_placeholders_are_refused():
    injector = make_injector()
    input_ids, mask = encode(injector, ["which movie next for <user>", "the movie"])
    with pytest.raises(ValueError, match=r"hold 1 placeholder\(s\) \(row 0: 1, row 1: 0\) but no rec_vectors"):
        injector(input_ids, mask)
    with pytest.raises(ValueError, match="row 1 holds 0 placeholder.* but 1 vector.*lacks a placeholder"):
        injector(input_ids, mask, rec_vectors=[torch.randn(REC_DIM), torch.randn(REC_DIM)])
    with pytest.raises(ValueError, match="row 0 holds 1 placeholder.* but 0 vector.*more placeholders than"):
        injector(input_ids, mask, rec_vectors=[None, None])
    with pytest.raises(ValueError, match="2 rec_vectors were given for 1 placeholder.*lacks a placeholder"):
        injector(input_ids, mask, rec_vectors=torch.randn(2, REC_DIM))
    many, many_mask = encode(injector, ["<user> <item>"])
    with pytest.raises(ValueError, match="1 rec_vectors were given for 2 placeholder.*without a vector"):
        injector(many, many_mask, rec_vectors=torch.randn(1, REC_DIM))
    with pytest.raises(ValueError, match="width 5, but the connectors take rec_dim=8"):
        injector(input_ids, mask, rec_vectors=torch.randn(1, 5))
    with pytest.raises(ValueError, match="3 per-row entries for a batch of 2"):
        injector(input_ids, mask, rec_vectors=[None, None, None])


def test_a_prompt_longer_than_the_context_is_refused():
    injector = make_injector(context=16)
    long, mask = encode(injector, ["the movie " * 9, "the"])
    with pytest.raises(ValueError, match=r"row 0 of the batch has 18 tokens, more than the context of .* \(16 tokens\)"):
        injector(long, mask)
    prompt, prompt_mask = encode(injector, ["the movie " * 6])
    injector(prompt, prompt_mask)  # 12 tokens fit
    with pytest.raises(ValueError, match="has 12 tokens and 8 new tokens, more than the context"):
        injector.generate(prompt, prompt_mask, max_new_tokens=8)


def test_bad_settings_are_refused_with_clear_messages():
    with pytest.raises(ValueError, match=r"lora_target_modules \['qkv'\] name no linear layer.*q_proj"):
        make_injector(lora_target_modules=["q_proj", "qkv"])
    with pytest.raises(ValueError, match="`mode` must be one of"):
        make_injector(mode="concat")
    with pytest.raises(ValueError, match="needs its `tokenizer`"):
        RecEmbeddingInjector(tiny_llama(), REC_DIM)
    with pytest.raises(ValueError, match="rec_dim"):
        RecEmbeddingInjector(tiny_llama(), 0, tiny_tokenizer())
    with pytest.raises(ValueError, match="not a peft model"):
        RecEmbeddingInjector(make_injector().model, REC_DIM, tiny_tokenizer())


# -- saving the trainable parts --------------------------------------------------------------------
def _perturbed(injector: RecEmbeddingInjector) -> RecEmbeddingInjector:
    with torch.no_grad():
        for p in injector.trainable_parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return injector


def test_save_and_load_the_trainable_parts_only(tmp_path):
    torch.manual_seed(0)
    trained = _perturbed(make_injector()).eval()
    path = trained.save_trainable(tmp_path / "explainer.pt")
    state = torch.load(path, weights_only=True)["state_dict"]
    assert set(state) == {name for name, p in trained.named_parameters() if p.requires_grad}
    total = sum(p.numel() for p in trained.parameters())
    assert sum(v.numel() for v in state.values()) < 0.25 * total  # no base weight in the file

    input_ids, mask = encode(trained, ["which movie next for <user>"])
    vector = torch.randn(1, REC_DIM)
    with torch.no_grad():
        expected = trained(input_ids, mask, vector).logits
        fresh = make_injector().eval()
        assert not torch.allclose(fresh(input_ids, mask, vector).logits, expected)
        torch.testing.assert_close(fresh.load_trainable(path)(input_ids, mask, vector).logits, expected)
        again = RecEmbeddingInjector.from_trainable(path, tiny_llama(), tiny_tokenizer()).eval()
        torch.testing.assert_close(again(input_ids, mask, vector).logits, expected)


def test_loading_connectors_built_for_another_hidden_size_is_refused(tmp_path):
    path = make_injector(hidden_size=64).save_trainable(tmp_path / "wide.pt")
    with pytest.raises(ValueError, match="built for an LM of hidden size 64.*hidden size is 32"):
        make_injector(hidden_size=32).load_trainable(path)
    with pytest.raises(ValueError, match="mode='replace' \\(here 'add'\\)"):
        make_injector().load_trainable(make_injector(mode="replace").save_trainable(tmp_path / "replace.pt"))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a file of RecEmbeddingInjector.save_trainable"):
        make_injector().load_trainable(tmp_path / "junk.pt")
    with pytest.raises(FileNotFoundError):
        make_injector().load_trainable(tmp_path / "missing.pt")


def test_tied_embeddings_grow_together():
    injector = make_injector(tie=True)
    lm = injector.model.get_base_model()
    assert lm.get_output_embeddings().weight.shape[0] == len(VOCAB) + 2
    assert lm.get_output_embeddings().weight.data_ptr() == lm.get_input_embeddings().weight.data_ptr()
