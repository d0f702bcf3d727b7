"""Every shipped config parses, and the quick-start config is the full DaRec config with a short budget."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from darec.cli import cli
from darec.sequential_cli import configured_data_classes, is_sequential_config

CONFIGS = Path(__file__).resolve().parents[2] / "examples" / "configs"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_config_parses(path, capsys):
    args = ["fit", "--config", str(path), "--print_config"]
    sequential = is_sequential_config(args)
    ctr = any(base.__name__ == "CTRDataModule" for cls in configured_data_classes(args) for base in cls.__mro__)
    with pytest.raises(SystemExit) as info:
        cli(args=args, run=True)  # the one entry point routes sequential configs to SequentialCLI
    assert info.value.code in (0, None), capsys.readouterr().err
    expected = "darec.data.MovieLens100KSequences" if sequential else "darec.data.MovieLens100K"
    expected = "darec.ctr.MovieLens100KCTR" if ctr else expected
    assert f"class_path: {expected}\n" in capsys.readouterr().out


def test_quick_config_differs_from_the_full_one_only_in_budget():
    full = yaml.safe_load((CONFIGS / "ml100k_lightgcn_darec.yaml").read_text())
    quick = yaml.safe_load((CONFIGS / "ml100k_lightgcn_darec_quick.yaml").read_text())
    assert quick["model"].pop("lr") > full["model"].pop("lr")
    # The quick config trains in small batches (more steps in its 200 epochs); everything else matches.
    assert quick["data"]["init_args"].pop("batch_size") <= full["data"]["init_args"].pop("batch_size")
    assert quick["model"] == full["model"] and quick["data"] == full["data"]
    assert quick["seed_everything"] == full["seed_everything"]
    alignment = [c for c in full["trainer"]["callbacks"] if "EarlyStopping" not in c["class_path"]]
    assert quick["trainer"]["callbacks"] == alignment  # same alignment, no early stopping
    assert quick["trainer"]["max_epochs"] <= 200 < full["trainer"]["max_epochs"]
