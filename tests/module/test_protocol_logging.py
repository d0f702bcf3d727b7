import lightning as L
import yaml

import darec
from darec.backbones import MatrixFactorization
from tests.module.conftest import make_interactions


def test_protocol_is_logged_with_the_results(tmp_path):
    data = darec.data.RecDataModule.from_interactions(make_interactions(), text_encoder=None)
    model = darec.DaRecModule(MatrixFactorization(100, 8))
    trainer = L.Trainer(
        max_epochs=1, logger=L.pytorch.loggers.CSVLogger(tmp_path), enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0,
    )
    trainer.fit(model, datamodule=data)
    hparams = yaml.safe_load((tmp_path / "lightning_logs" / "version_0" / "hparams.yaml").read_text())
    protocol = hparams["protocol"]
    assert protocol["masked_at_validation"] == "train"
    assert protocol["masked_at_test"] == "train+valid"
    assert protocol["count_train"] == len(make_interactions().train)
    assert hparams["ks"] == [5, 10, 20]
