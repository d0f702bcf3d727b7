"""Tests of darec.utils.spec: recording and rebuilding module constructors."""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn
from torch_geometric.nn.models import LightGCN

from darec.backbones import MatrixFactorization
from darec.backbones import Backbone
from darec.utils.spec import TRUSTED_CLASSES_ENV, build_from_spec, describe, is_trusted, trusted_classes


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
    spec = describe(model)
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
    assert describe(rebuilt) == spec


def test_lightgcn_per_layer_alpha_is_not_recorded():
    model = LightGCN(num_nodes=5, embedding_dim=4, num_layers=2, alpha=torch.tensor([0.5, 0.3, 0.2]))
    assert describe(model) is None  # a tensor argument cannot be recorded as a plain value


@pytest.mark.parametrize(
    ("kwargs", "init_args"),
    [({"num_nodes": 9, "embedding_dim": 4}, {"num_nodes": 9, "embedding_dim": 4}), ({"num_nodes": 9}, {"num_nodes": 9})],
)
def test_matrix_factorization_round_trip(kwargs, init_args):
    model = MatrixFactorization(**kwargs)
    spec = describe(model)
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


class DescribedDefaults(Defaults):
    def darec_spec(self) -> dict:
        return {"size": self.size, "weights": self.weights, "scale": self.scale}


def test_describe_none_without_an_explicit_description():
    assert describe(Forgetful(3)) is None
    assert describe(Opaque(torch.ones(2))) is None


def test_describe_defaults_and_plain_values():
    spec = describe(DescribedDefaults(4, weights=(3, 4), scale=1.0))
    assert spec["init_args"] == {"size": 4, "weights": [3, 4]}  # defaults are left out, tuples become lists
    assert spec["class_path"].endswith("test_spec.DescribedDefaults")


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
    assert type(build_from_spec(spec, trusted=[Outer.Inner])) is Outer.Inner


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
        build_from_spec({"class_path": class_path}, what="the backbone", trusted=[class_path])
    message = str(info.value)
    assert message.startswith(f"cannot import {class_path!r} to rebuild the backbone: {reason}")
    assert f"To fix it, either {fix}" in message
    assert "DaRecModule.load_from_checkpoint(path, backbone=MyModel(...))" in message


def test_build_from_spec_reports_a_missing_import_inside_the_module(tmp_path, monkeypatch):
    (tmp_path / "broken_models.py").write_text("import no_such_dependency\n\nclass Model: pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ImportError, match="No module named 'no_such_dependency'"):
        build_from_spec({"class_path": "broken_models.Model"}, trusted=["broken_models.Model"])


# -- explicit descriptions ------------------------------------------------------------------------
class Described(Backbone):
    def __init__(self, num_nodes: int, dim: int = 4, names: tuple = ("a",)) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.zeros(num_nodes, dim))
        self._names = names

    def get_embedding(self, edge_index, edge_weight=None):
        return self.table

    def darec_spec(self):
        return {"num_nodes": self.table.size(0), "dim": self.table.size(1), "names": self._names}


class Silent(Backbone):
    def __init__(self, num_nodes: int) -> None:
        super().__init__()
        self.num_nodes = num_nodes  # named like the argument, but nothing reads it back
        self.table = nn.Parameter(torch.zeros(num_nodes, 2))

    def get_embedding(self, edge_index, edge_weight=None):
        return self.table


def test_describe_uses_the_method_not_the_attributes():
    spec = describe(Described(5, dim=3, names=("a", "b")))
    assert spec == {"class_path": f"{__name__}.Described", "init_args": {"num_nodes": 5, "dim": 3, "names": ["a", "b"]}}
    assert describe(Described(5))["init_args"] == {"num_nodes": 5}  # defaults left out
    assert describe(Silent(3)) is None  # the Backbone default: cannot say
    assert describe(Defaults(4)) is None  # no method, not registered: no reflection
    rebuilt = build_from_spec(spec, trusted=[Described])
    assert type(rebuilt) is Described and rebuilt.table.shape == (5, 3)


def test_describe_rejects_values_that_are_not_plain():
    class Bad(Described):
        def darec_spec(self):
            return {"num_nodes": torch.tensor(3)}

    with pytest.raises(TypeError, match="'num_nodes' is Tensor, not a plain value"):
        describe(Bad(3))


def test_backbone_is_abstract():
    class NoEmbedding(Backbone):
        pass

    with pytest.raises(TypeError, match="get_embedding"):
        NoEmbedding()
    assert isinstance(MatrixFactorization(3), Backbone)


# -- trusted classes ------------------------------------------------------------------------------
def test_untrusted_class_is_refused_before_it_is_imported(tmp_path, monkeypatch):
    (tmp_path / "side_effect_models.py").write_text("import os\nos.environ['DAREC_TEST_IMPORTED'] = '1'\nfrom torch.nn import Linear as Model\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("DAREC_TEST_IMPORTED", raising=False)
    spec = {"class_path": "side_effect_models.Model", "init_args": {"in_features": 2, "out_features": 1}}
    with pytest.raises(ImportError) as info:
        build_from_spec(spec, what="the backbone")
    message = str(info.value)
    assert message.startswith("cannot import 'side_effect_models.Model' to rebuild the backbone: darec imports only")
    assert "trusted_classes=['side_effect_models.Model']" in message and TRUSTED_CLASSES_ENV in message
    assert "backbone=Model(...)" in message
    assert "DAREC_TEST_IMPORTED" not in os.environ  # the module never ran
    with trusted_classes(["side_effect_models.Model"]):
        assert isinstance(build_from_spec(spec), nn.Linear)
    assert os.environ.pop("DAREC_TEST_IMPORTED") == "1"
    with pytest.raises(ImportError, match="darec imports only"):
        build_from_spec(spec)  # trusted only within the block


@pytest.mark.parametrize(
    ("class_path", "trusted", "env", "expected"),
    [
        ("darec.backbones.MatrixFactorization", (), "", True),
        ("torch_geometric.nn.models.LightGCN", (), "", True),
        ("torch_geometric.nn.models.lightgcn.LightGCN", (), "", True),
        ("torch_geometric.nn.models.GAT", (), "", False),
        ("darecs.Model", (), "", False),
        ("mypkg.models.Model", ("mypkg.*",), "", True),
        ("mypkg.models.Model", ("mypkg.models.Other",), "", False),
        ("mypkg.models.Model", (), "other.Model, mypkg.models.Model", True),
        ("mypkg.models.Model", (), "mypkg.*", True),
    ],
)
def test_is_trusted(monkeypatch, class_path, trusted, env, expected):
    monkeypatch.setenv(TRUSTED_CLASSES_ENV, env)
    assert is_trusted(class_path, trusted) is expected


def test_build_from_spec_refuses_what_is_not_a_module_class():
    with pytest.raises(TypeError, match="not a torch.nn.Module class"):
        build_from_spec({"class_path": "os.getcwd"}, trusted=["os.getcwd"])
    with pytest.raises(TypeError, match="not a torch.nn.Module class"):
        build_from_spec({"class_path": "darec.utils.spec.describe"})
