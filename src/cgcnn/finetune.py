"""Start a training run from a trained model's weights (fine-tuning, ``--init``).

A model trained on a large data set (the original CGCNN's formation-energy model was trained
on 28,046 Materials Project crystals) has learnt atom and bond representations that a small
data set cannot teach.  :func:`load_start` reads such a model, ours (``best.ckpt``) or the
original CGCNN's (``*.pth.tar``), and :func:`copy_weights` copies its weights into the
model of a new run, which then trains on the new data as usual.

What comes from the checkpoint and what from the new run:

- the checkpoint: the architecture (convolution, widths, depth, activation, pooling, batch
  norms, Gaussian expansion), the atom feature table and the graph settings (cutoff,
  neighbours), since the weights only make sense with them;
- the new run: the task, the targets and their scaling (refit on the new training split),
  and dropout.  The output layer is copied only when the task and its width are unchanged;
  otherwise it starts from random weights.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from cgcnn.elements import AtomFeatures, resolve_atom_features
from cgcnn.errors import InputError
from cgcnn.nn.model import CGCNN
from cgcnn.resume import same_value

#: train() options that the checkpoint's model config decides (same names as its fields)
ARCHITECTURE_OPTIONS = (
    "atom_fea_len",
    "n_conv",
    "h_fea_len",
    "n_h",
    "conv",
    "pooling",
    "readout",
    "activation",
    "batchnorm",
    "radius",
)

#: buffers that the new run sets itself: the feature table (taken from the checkpoint
#: separately) and the target transforms (refit on the new training split)
_OWN_BUFFERS = frozenset(
    {"atom_table", "atom_known", "target_mean", "target_std", "ref_coef", "ref_bias"}
)


@dataclass
class StartModel:
    """A trained model to start from.

    Attributes:
        model: the trained model.
        features: its atom feature table.
        max_neighbors: the neighbours per atom of its graphs.
        grow_radius: whether its graphs widened the cutoff per structure.
        source: the checkpoint's path, for messages.
        original: an original CGCNN checkpoint (its atom features come from the user).
    """

    model: CGCNN
    features: AtomFeatures
    max_neighbors: int
    grow_radius: bool
    source: str
    original: bool = False


def load_start(
    init: str | os.PathLike, atom_features: str | os.PathLike | AtomFeatures | None
) -> StartModel:
    """Read the checkpoint that ``--init`` names.

    Args:
        init: ``best.ckpt`` / ``last.ckpt`` of ``cgcnn train`` (one model: for an ensemble,
            a member's ``memberK/best.ckpt``), or an original CGCNN ``.pth.tar``.
        atom_features: for an original checkpoint, the ``atom_init.json`` it was trained
            with (required); ignored for ours, which hold their table (see
            :func:`check_architecture`).

    Raises:
        InputError: a missing or unreadable file, an ensemble listing, or an original
            checkpoint without its ``atom_init.json``.
    """
    from cgcnn.compat import ORIGINAL_MAX_NUM_NBR
    from cgcnn.trained import open_checkpoint

    source = os.fspath(init)
    if Path(source).suffix == ".json" and Path(source).is_file():
        raise InputError(
            source,
            "is an ensemble listing; start from one model, e.g. its member0/best.ckpt",
        )
    opened = open_checkpoint(source)  # read once; refused if hostile or damaged
    if opened.kind == "original":
        if not _names_a_file(atom_features):
            raise InputError(
                source,
                "is an original CGCNN checkpoint: give the atom_init.json it was trained with "
                "as --atom-features FILE",
            )
        features = resolve_atom_features(atom_features)
        # the original's graphs: its 12 nearest neighbours within the cutoff
        return StartModel(
            opened.model(features), features, ORIGINAL_MAX_NUM_NBR, False, source, original=True
        )
    model, info = opened.model(), opened.info()
    settings = opened.graph_settings()
    features = AtomFeatures(
        model.atom_table.numpy(),
        model.atom_known.numpy(),
        str(info["meta"].get("atom_features", source)),
    )
    return StartModel(model, features, settings.max_neighbors, settings.grow_radius, source)


def _names_a_file(spec: Any) -> bool:
    return isinstance(spec, str | os.PathLike) and Path(spec).is_file()


def check_architecture(start: StartModel, options: dict[str, Any], given: Iterable[str]) -> None:
    """Refuse an architecture setting that contradicts the checkpoint.

    A setting not given takes the checkpoint's value; one given with another value than
    the checkpoint's is an error, since the weights cannot be used with it.  So are atom
    features given with a checkpoint of ours, which holds its own table.

    Args:
        options: the run's settings (:meth:`cgcnn.config.RunSettings.flat`).
        given: the names of the settings given (by the caller, a preset or a config file).
    """
    given = set(given)
    if not start.original and "atom_features" in given:
        raise InputError(
            "--atom-features",
            f"the atom features come from the --init checkpoint {start.source}; leave it out",
        )
    config = start.model.config
    wanted = {name: getattr(config, name) for name in ARCHITECTURE_OPTIONS}
    wanted["max_neighbors"] = start.max_neighbors
    wanted["grow_radius"] = start.grow_radius
    for name, value in wanted.items():
        if name in given and not same_value(options[name], value):
            raise InputError(
                f"--{name.replace('_', '-')}",
                f"is {options[name]!r} but the --init checkpoint {start.source} was built with "
                f"{value!r}; leave it out to use the checkpoint's",
            )


def copy_weights(model: CGCNN, start: CGCNN) -> list[str]:
    """Copy ``start``'s weights into ``model`` wherever name and shape agree.

    The output layer is copied only when the task is the same (a regression output and a
    classification logit of the same width mean different things).  The feature table
    and the target transforms are left alone (see :data:`_OWN_BUFFERS`).

    Returns:
        The names of the weights left at their fresh initialisation, e.g.
        ``["fc_out.weight", "fc_out.bias"]``.
    """
    own = model.state_dict()
    theirs = start.state_dict()
    same_task = model.config.task == start.config.task
    copied: dict[str, torch.Tensor] = {}
    fresh: list[str] = []
    for name, value in own.items():
        if name in _OWN_BUFFERS:
            continue
        other = theirs.get(name)
        if (
            other is None
            or other.shape != value.shape
            or (name.startswith("fc_out.") and not same_task)
        ):
            fresh.append(name)
            continue
        copied[name] = other
    model.load_state_dict(copied, strict=False)
    return fresh
