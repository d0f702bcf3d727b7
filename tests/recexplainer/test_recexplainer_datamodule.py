"""RecExplainerDataModule, item_catalog, RecExplainer and the command line (``darec fit`` on a RecExplainer
config, ``darec ask``), end to end on a tiny MF target trained here and a tiny random Llama saved here."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
import yaml

from darec.backbones import MatrixFactorization
from darec.data import RecDataModule
from darec.module import DaRecModule
from darec.recexplainer import RecExplainer, RecExplainerDataModule, item_catalog, read_tasks
from tests.recexplainer.tiny_lm import REC_DIM, make_injector, tiny_llama, tiny_tokenizer

USERS, ITEMS = 12, 30


def _write_source(root: Path) -> tuple[Path, Path]:
    """An interaction CSV (12 users, 8 items each) and an item file with titles and years."""
    rng = np.random.default_rng(0)
    rows = [(f"u{u}", f"i{i}") for u in range(USERS) for i in rng.choice(ITEMS, 8, replace=False)]
    rows += [(f"u{i % USERS}", f"i{i}") for i in range(ITEMS) if (f"u{i % USERS}", f"i{i}") not in rows]  # every item
    inter = root / "inter.csv"
    inter.write_text("user,item\n" + "".join(f"{u},{i}\n" for u, i in rows))
    items = root / "items.csv"
    items.write_text("item_id,title,year\n" + "".join(f"i{i},Film {i:02d},{1990 + i % 10}\n" for i in range(ITEMS)))
    return inter, items


def _data(inter: Path, items: Path) -> RecDataModule:
    return RecDataModule(source=str(inter), item_info=str(items), text_encoder=None, batch_size=64, seed=0)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A matrix factorisation target (width 8) fitted for 2 epochs, its checkpoint, and a tiny LM folder."""
    root = tmp_path_factory.mktemp("recexplainer-run")
    inter, items = _write_source(root)
    dm = _data(inter, items)
    torch.manual_seed(0)
    model = DaRecModule(MatrixFactorization(dm.num_nodes, REC_DIM), num_users=dm.num_users, num_items=dm.num_items)
    trainer = L.Trainer(max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, accelerator="cpu")  # fmt: skip
    trainer.fit(model, datamodule=dm)
    ckpt = root / "target.ckpt"
    trainer.save_checkpoint(ckpt)
    lm = root / "tiny-llama"
    tiny_llama(context=256).save_pretrained(lm)
    tiny_tokenizer().save_pretrained(lm)
    return {"root": root, "inter": inter, "items": items, "target": ckpt, "lm": lm}


def _datamodule(run, **kwargs) -> RecExplainerDataModule:
    settings = {"mode": "intention", "max_users": 10, "max_items": 6, "val_fraction": 0.2, "batch_size": 2, **kwargs}
    return RecExplainerDataModule(_data(run["inter"], run["items"]), run["target"], **settings)


def test_the_catalog_is_the_item_files_titles_with_years_in_the_models_item_order(run):
    dm = _data(run["inter"], run["items"])
    catalog = item_catalog(dm)
    assert catalog == [f"Film {int(raw[1:]):02d} ({1990 + int(raw[1:]) % 10})" for raw in dm.interactions.item_ids]


def test_data_without_titles_are_refused_with_what_to_give(run):
    with pytest.raises(ValueError, match="no item titles"):
        item_catalog(RecDataModule(source=str(run["inter"]), text_encoder=None))


def test_tasks_are_written_split_by_user_and_item_and_labelled_by_the_target(run, tmp_path):
    dm = _datamodule(run, tasks_file=tmp_path / "tasks.jsonl")
    dm.set_tokenizer(make_injector().tokenizer)
    dm.setup("fit")
    written = read_tasks(tmp_path / "tasks.jsonl")
    assert written == [*dm.train_tasks, *dm.val_tasks] and dm.val_tasks and dm.train_tasks
    users = lambda tasks: {t.user for t in tasks if t.user is not None}  # noqa: E731
    items = lambda tasks: {t.items[0] for t in tasks if t.user is None}  # noqa: E731
    assert len(users(dm.train_tasks) | users(dm.val_tasks)) == 10 and not users(dm.train_tasks) & users(dm.val_tasks)
    assert len(items(dm.train_tasks) | items(dm.val_tasks)) == 6 and not items(dm.train_tasks) & items(dm.val_tasks)
    target = dm.target
    scores = target.score(torch.arange(USERS)).numpy()
    for task in (t for t in written if t.task == "next_item"):
        masked = scores[task.user].copy()
        masked[target.histories[task.user]] = -np.inf
        assert task.answer_items == (int(np.argmax(masked)),)
    batch = next(iter(dm.train_dataloader()))
    assert batch["input_ids"].shape[0] == 2 and batch["rec_vectors"].shape[-1] == REC_DIM
    again = _datamodule(run, tasks_file=tmp_path / "again.jsonl")  # the same seed: the same tasks
    again.set_tokenizer(make_injector().tokenizer)
    again.setup("fit")
    assert again.train_tasks == dm.train_tasks


