"""Options chosen by name (activation, pooling, convolution, ...) resolved in one place.

Every name goes through :func:`resolve`, which raises an :class:`~cgcnn.errors.InputError`
(a ``ValueError``) listing the valid choices for anything else; nothing silently falls back
to a default.  The name lists are plain tuples, importable without torch, so the command
line can offer them as choices.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from cgcnn.errors import InputError

if TYPE_CHECKING:
    from torch import nn

ACTIVATIONS = ("softplus", "relu", "silu", "sigmoid", "tanh")
POOLINGS = ("mean", "max", "sum", "attention")
CONVOLUTIONS = ("gated", "shared", "edgegated", "none")
TASKS = ("regression", "classification")
LOSSES = ("huber", "mse", "l1")
OPTIMIZERS = ("adamw", "sgd")
SCHEDULERS = ("cosine", "multistep", "none")


def resolve(kind: str, name: str, choices: Iterable[str]) -> str:
    """``name`` in lower case if it is one of ``choices``; else an InputError listing them."""
    key = str(name).strip().lower()
    valid = list(choices)
    if key not in valid:
        raise InputError(kind, f"unknown {kind} {name!r}; choose one of: {', '.join(valid)}")
    return key


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
