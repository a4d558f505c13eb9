"""The one way checkpoints are read and written.

Every checkpoint the package opens (``--resume``, ``--init``, ``predict``, ensemble members,
:func:`cgcnn.load`, the comparison's finished runs, the original CGCNN's ``.pth.tar``) goes
through :func:`read_checkpoint`, for local files and ``http(s)://`` addresses alike:

* ``torch.load(weights_only=True)``, passed explicitly (torch < 2.6 defaults to
  ``weights_only=False``, which runs whatever the pickle says), inside
  ``torch.serialization.safe_globals`` with the small allow-list the original CGCNN files
  need (:func:`allowed_globals`: a numpy scalar, numpy dtypes and
  ``argparse.Namespace``, none of which can run code).  A file that asks for anything else
  is refused with one line naming it; nothing in it is executed.
* The tensors' SHA-256 (:func:`tensor_digest`), stored when the package saves a checkpoint,
  is checked, so flipped bytes in the weights are an error rather than silent garbage.

:func:`cgcnn.trained.open_checkpoint` builds on it: any checkpoint read once into one
object (ours, an ensemble listing, an original file).

Checkpoints are written by :class:`SafeCheckpointIO`, Lightning's checkpoint plugin with the
digest added and the file written atomically (:func:`cgcnn.files.atomic_write`).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import pickle
import re
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from cgcnn.errors import InputError, first_line
from cgcnn.files import atomic_write
from cgcnn.run_folder import is_remote

#: Key of the tensors' digest in a checkpoint written by the package.
DIGEST_KEY = "cgcnn_tensor_sha256"
#: Seconds a remote checkpoint's connection or read may stall.
REMOTE_TIMEOUT = 60


class RefusedCheckpoint(InputError):
    """A checkpoint whose pickle asks for code or objects outside the allow-list."""


def allowed_globals() -> list[Any]:
    """The ``weights_only`` allow-list: classes / (function, name).

    What the original CGCNN's files need (:mod:`cgcnn.compat` says why each is safe): a
    numpy scalar's reconstructor (under its numpy 1 and 2 names), numpy dtypes and
    ``argparse.Namespace``.  None of them can run code.
    """
    try:
        from numpy._core.multiarray import scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import scalar  # type: ignore[no-redef]
    allowed: list[Any] = [
        (scalar, "numpy.core.multiarray.scalar"),
        (scalar, "numpy._core.multiarray.scalar"),
        np.dtype,
        argparse.Namespace,
    ]
    dtypes = getattr(np, "dtypes", None)  # numpy >= 1.25: concrete dtype classes
    if dtypes is not None:
        allowed.append(dtypes.Float64DType)
    return allowed


def read_checkpoint(source: str | os.PathLike) -> Any:
    """Load a checkpoint without running any pickled code, and check its tensors' digest.

    Args:
        source: a checkpoint file (ours or an original CGCNN ``.pth.tar``) or an
            ``http(s)://`` address of one.

    Returns:
        What the file holds (a checkpoint is a dict), tensors on the CPU.

    Raises:
        RefusedCheckpoint: the file holds code or objects that are not allowed.
        InputError: a missing, empty or unreadable file, a file that is not a checkpoint,
            or tensors that do not match their stored digest.
    """
    name = os.fspath(source)
    handle = _download(name) if is_remote(name) else _local_file(name)
    try:
        with torch.serialization.safe_globals(allowed_globals()), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # legacy-format and numpy deprecation notes
            checkpoint = torch.load(handle, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's message advises loading with weights_only=False: never pass that on
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        if found is None and "global" not in str(exc).lower():
            raise InputError(name, "is not a readable checkpoint (not a PyTorch file)") from None
        what = f" ({found.group(1)} is outside the allow-list)" if found else ""
        raise RefusedCheckpoint(
            name,
            f"refused: the checkpoint holds code or objects that are not allowed{what}; "
            "nothing in it was run",
        ) from None
    except Exception as exc:  # torch raises many types for files that are not checkpoints
        raise InputError(
            name, f"is not a readable checkpoint ({type(exc).__name__}: {first_line(exc)})"
        ) from None
    if isinstance(checkpoint, dict):
        verify_digest(checkpoint, name)
    return checkpoint


def tensor_digest(checkpoint: Mapping[str, Any]) -> str:
    """SHA-256 (hex) over every tensor in ``checkpoint`` (nested dicts and lists included):
    each tensor's place, dtype, shape and bytes, in the dict's order."""
    digest = hashlib.sha256()
    for place, tensor in _tensors(checkpoint, ""):
        data = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{place}|{data.dtype}|{tuple(tensor.shape)}|".encode())
        if data.numel():
            digest.update(data.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def stamp_digest(checkpoint: dict[str, Any]) -> None:
    """Store :func:`tensor_digest` in ``checkpoint`` (before it is saved)."""
    checkpoint.pop(DIGEST_KEY, None)
    checkpoint[DIGEST_KEY] = tensor_digest(checkpoint)


def verify_digest(checkpoint: dict[str, Any], name: str) -> None:
    """Check the stored digest, if any (the original CGCNN's files have none).

    Raises:
        InputError: naming ``name``, when the tensors do not match.
    """
    stored = checkpoint.pop(DIGEST_KEY, None)
    if stored is None:
        return
    if tensor_digest(checkpoint) != stored:
        raise InputError(
            name,
            "is damaged: its tensors do not match the checksum stored with them "
            "(the file was changed or corrupted after it was written)",
        )


def save_checkpoint(checkpoint: dict[str, Any], path: str | os.PathLike) -> None:
    """Write ``checkpoint`` to ``path`` with its digest, atomically."""
    stamp_digest(checkpoint)
    try:
        with atomic_write(path, "wb") as handle:
            torch.save(checkpoint, handle)
    finally:
        checkpoint.pop(DIGEST_KEY, None)


class SafeCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint plugin, reading with :func:`read_checkpoint` and writing with
    :func:`save_checkpoint` (digest, temporary file beside the target, fsync, rename).

    Lightning's own writer goes through a temporary file in ``$TMPDIR``; when that is
    another file system, the final move is a copy, and a process killed during it leaves a
    truncated checkpoint (and the temporary file) behind.

    Args:
        loaded: checkpoints already read (source -> dict), returned as they are instead of
            being read again (``--resume`` reads and checks its checkpoint first).
    """

    def __init__(self, loaded: dict[str, dict[str, Any]] | None = None) -> None:
        super().__init__()
        self.loaded = dict(loaded or {})

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError("SafeCheckpointIO takes no storage_options")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        save_checkpoint(checkpoint, path)

    def load_checkpoint(
        self, path: Any, map_location: Any | None = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        if str(path) in self.loaded:
            return self.loaded.pop(str(path))
        return read_checkpoint(path)


def _tensors(value: Any, place: str) -> Iterator[tuple[str, torch.Tensor]]:
    if isinstance(value, torch.Tensor):
        yield place, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if key != DIGEST_KEY:
                yield from _tensors(item, f"{place}/{key}")
    elif isinstance(value, list | tuple):
        for k, item in enumerate(value):
            yield from _tensors(item, f"{place}/{k}")


def _local_file(name: str) -> str:
    path = Path(name)
    if path.is_dir():
        raise InputError(name, "is a folder, not a checkpoint file")
    if not path.is_file():
        raise InputError(name, "no such checkpoint file")
    if path.stat().st_size == 0:
        raise InputError(name, "the checkpoint file is empty")
    return name


def _download(url: str) -> io.BytesIO:
    """The bytes at ``url``, in memory (nothing is written to disk)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=REMOTE_TIMEOUT) as response:
            return io.BytesIO(response.read())
    except urllib.error.HTTPError as exc:
        raise InputError(url, f"cannot download the checkpoint: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise InputError(url, f"cannot download the checkpoint ({reason})") from None
