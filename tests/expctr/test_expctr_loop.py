"""ExpCTRLoop (EC-4) end to end on a tiny random Llama, synthetic pairs, a keyword encoder and a keyword LC scorer."""

from __future__ import annotations

import json

import pytest
import torch

from darec.ctr import CTRDataModule
from darec.expctr import ExpCTRConfig, ExpCTRLoop
from tests.ctr.synthetic import KeywordEncoder, random_log
from tests.llm.conftest import build_tiny_llama

pytest.importorskip("trl")


def keyword_scorer(texts):
    """p(click) 0.9 when the explanation says "good", 0.1 otherwise: rewards that vary between samples."""
    return torch.tensor([0.9 if "good" in t.split() else 0.1 for t in texts])


@pytest.fixture(scope="module")
def tiny_generator(tmp_path_factory):
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-generator"), context=512)


@pytest.fixture(scope="module")
def log():
    return random_log(num_users=6, num_items=15, num_pairs=60, seed=0)[0]


def make_loop(tiny_generator, log, out, **overrides):
    settings = dict(
        generator=str(tiny_generator), lc_steps=1, ic_steps=1, prompts_per_step=1, num_generations=2, max_new_tokens=6,
        max_liked=3, max_disliked=3, ctr_model="fm", ctr_embedding_dim=4, ctr_epochs=2, ctr_batch_size=16,
        learning_rate=1e-2, lora_r=2, lora_alpha=4, lora_dropout=0.0, progress=False, threads=1,
    )  # fmt: skip
    settings.update(overrides)
    return ExpCTRLoop(
        ExpCTRConfig(**settings), out, scorer=keyword_scorer, text_encoder=KeywordEncoder(),
        data_factory=lambda **kw: CTRDataModule.from_log(log, **kw),
    )  # fmt: skip


def test_stage_plan_follows_the_config(tmp_path):
    plan = ExpCTRLoop(ExpCTRConfig(rounds=2, zero_shot=False), tmp_path).stages()
    assert plan == ["ids", "lc-1", "explain-lc-1", "ctr-lc-1", "ic-1", "explain-ic-1", "ctr-ic-1",
                    "lc-2", "explain-lc-2", "ctr-lc-2", "ic-2", "explain-ic-2", "ctr-ic-2", "evaluate"]  # fmt: skip
    assert ExpCTRLoop(ExpCTRConfig(ic_steps=0), tmp_path).stages() == [
        "ids", "explain-zs", "ctr-zs", "lc-1", "explain-lc-1", "ctr-lc-1", "evaluate"]  # fmt: skip
    with pytest.raises(ValueError, match="needs a CTR model trained on explanations"):
        ExpCTRLoop(ExpCTRConfig(lc_steps=0, zero_shot=False), tmp_path).stages()


