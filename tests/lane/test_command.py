"""End-to-end test of ``darec explain`` with the fake backend on a tiny trained LANE checkpoint."""

from __future__ import annotations

import json

import lightning as L
import pytest
import torch
import yaml

import darec.text
from darec.backbones import SASRec
from darec.data import SequenceDataModule
from darec.lane import PreferenceAttentionFusion
from darec.lane.command import fake_answer, main
from tests.lane.conftest import NUM_ITEMS, GenreEncoder, genre_log, write_preferences


@pytest.fixture
def run(tmp_path, monkeypatch):
    """A data folder, a preference file, a config and a checkpoint trained for one epoch."""
    resolve = darec.text.resolve_encoder
    monkeypatch.setattr(darec.text, "resolve_encoder", lambda e: GenreEncoder() if e == "test-genre" else resolve(e))
    log, genre_of = genre_log(num_users=30)
    inter = tmp_path / "inter.csv"
    inter.write_text("user,item,timestamp\n" + "".join(f"{u},{i},{t}\n" for u, i, t in zip(log.users, log.items, log.timestamps)))
    items = tmp_path / "items.csv"
    items.write_text("item_id,title\n" + "".join(f"i{k:03d},Film {k}\n" for k in range(NUM_ITEMS)))
    prefs = write_preferences(tmp_path / "prefs.jsonl", genre_of)
    init_args = {"source": str(inter), "item_info": str(items), "max_len": 10, "eval_negatives": 20,
                 "preferences": str(prefs), "preference_encoder": "test-genre", "num_preferences": 3}  # fmt: skip
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"data": {"class_path": "darec.data.SequenceDataModule", "init_args": init_args}}))
    L.seed_everything(0)
    dm = SequenceDataModule(**init_args)
    model = PreferenceAttentionFusion(SASRec(dm.num_items, 16, max_len=10), preference_dim=GenreEncoder.dim, num_heads=2,
                                      ks=(5,), sampled_ks=(5,))  # fmt: skip
    trainer = L.Trainer(default_root_dir=tmp_path, max_epochs=1, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, enable_checkpointing=False)  # fmt: skip
    trainer.fit(model, dm)
    ckpt = tmp_path / "lane.ckpt"
    trainer.save_checkpoint(ckpt)
    return {"config": config, "ckpt": ckpt, "dm": dm, "model": model, "out": tmp_path / "out.jsonl"}


def _args(run, *more):
    return ["--config", str(run["config"]), "--ckpt", str(run["ckpt"]), "--out", str(run["out"]), "--backend", "fake", *more]


def test_explains_the_top_k_with_preferences_weights_score_rank_and_verdict(run, capsys):
    assert main(_args(run, "--user", "u3", "--top-k", "2")) == 0
    lines = [json.loads(line) for line in run["out"].read_text().splitlines()]
    assert [line["rank"] for line in lines] == [1, 2] and lines[0]["score"] >= lines[1]["score"]
    dm, model = run["dm"], run["model"].eval()
    u = dm.sequences.user_ids.tolist().index("u3")
    assert [p["text"] for p in lines[0]["preferences"]] == dm.preference_texts[u]
    weights = [p["weight"] for p in lines[0]["preferences"]]
    assert len(weights) == 3 and abs(sum(weights) - 1) < 1e-3
    for line in lines:
        assert line["parsed"] is True and line["verdict"] in ("Low", "Medium", "High") and len(line["fitness"]) == 3
        assert line["explanation"] == fake_answer(line["prompt"]) and "(weight " in line["prompt"]
        assert line["title"] in line["prompt"] and not line["in_history"] and line["backend"] == "fake"
    history = dm.sequences.history(u, "test")
    seq = torch.tensor([[0] * (10 - len(history[-10:])) + history[-10:].tolist()])
    scores = model.score_items(seq, torch.tensor([u]))[0]
    top = dm.sequences.item_ids.tolist().index(lines[0]["item"]) + 1
    assert abs(float(scores[top - 1]) - lines[0]["score"]) < 1e-4
    assert "2 explanation(s) written, 0 failed" in capsys.readouterr().out


def test_explains_a_given_item_and_appends(run):
    assert main(_args(run, "--user", "u3", "--top-k", "1")) == 0
    assert main(_args(run, "--user", "u3", "--item", "i005", "--user", "u4", "--item", "i006")) == 0
    lines = [json.loads(line) for line in run["out"].read_text().splitlines()]
    assert len(lines) == 1 + 4 and [(r["user"], r["item"]) for r in lines[1:]] == [
        ("u3", "i005"), ("u3", "i006"), ("u4", "i005"), ("u4", "i006")]  # fmt: skip
    assert all(r["rank"] >= 1 for r in lines)


def test_unknown_users_and_items_are_named(run, capsys):
    assert main(_args(run, "--user", "nobody", "--top-k", "1")) == 2
    assert "user 'nobody' is not in the data" in capsys.readouterr().err
    assert main(_args(run, "--user", "u3", "--item", "i999")) == 2
    assert "item 'i999' is not in the data" in capsys.readouterr().err


def test_a_failing_backend_is_reported_and_what_was_written_is_kept(run, capsys, monkeypatch):
    import darec.lane.command as command
    from darec.llm import FakeLLM

    calls = []

    def flaky(prompt):
        calls.append(prompt)
        if len(calls) == 2:
            raise TimeoutError("read timed out")
        return fake_answer(prompt)

    monkeypatch.setattr(command, "_backend", lambda args: (FakeLLM(flaky), "flaky"))
    assert main(_args(run, "--user", "u3", "--top-k", "3")) == 1
    lines = [json.loads(line) for line in run["out"].read_text().splitlines()]
    assert [line["parsed"] for line in lines] == [True, False, True]
    assert "timed out" in lines[1]["error"] and "user u3, item" in capsys.readouterr().err
