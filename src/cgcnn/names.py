"""Options chosen by name (activation, pooling, convolution, ...), resolved in one place.

Every name goes through :func:`resolve`, which raises an :class:`~cgcnn.errors.InputError`
(a ``ValueError``) listing the valid choices for anything else; nothing silently falls back
to a default.  The lists are plain tuples, importable without torch, so the command line
offers them as ``choices``.  The convolutions' names are those of the registry in
:mod:`cgcnn.nn.convs`, which checks that the two agree.
"""

from __future__ import annotations

from collections.abc import Iterable

from cgcnn.errors import InputError

ACTIVATIONS = ("softplus", "relu", "silu", "sigmoid", "tanh")
POOLINGS = ("mean", "max", "sum", "attention")
READOUTS = ("pooled", "site")
CONVOLUTIONS = ("gated", "shared", "edgegated", "threebody", "none")
TASKS = ("regression", "classification")
LOSSES = ("huber", "mse", "l1")
OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULERS = ("cosine", "multistep", "none")


def resolve(kind: str, name: str, choices: Iterable[str]) -> str:
    """``name`` in lower case if it is one of ``choices``; else an InputError listing them."""
    key = str(name).strip().lower()
    valid = list(choices)
    if key not in valid:
        raise InputError(kind, f"unknown {kind} {name!r}; choose one of: {', '.join(valid)}")
    return key
