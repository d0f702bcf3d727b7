"""CTRModule: the logged AUC and LogLoss against naive references; the text-augmented model (EC-2) against
the ID-only one on data whose explanations carry the signal, and the shuffled-explanations control."""

from __future__ import annotations

import lightning as L
import numpy as np
import pytest
import torch

from darec.ctr import FM, CTRDataModule, CTRModule, DCNv2, DeepFM
from tests.ctr.synthetic import KeywordEncoder, random_log, write_explanations


def _naive_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """The share of (positive, negative) pairs ranked right, ties counting one half."""
    pos, neg = scores[labels == 1], scores[labels == 0]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(wins / (len(pos) * len(neg)))


def _naive_logloss(probs: np.ndarray, labels: np.ndarray) -> float:
    return float(-np.mean(labels * np.log(probs) + (1 - labels) * np.log(1 - probs)))


def test_logged_metrics_match_naive_references(tmp_path):
    log, _ = random_log(num_pairs=400)
    dm = CTRDataModule.from_log(log, eval_batch_size=7)  # several evaluation batches
    model = CTRModule(FM(dm.num_users, dm.num_items, embedding_dim=4))
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.5)
    with torch.no_grad():
        model.backbone.fields.item_bias.weight[:5] = 0.0  # some tied scores
    trainer = L.Trainer(default_root_dir=tmp_path, logger=False, enable_progress_bar=False, enable_model_summary=False)
    logged = trainer.validate(model, datamodule=dm, verbose=False)[0]
    rows = dm.samples.split("valid")
    batch = {"user": torch.from_numpy(dm.samples.user[rows]), "item": torch.from_numpy(dm.samples.item[rows])}
    with torch.no_grad():
        probs = model(batch).sigmoid().double().numpy()
    labels = dm.samples.label[rows].astype(np.float64)
    assert logged["val/auc"] == pytest.approx(_naive_auc(probs, labels), abs=1e-6)
    assert logged["val/logloss"] == pytest.approx(_naive_logloss(probs, labels), rel=1e-5)


def test_module_arguments_and_checkpoint_spec():
    with pytest.raises(ValueError, match="`lr` must be positive"):
        CTRModule(FM(2, 2), lr=0)
    with pytest.raises(TypeError, match="must be a torch.nn.Module"):
        CTRModule("FM")
    model = CTRModule(FM(2, 3, embedding_dim=4), weight_decay=0.1)
    assert model.hparams["backbone"]["class_path"] == "darec.ctr.fm.FM"
    rebuilt = CTRModule(**model.hparams)
    assert isinstance(rebuilt.backbone, FM) and rebuilt.backbone.embedding_dim == 4


def _fit_and_test(dm: CTRDataModule, backbone: torch.nn.Module, epochs: int = 8) -> tuple[float, float]:
    """Trains with the module's loss and optimizer on the training split; test AUC and LogLoss."""
    torch.manual_seed(0)
    module = CTRModule(backbone, lr=0.02)
    optimizer = module.configure_optimizers()
    module.train()
    for _ in range(epochs):
        for batch in dm.train_dataloader():
            optimizer.zero_grad()
            module.loss(batch).backward()
            optimizer.step()
    module.eval()
    with torch.no_grad():
        batch = next(iter(dm.test_dataloader()))
        probs = module(batch).sigmoid().double().numpy()
    labels = batch["label"].double().numpy()
    return _naive_auc(probs, labels), _naive_logloss(np.clip(probs, 1e-7, 1 - 1e-7), labels)


@pytest.fixture(scope="module")
def explained(tmp_path_factory):
    """Labels independent of the ids; explanations right 90% of the time."""
    log, clicks = random_log(num_users=40, num_items=100, num_pairs=4000, seed=7)
    path = write_explanations(tmp_path_factory.mktemp("expl") / "expl.jsonl", log, clicks, accuracy=0.9)
    return log, str(path)


@pytest.mark.parametrize("backbone", [FM, DeepFM, DCNv2])
def test_explanations_beat_ids_only_and_the_shuffled_control_does_not(explained, backbone):
    log, path = explained
    common = {"batch_size": 512, "eval_batch_size": 4000, "seed": 0}
    ids = CTRDataModule.from_log(log, **common)
    text = CTRDataModule.from_log(log, explanations=path, text_encoder=KeywordEncoder(), **common)
    shuffled = CTRDataModule.from_log(log, explanations=path, text_encoder=KeywordEncoder(), shuffle_explanations=True, **common)
    size = {"num_users": ids.num_users, "num_items": ids.num_items, "embedding_dim": 8}
    id_auc, id_loss = _fit_and_test(ids, backbone(**size))
    text_auc, text_loss = _fit_and_test(text, backbone(**size, text_dim=text.text_dim))
    shuffled_auc, shuffled_loss = _fit_and_test(shuffled, backbone(**size, text_dim=shuffled.text_dim))
    assert text_auc > id_auc + 0.25 and text_auc > 0.85, (id_auc, text_auc)
    assert text_loss < id_loss - 0.2, (id_loss, text_loss)
    assert shuffled_auc < id_auc + 0.08 and shuffled_auc < 0.62, (id_auc, shuffled_auc)  # no gain
    assert shuffled_loss > text_loss + 0.2, (text_loss, shuffled_loss)
