"""Where a trained model is: a checkpoint file, or the folder ``cgcnn train`` wrote.

Imports neither torch nor Lightning, so that a mistyped path is answered at once (importing
torch takes seconds).
"""

from __future__ import annotations

import os
from pathlib import Path

from cgcnn.errors import InputError


def is_remote(source: str | os.PathLike) -> bool:
    """Whether ``source`` is an ``http://`` or ``https://`` address."""
    return str(source).lower().startswith(("http://", "https://"))


#: what a run folder holds, in the order a prediction takes it
RUN_FILES = ("ensemble.json", "best.ckpt", "last.ckpt")


def resolve_run_folder(source: str | os.PathLike) -> str | os.PathLike:
    """A ``cgcnn train`` output folder -> its ``ensemble.json``, else ``best.ckpt``, else
    ``last.ckpt``; a missing local file is one line.  Anything else is returned as it is.
    Needs no torch, so a mistyped path is answered at once."""
    name = os.fspath(source)
    if is_remote(name):
        return source
    path = Path(name)
    if path.is_dir():
        for file in RUN_FILES:
            if (path / file).is_file():
                return path / file
        listed = f"{', '.join(RUN_FILES[:-1])} or {RUN_FILES[-1]}"
        raise InputError(name, f"is a folder without {listed}")
    if not path.exists():
        raise InputError(name, "no such checkpoint file or run folder")
    return source
