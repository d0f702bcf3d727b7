import copy
import pickle

import numpy as np
import torch
from torch_geometric.nn.models import LightGCN

import darec


def _trained_like_module():
    model = darec.DaRecModule(LightGCN(7, 4, num_layers=2), num_users=3, num_items=4)
    model.set_graph(torch.tensor([[0, 0], [1, 1], [2, 3], [0, 2]]))
    return model


def test_deepcopy_and_pickle_keep_the_graph_and_the_fast_path():
    model = _trained_like_module()
    expected = model.recommend([0, 1, 2], k=2)
    for clone in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        items, scores = clone.recommend([0, 1, 2], k=2)
        assert torch.equal(items, expected[0]) and torch.allclose(scores, expected[1])
        # the symmetric aggregation survives the copy and still matches the dense product
        emb = clone.backbone.get_embedding(clone._graph_on_device())
        assert torch.allclose(emb, model.backbone.get_embedding(model._graph_on_device()))


def test_bpr_sampler_pickles_with_its_random_state():
    ds = darec.data.BPRTriplets(np.array([[0, 0], [0, 1], [1, 2], [2, 3]]), 5, 2, seed=0)
    clone = pickle.loads(pickle.dumps(ds))
    assert [b["neg"].tolist() for b in clone] == [b["neg"].tolist() for b in ds]
