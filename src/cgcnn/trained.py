"""A trained model as it was saved: any checkpoint read once into one object.

:func:`open_checkpoint` reads a checkpoint of ``cgcnn train``, an ensemble listing
(``ensemble.json``) or an original CGCNN ``.pth.tar`` through the one loader
(:func:`cgcnn.checkpoint.read_checkpoint`: no pickled code runs, tensors checked against
their digest) and returns a :class:`Checkpoint`: its kind, configs, models, members and
uncertainty scale.  ``cgcnn predict``, :func:`cgcnn.load`, ``--init``, ensembles and
``cgcnn compare`` all go through it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cgcnn.checkpoint import is_remote, read_checkpoint
from cgcnn.errors import InputError
from cgcnn.run_folder import resolve_run_folder


@dataclass
class Checkpoint:
    """A checkpoint read once: one of ours, an ensemble listing, or an original CGCNN file.

    Attributes:
        source: the path or address, as given.
        kind: ``"cgcnn"`` (``best.ckpt`` / ``last.ckpt`` of ``cgcnn train``), ``"ensemble"``
            (an ``ensemble.json``: :attr:`members`, :attr:`uncertainty_scale`) or
            ``"original"`` (a ``.pth.tar`` of the original code; needs its
            ``atom_init.json`` to make a model).
        state: what the file holds (``None`` for an ensemble).
        members: an ensemble's checkpoints, each read once.
        uncertainty_scale: an ensemble's factor per target on its members' spread.
    """

    source: str
    kind: str
    state: dict[str, Any] | None = None
    members: list[Checkpoint] = field(default_factory=list)
    uncertainty_scale: list[float] | None = None

    @property
    def first(self) -> Checkpoint:
        """The checkpoint itself, or an ensemble's first member."""
        return self.members[0] if self.kind == "ensemble" else self

    @property
    def hyper_parameters(self) -> dict[str, Any]:
        return dict((self.first.state or {}).get("hyper_parameters") or {})

    @property
    def model_config(self):
        """The :class:`~cgcnn.nn.CGCNNConfig` of one of ours (of an ensemble's members)."""
        from cgcnn.nn.model import CGCNNConfig

        if self.first.kind == "original":
            raise InputError(self.source, "an original checkpoint's model needs its atom_init")
        return CGCNNConfig.from_dict(self.hyper_parameters["model_config"])

    def info(self) -> dict[str, Any]:
        """``graph_settings``, ``train_config`` and ``meta`` (empty for an original file)."""
        if self.first.kind == "original":
            return {"graph_settings": {}, "train_config": {}, "meta": {"original": True}}
        hparams = self.hyper_parameters
        return {
            "graph_settings": dict(hparams.get("graph_settings", {})),
            "train_config": dict(hparams.get("train_config", {})),
            "meta": dict(hparams.get("meta", {})),
        }

    def graph_settings(self):
        """The :class:`~cgcnn.config.GraphSettings` its model was trained on (a checkpoint
        that does not record them: its Gaussians' radius and the other defaults)."""
        from cgcnn.config import GraphSettings

        recorded = self.info()["graph_settings"]
        return GraphSettings(**{"radius": self.model_config.radius, **recorded})

    def model(self, atom_features: Any = None):
        """The model (eval mode); for an original file, ``atom_features`` (its
        ``atom_init.json``, a table or a built-in name) is required."""
        if self.kind == "ensemble":
            raise InputError(self.source, "is an ensemble: take the models of its members")
        if self.kind == "original":
            if atom_features is None:
                raise InputError(
                    self.source, "is an original CGCNN checkpoint: give its atom_init.json"
                )
            from cgcnn.compat import model_from_original
            from cgcnn.elements import resolve_atom_features

            return model_from_original(
                self.state, resolve_atom_features(atom_features), self.source
            )
        from cgcnn.nn.model import CGCNN

        model = CGCNN(self.model_config)
        weights = {
            k.removeprefix("model."): v
            for k, v in self.state["state_dict"].items()
            if k.startswith("model.")
        }
        try:
            model.load_state_dict(weights)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()
            raise InputError(
                self.source, f"its weights do not fit its model ({first[-1].strip()[:160]})"
            ) from None
        return model.eval()

    def models(self) -> list:
        """Every model: the members of an ensemble, else the one."""
        if self.kind == "ensemble":
            return [member.model() for member in self.members]
        return [self.model()]


def open_checkpoint(source: str | os.PathLike) -> Checkpoint:
    """Read any checkpoint once (see :class:`Checkpoint`), through :func:`read_checkpoint`.

    Raises:
        InputError: a missing, unreadable, hostile or damaged file, an ensemble listing that
            is not one, or a PyTorch file that is neither ours nor an original CGCNN one.
    """
    name = os.fspath(resolve_run_folder(source))
    if not is_remote(name) and Path(name).suffix == ".json":
        return _open_ensemble(Path(name))
    state = read_checkpoint(name)
    from cgcnn.compat import is_original_checkpoint

    if isinstance(state, dict) and is_original_checkpoint(state):
        return Checkpoint(name, "original", state)
    hparams = state.get("hyper_parameters") if isinstance(state, dict) else None
    if not hparams or "model_config" not in hparams:
        raise InputError(name, "is not a cgcnn checkpoint (no model configuration in it)")
    return Checkpoint(name, "cgcnn", state)


def _open_ensemble(path: Path) -> Checkpoint:
    """An ``ensemble.json`` (written by ``cgcnn train --ensemble K``): its members, relative
    to its folder, and the scale of their spread (one factor per target; absent for an
    ensemble trained without a validation split, or written by an older version)."""
    import json

    if not path.is_file():
        raise InputError(str(path), "no such ensemble file")
    try:
        listing = json.loads(path.read_text())
        listed = listing["members"]
    except (ValueError, KeyError, TypeError):
        raise InputError(str(path), "is not an ensemble file (no 'members' list)") from None
    if not listed:
        raise InputError(str(path), "lists no member checkpoints")
    scale = listing.get("uncertainty_scale")
    if scale is not None and (
        not isinstance(scale, list) or not all(isinstance(v, int | float) for v in scale)
    ):
        raise InputError(str(path), "has an 'uncertainty_scale' that is not a list of numbers")
    members = [open_checkpoint(path.parent / member) for member in listed]
    if any(member.kind != "cgcnn" for member in members):
        raise InputError(str(path), "lists a member that is not a checkpoint of cgcnn train")
    return Checkpoint(
        str(path),
        "ensemble",
        members=members,
        uncertainty_scale=None if scale is None else [float(v) for v in scale],
    )
