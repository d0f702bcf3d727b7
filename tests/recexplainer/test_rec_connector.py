"""RX-2: the connector MLP, d_rec -> H/2 -> GELU -> H."""

from __future__ import annotations

import pytest
import torch

from darec.recexplainer.rec_connector import RecConnector

REC_DIM = 8


def test_connector_widths_and_gelu_mlp():
    connector = RecConnector(REC_DIM, 32)
    assert (connector.fc1.in_features, connector.fc1.out_features, connector.fc2.out_features) == (REC_DIM, 16, 32)
    x = torch.randn(5, REC_DIM)
    expected = connector.fc2(torch.nn.functional.gelu(connector.fc1(x)))
    torch.testing.assert_close(connector(x), expected)
    with pytest.raises(ValueError, match="rec_dim=8"):
        connector(torch.randn(5, 3))
    with pytest.raises(ValueError, match="hidden_size"):
        RecConnector(REC_DIM, 0)


def test_connector_maps_any_leading_shape_and_takes_a_hidden_width():
    connector = RecConnector(REC_DIM, 32, hidden_dim=5)
    assert connector.fc1.out_features == 5
    assert connector(torch.randn(2, 3, REC_DIM)).shape == (2, 3, 32)
    assert RecConnector(REC_DIM, 1).hidden_dim == 1  # H // 2, at least 1
