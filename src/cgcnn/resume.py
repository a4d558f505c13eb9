"""Checks before a run continues from a checkpoint (``--resume``) or replaces an earlier run.

A resumed run must be the same run: the same data (a fingerprint of the crystals, their
targets and the split), the same graph settings, the same architecture and the same
optimisation settings, except ``epochs``, which may grow.  :func:`plan_resume` compares the
checkpoint's record with the new run's and refuses with one line naming what differs; it
also tells a finished run (its last epoch reached, or early stopping ended it) from one
that can go on.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cgcnn.config import RunSettings, fields_by_name
from cgcnn.errors import InputError

#: Files whose presence in ``--out`` marks a finished run (single model, ensemble).
FINISHED_MARKERS = ("metrics.json", "ensemble.json")
#: Optimisation settings a resumed run may change.
MAY_CHANGE = {"epochs"}


@dataclass(frozen=True)
class ResumePlan:
    """What a checkpoint allows.

    Attributes:
        source: the checkpoint, as given.
        epochs_done: epochs the checkpoint's run completed.
        complete: nothing is left to do (the planned epochs reached, or stopped early).
        why_complete: a sentence saying why, when ``complete``.
    """

    source: str
    epochs_done: int
    complete: bool
    why_complete: str = ""


def fingerprint(*arrays: Any) -> str:
    """A short SHA-256 (hex, 16 digits) of arrays and strings, for comparing data sets."""
    digest = hashlib.sha256()
    for value in arrays:
        if value is None:
            digest.update(b"none|")
            continue
        array = np.ascontiguousarray(np.asarray(value))
        if array.dtype.kind in "OU":
            digest.update("\x1f".join(map(str, array.ravel())).encode())
        else:
            digest.update(f"{array.dtype.str}{array.shape}".encode())
            digest.update(array.tobytes())
        digest.update(b"|")
    return digest.hexdigest()[:16]


def refuse_finished_out(out: str | os.PathLike, overwrite: bool) -> None:
    """Refuse to train into ``out`` when it holds a finished run, unless ``overwrite``.

    Raises:
        InputError: naming ``out``.
    """
    folder = Path(out)
    if overwrite:
        return
    found = [name for name in FINISHED_MARKERS if (folder / name).is_file()]
    if found:
        raise InputError(
            str(folder),
            f"holds a finished run ({found[0]}); choose another --out, or give --overwrite "
            "to replace it",
        )


def plan_resume(
    checkpoint: dict[str, Any],
    source: str,
    new: dict[str, Any],
) -> ResumePlan:
    """Compare a checkpoint's run with the new run's settings.

    Args:
        checkpoint: read with :func:`cgcnn.checkpoint.read_checkpoint`.
        source: its path, for messages.
        new: the new run's ``model_config``, ``train_config``, ``graph_settings`` (dicts)
            and ``data_fingerprint`` / ``split_fingerprint`` (strings).

    Raises:
        InputError: not a training checkpoint of cgcnn, or one of another run (names the
            first setting that differs, with both values).
    """
    hparams = checkpoint.get("hyper_parameters") or {}
    if "model_config" not in hparams or "loops" not in checkpoint:
        raise InputError(
            source,
            "is not a cgcnn training checkpoint (give OUT/last.ckpt of an earlier cgcnn train)",
        )
    meta = hparams.get("meta") or {}
    for key, what in (("data_fingerprint", "data"), ("split_fingerprint", "split")):
        old = meta.get(key)
        if old is not None and old != new[key]:
            raise InputError(
                source,
                f"was trained on other {what} (fingerprint {old}, now {new[key]}); "
                "resume with the data, target and split it was trained on",
            )
    _same(source, "graph setting", hparams.get("graph_settings") or {}, new["graph_settings"])
    _same(source, "model setting", hparams["model_config"], new["model_config"])
    old_train = hparams.get("train_config") or {}
    _same(source, "training setting", old_train, new["train_config"], skip=MAY_CHANGE)

    epochs_done = int(checkpoint.get("epoch", -1)) + 1
    planned = int(old_train.get("epochs", 0))
    wanted = int(new["train_config"]["epochs"])
    stopped = _stopped_early(checkpoint)
    if stopped is not None:
        return ResumePlan(
            source,
            epochs_done,
            True,
            f"early stopping ended it after epoch {stopped + 1} (no better validation for "
            f"{old_train.get('patience')} epochs)",
        )
    if epochs_done >= wanted:
        return ResumePlan(
            source,
            epochs_done,
            True,
            f"it has run {epochs_done} of {planned} epochs"
            + ("" if wanted == planned else f" (asked for {wanted})")
            + "; give more --epochs to continue it",
        )
    return ResumePlan(source, epochs_done, False)


#: where a checkpoint records each section's settings, and the sections it may fill
_RECORDS = {
    "graph_settings": {"graph"},
    "model_config": {"model", "data"},
    "train_config": {"optim"},
}


def resumed_settings(settings: RunSettings, checkpoint: dict[str, Any]) -> RunSettings:
    """``settings`` with what was not given taken from the checkpoint's record, so that a
    run resumes as it was started even where a default has changed since (given settings
    win, and :func:`plan_resume` then refuses those that differ)."""
    values = settings.flat()
    given = {name: values[name] for name in settings.given}
    return RunSettings.from_options({**_recorded_settings(checkpoint), **given})


def _recorded_settings(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The run settings a training checkpoint was made with (graph, model, optimisation,
    and the task), by setting name."""
    known = fields_by_name()
    hparams = checkpoint.get("hyper_parameters") or {}
    settings: dict[str, Any] = {}
    for record, sections in _RECORDS.items():
        for name, value in (hparams.get(record) or {}).items():
            if name in known and known[name][0] in sections and value is not None:
                settings[name] = value
    if settings.get("task") != "classification":
        settings.pop("n_classes", None)  # a regression's placeholder, not a choice
    return settings


def _same(source: str, kind: str, old: dict, new: dict, skip: set[str] = frozenset()) -> None:
    for key in sorted(set(old) | set(new)):
        if key in skip or key not in old or key not in new:
            continue  # a setting only one side knows: an older checkpoint, or a new option
        if not same_value(old[key], new[key]):
            raise InputError(
                source,
                f"was trained with another {kind}: {key} = {old[key]!r} there, "
                f"{new[key]!r} now; resume with the same settings",
            )


def same_value(a: Any, b: Any) -> bool:
    """Whether two recorded settings are the same (floats to 1e-9 relative, lists item by
    item): what a checkpoint was built with against what is asked now."""
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        try:
            return bool(np.isclose(float(a), float(b), rtol=1e-9, atol=0.0))
        except (TypeError, ValueError):
            return False
    return a == b


def _stopped_early(checkpoint: dict[str, Any]) -> int | None:
    """The epoch early stopping ended the run at, or ``None``."""
    for name, state in (checkpoint.get("callbacks") or {}).items():
        if str(name).startswith("EarlyStopping") and isinstance(state, dict):
            stopped = int(state.get("stopped_epoch", 0) or 0)
            if stopped > 0:
                return stopped
    return None
