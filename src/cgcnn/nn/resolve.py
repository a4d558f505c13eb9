"""Activations by name; the name lists and :func:`resolve` live in :mod:`cgcnn.names`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cgcnn.names import ACTIVATIONS, resolve

if TYPE_CHECKING:
    from torch import nn


def make_activation(name: str) -> nn.Module:
    """A new activation module by name (``softplus | relu | silu | sigmoid | tanh``)."""
    from torch import nn

    modules = {
        "softplus": nn.Softplus,
        "relu": nn.ReLU,
        "silu": nn.SiLU,
        "sigmoid": nn.Sigmoid,
        "tanh": nn.Tanh,
    }
    return modules[resolve("activation", name, ACTIVATIONS)]()
