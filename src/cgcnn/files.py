"""Writing files so that a crash never leaves a half-written one behind.

Every result file of the package (checkpoints, ``metrics.json``, ``metrics.csv``,
``ensemble.json``, ``test_results.csv``, predictions) is written by :func:`atomic_write`:
the bytes go to a temporary file in the destination's own folder, which is flushed and
fsynced and then renamed over the destination with :func:`os.replace`.  A rename within one
file system is atomic, so a reader (or a run killed with ``kill -9`` half-way) sees either
the previous file or the new one, never a truncated mix; and nothing is left in ``$TMPDIR``,
which is often another file system (a tmpfs) where a rename would turn into a copy.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from cgcnn.errors import InputError


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike, mode: str = "w", *, encoding: str | None = "utf-8", newline=None
) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing; on success, it replaces ``path``.

    Args:
        path: the file to (re)write.
        mode: ``"w"`` (text) or ``"wb"`` (bytes).
        encoding / newline: as for :func:`open`, text mode only.

    If the body raises (or the process dies), ``path`` keeps its previous content and the
    temporary file is removed (after a ``kill -9``, a ``.PATH.*.tmp`` file may stay beside
    ``path``, never in ``$TMPDIR``).

    Raises:
        InputError: naming ``path`` when its folder cannot be written (read-only, missing,
            full disk, ...).
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write: mode must be 'w' or 'wb', got {mode!r}")
    target = Path(path)
    folder = target.parent
    if target.is_dir():
        raise InputError(str(target), "is a folder; give a file name")
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise InputError(str(target), f"cannot write here ({_reason(exc)})") from None
    try:
        binary = mode == "wb"
        with os.fdopen(
            fd,
            mode,
            encoding=None if binary else encoding,
            newline=None if binary else newline,
        ) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        _keep_mode(target, temp)
        os.replace(temp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        if isinstance(exc, OSError) and not isinstance(exc, BrokenPipeError):
            raise InputError(str(target), f"cannot write ({_reason(exc)})") from None
        raise
    _sync_folder(folder)


def make_folder(path: str | os.PathLike) -> Path:
    """Create the output folder ``path`` (and its parents) if missing.

    Raises:
        InputError: naming the path, when it is a file, lies under a file, or cannot be
            created (read-only, no permission, ...).
    """
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise InputError(str(folder), "is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (NotADirectoryError, FileExistsError):
        raise InputError(str(folder), "lies under a file, not a folder") from None
    except OSError as exc:
        raise InputError(str(folder), f"cannot create the folder ({_reason(exc)})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(str(folder), "cannot write in this folder (permission denied)")
    return folder


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path) as handle:
        handle.write(text)


def write_json(path: str | os.PathLike, value: Any) -> None:
    """Write ``value`` as indented, strictly valid JSON (NaN and ±inf become ``null``)."""
    write_text(path, json.dumps(json_safe(value), indent=2, allow_nan=False) + "\n")


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float replaced by ``None`` and numpy scalars, paths
    and other objects turned into JSON types (JSON has no NaN: ``json.dumps`` would write a
    bare ``NaN`` that strict readers refuse)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    item = getattr(value, "item", None)  # numpy / torch scalars
    if callable(item):
        with contextlib.suppress(TypeError, ValueError):
            return json_safe(item())
    return str(value)


def _keep_mode(target: Path, temp: str) -> None:
    """Give the new file the old one's permissions (``mkstemp`` makes it 0600), or the
    usual 0666 minus the umask for a new file."""
    try:
        os.chmod(temp, target.stat().st_mode & 0o7777)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, 0o666 & ~umask)


def _sync_folder(folder: Path) -> None:
    """fsync the folder, so that the rename itself survives a power cut (POSIX only)."""
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__
