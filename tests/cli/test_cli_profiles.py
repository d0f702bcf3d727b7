"""``darec fit`` with item profiles written by a language model, through LightningCLI."""

from __future__ import annotations

import json

import torch

from darec.cli import cli
from darec.data import write_split_dir
from darec.llm import FakeLLM
from darec.profiles import ProfileJob, ProfileSource
from tests.profiles.conftest import make_data

CONFIG = """\
model:
  backbone:
    class_path: torch_geometric.nn.models.LightGCN
    init_args:
      embedding_dim: 8
      num_layers: 1
trainer:
  max_epochs: 1
  enable_progress_bar: false
  enable_model_summary: false
  num_sanity_val_steps: 0
  logger: false
data:
  class_path: darec.data.RecDataModule
  init_args:
    batch_size: 4
    text_encoder:
      class_path: tests.profiles.conftest.HashEncoder
"""


def test_fit_config_with_item_profiles(tmp_path):
    data, log = make_data()
    split = write_split_dir(data, tmp_path / "split")
    items = tmp_path / "items.jsonl"
    llm = FakeLLM(lambda prompt: json.dumps({"summary": f"written profile {len(prompt)}"}))
    ProfileJob(llm, ProfileSource(data, log), "item", items, progress=False).run()
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG)
    args = [
        "fit", "--config", str(config), f"--data.init_args.source={split}", f"--data.init_args.item_profiles={items}",
        f"--data.init_args.cache_dir={tmp_path / 'cache'}", f"--trainer.default_root_dir={tmp_path / 'run'}",
        "--test_after_fit=false",
    ]  # fmt: skip
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run = cli(args=args, run=True)
    finally:
        torch.set_num_threads(previous)
    dm = run.datamodule
    assert dm.profile_paths == {"item": str(items)}
    assert run.trainer.current_epoch == 1
    encoder = dm.text_encoder
    summaries = [json.loads(line)["summary"] for line in items.read_text().splitlines()]
    assert torch.equal(dm.text_embeddings["item"], encoder.encode(summaries))
    assert run.model.text_sides  # the module received the text embeddings