def test_the_loop_runs_every_stage_resumes_and_changes_only_lora_weights(tiny_generator, log, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out = tmp_path / "run"
    loop = make_loop(tiny_generator, log, out)
    done = loop.run(until="ctr-zs")
    assert list(done) == ["ids", "explain-zs", "ctr-zs"] and loop.next_stage() == "lc-1"
    lines = (out / "explain-zs" / "explanations.jsonl").read_text().splitlines()
    assert len(lines) == 60 and all(json.loads(line)["text"] for line in lines)  # every pair explained
    assert done["ctr-zs"]["model"]["text_dim"] == 4 and "shuffled" in done["ctr-zs"]

    # a new loop object on the same folder resumes at lc-1 and does not redo what is done
    again = make_loop(tiny_generator, log, out)
    stamp = (out / "explain-zs" / "explanations.jsonl").stat().st_mtime_ns
    done = again.run()
    assert list(done) == again.stages() and (out / "explain-zs" / "explanations.jsonl").stat().st_mtime_ns == stamp
    assert done["lc-1"]["steps"] == 1 and done["lc-1"]["from_adapter"] is None
    assert done["ic-1"]["from_adapter"] == done["lc-1"]["adapter"] and done["ic-1"]["against"].endswith("best.ckpt")
    rewards = [json.loads(line) for line in (out / "lc-1" / "rewards.jsonl").read_text().splitlines()]
    assert rewards and all(-1.0 <= r["reward"] <= 1.0 and r["samples"] == 2 for r in rewards)

    # only LoRA weights changed: the base weights under the adapter equal the saved model's
    base = AutoModelForCausalLM.from_pretrained(tiny_generator)
    tuned = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_generator), done["ic-1"]["adapter"])
    tuned_state = {k.replace("base_model.model.", "").replace(".base_layer", ""): v for k, v in tuned.state_dict().items()}
    lora = {k: v for k, v in tuned_state.items() if "lora_" in k}
    assert lora and any(float(v.abs().sum()) > 0 for k, v in lora.items() if "lora_B" in k)  # B starts at zero
    for key, value in base.state_dict().items():
        torch.testing.assert_close(tuned_state[key], value)

    results = json.loads((out / "results.json").read_text())
    variants = [row["variant"] for row in results["rows"]]
    assert variants == ["ID-only", "zero-shot", "after LC, round 1", "after IC, round 1"]
    for row in results["rows"][1:]:
        assert 0 <= row["llm_test_auc"] <= 1 and 0 <= row["lc_agreement"] <= 1 and "shuffled_test_auc" in row
    assert "ExpCTR-Aug test AUC" in (out / "results.md").read_text()

    # explaining a pair of the data and one that is not
    user, item = str(log.users[0]), str(log.items[0])
    shown = again.explain(user, item)
    assert shown["label"] in (0, 1) and 0 <= shown["ctr_with"] <= 1 and 0 <= shown["ctr_without"] <= 1
    assert shown["stages"] == {"generator": "ic-1", "ctr": "ctr-ic-1"} and isinstance(shown["explanation"], str)
    pairs = set(zip(log.users.tolist(), log.items.tolist()))
    unseen = next(i for i in sorted(set(log.items.tolist())) if (user, i) not in pairs)
    assert again.explain(user, unseen)["label"] is None
    with pytest.raises(ValueError, match="unknown user id 'nobody'"):
        again.explain("nobody", item)


def test_a_run_folder_refuses_another_config(tiny_generator, log, tmp_path):
    loop = make_loop(tiny_generator, log, tmp_path / "run")
    loop.run(until="ids")
    with pytest.raises(ValueError, match="differs in ctr_epochs, seed"):
        make_loop(tiny_generator, log, tmp_path / "run", ctr_epochs=3, seed=1).run()
    make_loop(tiny_generator, log, tmp_path / "run", threads=2).state()  # runtime settings may change
    with pytest.raises(ValueError, match="unknown stage 'lc'"):
        loop.run(until="lc")


@pytest.mark.parametrize("algorithm", ["grpo", "rloo"])
def test_one_policy_step_of_either_trl_algorithm_trains_only_lora(tiny_generator, tmp_path, algorithm):
    from darec.expctr._policy import completion_text, train_policy

    seen = []

    def reward(completions, label, **kwargs):
        texts = [completion_text(c) for c in completions]
        seen.append((texts, list(label), kwargs.get("user")))
        return [1.0 if "good" in t.split() else -1.0 for t in texts]

    records = [{"prompt": f"the movie is {w}", "label": k % 2, "user": k, "item": k} for k, w in enumerate(["good", "bad"])]
    out = train_policy(
        str(tiny_generator), None, tmp_path / "adapter", records, reward, algorithm=algorithm, steps=1, num_generations=2,
        prompts_per_step=1, learning_rate=1e-2, temperature=1.0, max_new_tokens=4,
        lora={"r": 2, "lora_alpha": 4, "lora_dropout": 0.0, "target_modules": None}, seed=0, work_dir=tmp_path / "work",
        progress=False, keep_model=True,
    )  # fmt: skip
    assert out["steps"] == 1 and seen and len(seen[0][0]) == 2 and seen[0][2] is not None
    trainable = {n for n, p in out["model"].named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()
