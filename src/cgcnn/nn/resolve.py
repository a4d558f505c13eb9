"""Options chosen by name (activation, pooling, convolution) resolved in one place.

Every name goes through :func:`resolve`, which raises a ``ValueError`` listing the valid
choices for anything else; nothing silently falls back to a default.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "softplus": nn.Softplus,
    "relu": nn.ReLU,
    "silu": nn.SiLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
}

POOLINGS = ("mean", "max", "sum", "attention")
CONVOLUTIONS = ("gated", "shared", "none")
TASKS = ("regression", "classification")


def resolve(kind: str, name: str, choices: Any) -> str:
    """``name`` normalised to lower case if it is one of ``choices``; else a ValueError."""
    key = str(name).strip().lower()
    valid = list(choices)
    if key not in valid:
        raise ValueError(f"unknown {kind} {name!r}; choose one of: {', '.join(valid)}")
    return key


def make_activation(name: str) -> nn.Module:
    """A new activation module by name (``softplus | relu | silu | sigmoid | tanh``)."""
    return ACTIVATIONS[resolve("activation", name, ACTIVATIONS)]()
