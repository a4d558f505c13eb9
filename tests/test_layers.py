"""The layer registry and reset_parameters(): every layer can draw its weights afresh."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cgcnn.names import CONVOLUTIONS
from cgcnn.nn import CGCNN, CGCNNConfig, EdgeGatedConv, GatedConv, Pooling, SharedConv
from cgcnn.nn.convs import CONVOLUTION_LAYERS


def test_the_registry_is_the_conv_option():
    from cgcnn.cli import build_parser

    assert tuple(CONVOLUTION_LAYERS) == CONVOLUTIONS
    train = next(a for a in build_parser()._actions if a.dest == "command").choices["train"]
    conv = next(a for a in train._actions if a.dest == "conv")
    assert tuple(conv.choices) == CONVOLUTIONS
    for name, registered in CONVOLUTION_LAYERS.items():
        model = CGCNN(CGCNNConfig(atom_input_len=4, atom_fea_len=8, h_fea_len=8, conv=name))
        assert len(model.convs) == (0 if registered.layer is None else 3)
        assert all(type(layer) is registered.layer for layer in model.convs)
        assert hasattr(model, "edge_embedding") == registered.updates_edges


LAYERS = {
    "gated": lambda: GatedConv(8, 5),
    "shared": lambda: SharedConv(8, 5),
    "edgegated": lambda: EdgeGatedConv(8, edge_messages=True),
    "attention pooling": lambda: Pooling("attention", 8),
    "model": lambda: CGCNN(CGCNNConfig(atom_input_len=4, atom_fea_len=8, h_fea_len=8)),
    "edge-gated model": lambda: CGCNN(
        CGCNNConfig(atom_input_len=4, atom_fea_len=8, h_fea_len=8, conv="edgegated")
    ),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_reset_parameters_draws_every_weight_afresh(name):
    torch.manual_seed(0)
    layer = LAYERS[name]()
    for module in layer.modules():
        if isinstance(module, nn.BatchNorm1d):
            module.running_mean.fill_(5.0)
    before = {k: v.detach().clone() for k, v in layer.named_parameters()}
    torch.manual_seed(1)
    layer.reset_parameters()
    weights = [k for k in before if k.endswith("weight") and before[k].dim() == 2]
    assert weights, "no weight matrix to check"
    for key in weights:
        assert not torch.equal(before[key], dict(layer.named_parameters())[key]), key
    for module in layer.modules():
        if isinstance(module, nn.BatchNorm1d):
            assert torch.equal(module.running_mean, torch.zeros_like(module.running_mean))
    # a second reset with the same seed draws the same weights: the reset is the init's rule
    torch.manual_seed(1)
    layer.reset_parameters()
    again = {k: v.detach().clone() for k, v in layer.named_parameters()}
    torch.manual_seed(1)
    layer.reset_parameters()
    for key, value in layer.named_parameters():
        assert torch.equal(value, again[key]), key