def test_a_missing_target_and_bad_settings_are_named(run, tmp_path):
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        _ = RecExplainerDataModule(_data(run["inter"], run["items"]), tmp_path / "none.ckpt").target
    with pytest.raises(ValueError, match="val_fraction"):
        _datamodule(run, val_fraction=1.0)
    with pytest.raises(RuntimeError, match="set_tokenizer"):
        _datamodule(run).setup("fit")


def _config(run, tmp_path, rec_dim=REC_DIM) -> Path:
    config = {
        "seed_everything": 0,
        "model": {
            "injector": {"class_path": "darec.recexplainer.RecEmbeddingInjector",
                         "init_args": {"model": str(run["lm"]), "rec_dim": rec_dim, "lora_r": 4, "dtype": "float32"}},
            "lr": 1e-2,
        },
        "data": {
            "class_path": "darec.recexplainer.RecExplainerDataModule",
            "init_args": {
                "target": str(run["target"]),
                "data": {"class_path": "darec.data.RecDataModule",
                         "init_args": {"source": str(run["inter"]), "item_info": str(run["items"]), "text_encoder": None}},
                "mode": "hybrid", "max_users": 6, "max_items": 4, "val_fraction": 0.2, "batch_size": 4,
            },
        },
        "trainer": {"max_steps": 3, "val_check_interval": 3, "check_val_every_n_epoch": None, "accelerator": "cpu",
                    "enable_progress_bar": False, "enable_model_summary": False, "default_root_dir": str(tmp_path)},
    }  # fmt: skip
    path = tmp_path / "recexplainer.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_darec_fit_trains_from_a_config_and_darec_ask_answers_from_the_run(run, tmp_path, capsys, monkeypatch):
    from darec.cli import cli
    from darec.recexplainer.cli import ask_main

    monkeypatch.chdir(tmp_path)
    cli(["fit", "--config", str(_config(run, tmp_path))])
    version = tmp_path / "lightning_logs" / "version_0"
    tasks = read_tasks(version / "alignment_tasks.jsonl")
    assert tasks and {t.form for t in tasks} >= {"hybrid"}
    last = version / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, map_location="cpu", weights_only=False)
    assert all("lora_" in k or "connector" in k or "placeholder" in k for k in checkpoint["state_dict"])  # small
    capsys.readouterr()

    dm = RecExplainerDataModule(_data(run["inter"], run["items"]), run["target"], mode="hybrid")
    users = dm.data.interactions.user_ids.tolist()
    assert ask_main(["--config", str(version / "config.yaml"), "--ckpt", str(last), "--user", users[3], "--top", "2",
                     "--max-new-tokens", "4"]) == 0  # fmt: skip
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["rank"] for line in lines] == [1, 2] and all(line["user"] == users[3] for line in lines)
    scores = dm.target.score(torch.tensor([3]))[0]
    item_ids = dm.data.interactions.item_ids.tolist()
    assert [line["score"] for line in lines] == pytest.approx([float(scores[item_ids.index(line["item"])]) for line in lines])
    assert "<user>" in lines[0]["question"] and "who has interacted with:" in lines[0]["question"]

    assert ask_main(["--config", str(version / "config.yaml"), "--ckpt", str(last), "--user", "nobody", "--top", "1"]) == 2
    assert "--user 'nobody' is not a user of the data" in capsys.readouterr().err


def test_an_injector_of_another_width_than_the_target_is_named(run, tmp_path, monkeypatch):
    from darec.cli import cli

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="set model.injector.init_args.rec_dim to 8"):
        cli(["fit", "--config", str(_config(run, tmp_path, rec_dim=5))])


def test_the_explainer_fills_placeholders_with_the_targets_vectors(run):
    from darec.recexplainer import RecExplainerModule

    dm = _datamodule(run)
    module = RecExplainerModule(make_injector())
    explainer = RecExplainer(module, dm.target, item_catalog(dm.data), mode="intention")
    seen = []
    original = module.injector.embed

    def spy(input_ids, rec_vectors=None, attention_mask=None):
        seen.append(rec_vectors)
        return original(input_ids, rec_vectors, attention_mask)

    module.injector.embed = spy
    explainer.ask("which movie next for the user <user> like <item>", user=2, item=5, max_new_tokens=1)
    (vectors,) = seen[0]
    assert torch.allclose(vectors[0], dm.target.user_embeddings(torch.tensor([2]))[0])
    assert torch.allclose(vectors[1], dm.target.item_embeddings()[5])
    with pytest.raises(ValueError, match="no item is given"):
        explainer.ask("the item <item>", user=2)
    with pytest.raises(ValueError, match="item 99 is not among the target's items"):
        explainer.explain(2, 99)
