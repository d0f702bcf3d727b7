"""``darec expctr run|status|explain`` on a tiny generator (the loop's parts swapped for test stand-ins)."""

from __future__ import annotations

import json

import pytest
import yaml

from darec.ctr import CTRDataModule
from darec.expctr import ExpCTRConfig, ExpCTRLoop, command
from tests.ctr.synthetic import KeywordEncoder
from tests.expctr.test_expctr_loop import keyword_scorer, log, tiny_generator  # noqa: F401 (fixtures)

pytest.importorskip("trl")


@pytest.fixture
def config_file(tiny_generator, tmp_path):  # noqa: F811
    settings = dict(
        generator=str(tiny_generator), lc_steps=1, ic_steps=0, prompts_per_step=1, num_generations=2, max_new_tokens=4,
        max_liked=2, max_disliked=2, ctr_model="fm", ctr_embedding_dim=4, ctr_epochs=1, ctr_batch_size=32,
        shuffled_control=False, lora_r=2, lora_alpha=4, progress=False,
    )  # fmt: skip
    path = tmp_path / "loop.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


@pytest.fixture
def stand_ins(monkeypatch, log):  # noqa: F811
    def make(config, out):
        return ExpCTRLoop(config, out, scorer=keyword_scorer, text_encoder=KeywordEncoder(),
                          data_factory=lambda **kw: CTRDataModule.from_log(log, **kw))  # fmt: skip

    monkeypatch.setattr(command, "_make_loop", make)


def test_run_status_explain(config_file, stand_ins, tmp_path, capsys, log):  # noqa: F811
    out = tmp_path / "run"
    assert command.main(["run", "--config", str(config_file), "--out", str(out), "--until", "ctr-zs"]) == 0
    assert "3 of 7 stages done" in capsys.readouterr().out
    assert command.main(["status", "--out", str(out)]) == 0
    status = capsys.readouterr().out.splitlines()
    assert status[0].startswith("ids") and "done" in status[0] and status[3].split() == ["lc-1", "to", "do"]
    assert command.main(["run", "--config", str(config_file), "--out", str(out), "--set", "threads=1"]) == 0
    printed = capsys.readouterr().out
    assert "7 of 7 stages done" in printed and "ExpCTR-Aug test AUC" in printed and "after LC, round 1" in printed
    user, item = str(log.users[0]), str(log.items[0])
    assert command.main(["explain", "--out", str(out), "--user", user, "--item", item]) == 0
    text = capsys.readouterr().out
    assert f"user {user}, item {item}" in text and "CTR with the explanation (ctr-lc-1)" in text and "LC verdict" in text
    assert command.main(["explain", "--out", str(out), "--user", user, "--item", item, "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)) >= {"explanation", "ctr_with", "ctr_without", "lc_verdict"}


def test_errors_are_one_line(config_file, stand_ins, tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("users: 3\nlc_step: 2\n")
    assert command.main(["run", "--config", str(bad), "--out", str(tmp_path / "r")]) == 2
    assert "unknown key(s) lc_step (did you mean lc_steps?)" in capsys.readouterr().err
    assert command.main(["run", "--config", str(config_file), "--out", str(tmp_path / "r"), "--set", "seed"]) == 2
    assert "--set expects KEY=VALUE" in capsys.readouterr().err
    assert command.main(["status", "--out", str(tmp_path / "nothing")]) == 2
    assert "holds no ExpCTR run" in capsys.readouterr().err
    assert command.main(["run", "--config", str(config_file), "--out", str(tmp_path / "r"), "--until", "ids"]) == 0
    capsys.readouterr()
    assert command.main(["explain", "--out", str(tmp_path / "r"), "--user", "u1", "--item", "i1"]) == 2
    assert "is not complete (next stage: explain-zs)" in capsys.readouterr().err
    with pytest.raises(ValueError, match="ExpCTRConfig.num_generations must be at least 2"):
        ExpCTRConfig(num_generations=1)
