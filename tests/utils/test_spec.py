"""Tests of darec.utils.spec: recording and rebuilding module constructors."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch_geometric.nn.models import LightGCN

from darec.backbones import MatrixFactorization
from darec.utils.spec import build_from_spec, init_spec


def _same_state(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    assert all(sa[k].shape == sb[k].shape and sa[k].dtype == sb[k].dtype for k in sa)
    b.load_state_dict(sa)  # a checkpoint of one loads into the other


@pytest.mark.parametrize(
    ("kwargs", "init_args"),
    [
        ({"num_nodes": 12, "embedding_dim": 8, "num_layers": 3}, {"num_nodes": 12, "embedding_dim": 8, "num_layers": 3}),
        (
            {"num_nodes": 5, "embedding_dim": 4, "num_layers": 2, "alpha": 0.5},
            {"num_nodes": 5, "embedding_dim": 4, "num_layers": 2, "alpha": 0.5},
        ),
    ],
)
def test_lightgcn_round_trip(kwargs, init_args):
    model = LightGCN(**kwargs)
    spec = init_spec(model)
    assert spec == {"class_path": "torch_geometric.nn.models.lightgcn.LightGCN", "init_args": init_args}
    rebuilt = build_from_spec(spec)
    assert type(rebuilt) is LightGCN
    assert (rebuilt.num_nodes, rebuilt.embedding_dim, rebuilt.num_layers) == (
        kwargs["num_nodes"],
        kwargs["embedding_dim"],
        kwargs["num_layers"],
    )
    torch.testing.assert_close(rebuilt.alpha, model.alpha)
    _same_state(model, rebuilt)
    assert init_spec(rebuilt) == spec


def test_lightgcn_per_layer_alpha_is_not_recorded():
    model = LightGCN(num_nodes=5, embedding_dim=4, num_layers=2, alpha=torch.tensor([0.5, 0.3, 0.2]))
    assert init_spec(model) is None  # a tensor argument cannot be recorded as a plain value


@pytest.mark.parametrize(
    ("kwargs", "init_args"),
    [({"num_nodes": 9, "embedding_dim": 4}, {"num_nodes": 9, "embedding_dim": 4}), ({"num_nodes": 9}, {"num_nodes": 9})],
)
def test_matrix_factorization_round_trip(kwargs, init_args):
    model = MatrixFactorization(**kwargs)
    spec = init_spec(model)
    assert spec == {"class_path": "darec.backbones.matrix_factorization.MatrixFactorization", "init_args": init_args}
    rebuilt = build_from_spec(spec)
    assert type(rebuilt) is MatrixFactorization
    assert rebuilt.embedding.weight.shape == model.embedding.weight.shape
    _same_state(model, rebuilt)


class Forgetful(nn.Module):
    def __init__(self, size: int, scale: float = 1.0) -> None:
        super().__init__()
        self.layer = nn.Linear(size, size)  # `size` is not kept as an attribute


class Opaque(nn.Module):
    def __init__(self, table: torch.Tensor, name: str = "x") -> None:
        super().__init__()
        self.table = table  # a required argument that is not a plain value


class Defaults(nn.Module):
    def __init__(self, size: int, weights: tuple = (1, 2), scale: float = 1.0, opaque: object = None, **kwargs) -> None:
        super().__init__()
        self.size, self.weights, self.scale, self.opaque = size, weights, scale, object()


def test_init_spec_none_without_required_attribute():
    assert init_spec(Forgetful(3)) is None
    assert init_spec(Opaque(torch.ones(2))) is None


def test_init_spec_defaults_and_plain_values():
    spec = init_spec(Defaults(4, weights=(3, 4), scale=1.0))
    assert spec["init_args"] == {"size": 4, "weights": [3, 4]}  # defaults and non-plain optionals are left out
    assert spec["class_path"].endswith("test_spec.Defaults")


def test_build_from_spec_errors():
    with pytest.raises(ValueError, match="a module spec needs a 'class_path'"):
        build_from_spec({"init_args": {}})
    with pytest.raises(ValueError, match="a module spec needs a 'class_path'"):
        build_from_spec("torch.nn.Linear")
    with pytest.raises(ImportError, match="cannot import 'torch.nn.NoSuchLayer' to rebuild the module"):
        build_from_spec({"class_path": "torch.nn.NoSuchLayer"})
    with pytest.raises(ImportError, match="cannot import 'no_such_package.Model'"):
        build_from_spec({"class_path": "no_such_package.Model"})


class Outer:
    class Inner(nn.Linear):
        pass


def test_build_from_spec_nested_class():
    spec = {"class_path": f"{__name__}.Outer.Inner", "init_args": {"in_features": 2, "out_features": 1}}
    assert type(build_from_spec(spec)) is Outer.Inner


@pytest.mark.parametrize(
    ("class_path", "reason", "fix"),
    [
        (
            "__main__.MyModel",
            "the class was defined in the script that was run (the `__main__` module)",
            "define MyModel in a module that can be imported wherever the checkpoint is loaded",
        ),
        ("mypkg.train.<locals>.MyModel", "the class was defined inside a function", "define MyModel at the top level"),
        ("torch.nn.MyModel", "module 'torch.nn' has no attribute 'MyModel'", "make sure module 'torch.nn' defines"),
        ("no_such_models.MyModel", "No module named 'no_such_models'", "make the module 'no_such_models' importable"),
    ],
)
def test_build_from_spec_says_how_to_fix_an_unimportable_class(class_path, reason, fix):
    with pytest.raises(ImportError) as info:
        build_from_spec({"class_path": class_path}, what="the backbone")
    message = str(info.value)
    assert message.startswith(f"cannot import {class_path!r} to rebuild the backbone: {reason}")
    assert f"To fix it, either {fix}" in message
    assert "DaRecModule.load_from_checkpoint(path, backbone=MyModel(...))" in message


def test_build_from_spec_reports_a_missing_import_inside_the_module(tmp_path, monkeypatch):
    (tmp_path / "broken_models.py").write_text("import no_such_dependency\n\nclass Model: pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ImportError, match="No module named 'no_such_dependency'"):
        build_from_spec({"class_path": "broken_models.Model"})
