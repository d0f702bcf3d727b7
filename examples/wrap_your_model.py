"""Train your own collaborative-filtering model with DaRec's alignment, in about 40 lines.

Any ``nn.Module`` works as a backbone if it has ``get_embedding(edge_index, edge_weight=None)``
returning one row per user and then one row per item. darec passes the symmetrically normalised
training graph as a sparse ``(N, N)`` tensor; the model of this example (``TwoTowerGraph``, in
``two_tower.py`` beside this script) uses it for one propagation step.

The model is imported, not defined here: a checkpoint records the backbone's class by its import
path and rebuilds it from there, and a class defined in the script you run would be recorded as
``__main__.TwoTowerGraph``, which nothing else can import. Define your own model in a module too.

    HF_HUB_OFFLINE=1 python examples/wrap_your_model.py --max-epochs 50

and, later, from anywhere, with this folder on the Python path and the class named as trusted
(darec imports no other class a checkpoint names)::

    PYTHONPATH=examples DAREC_TRUSTED_CLASSES=two_tower.TwoTowerGraph \
        python -c "import darec; print(darec.DaRecModule.load_from_checkpoint('best.ckpt'))"
"""

import argparse

import lightning as L
from two_tower import TwoTowerGraph  # importable, so that checkpoints can rebuild the model

import darec


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-epochs", type=int, default=300)
    args = parser.parse_args()
    L.seed_everything(2024)
    data = darec.data.MovieLens100K()  # interactions, split, text; text encoded once and cached
    model = darec.DaRecModule(backbone=TwoTowerGraph(data.num_nodes), alpha=1e-2, head_hidden_dim=32)
    trainer = L.Trainer(
        max_epochs=args.max_epochs,
        check_val_every_n_epoch=min(10, args.max_epochs),
        callbacks=[
            darec.callbacks.GlobalStructureAlignment(weight=1e-2),
            darec.callbacks.LocalStructureAlignment(num_clusters=10, weight=1e-2),
            darec.callbacks.WarmupEarlyStopping("val/recall@20", mode="max", patience=10, start_epoch=100),
            L.pytorch.callbacks.ModelCheckpoint(monitor="val/recall@20", mode="max"),
        ],
    )
    trainer.fit(model, datamodule=data)
    trainer.test(model, datamodule=data, ckpt_path="best")
    best_path = trainer.checkpoint_callback.best_model_path
    best = darec.DaRecModule.load_from_checkpoint(best_path)  # rebuilds two_tower.TwoTowerGraph by itself
    items, scores = best.recommend([0, 1, 2], k=5)
    print("best checkpoint:", best_path)
    print("top-5 items (new ids) of users 0-2:", items.tolist())


if __name__ == "__main__":
    main()
