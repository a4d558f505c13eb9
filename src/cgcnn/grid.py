"""The settings a comparison's grid can name, and how their values are labelled and stored.

Shared by :mod:`cgcnn.comparison` (the grid and the runs) and :mod:`cgcnn.comparison_report`
(the report), which therefore do not import each other's insides.
"""

from __future__ import annotations

import os
from typing import Any

#: train() options that cgcnn compare sets itself and that are therefore neither grid
#: axes nor fixed options.
RESERVED = {
    "seed": "set by seeds (0 .. seeds - 1)",
    "out": "set by compare (OUT/runs/<configuration>/seed<k>)",
    "resume": "compare resumes by itself (finished runs are kept)",
    "stop_after": "not available in compare",
    "ensemble": "not available in compare (compare seeds instead)",
    "progress": "compare turns progress bars off",
    "plots": "compare writes its own figures",
    "jobs": "compare's own --jobs sets how many runs go at once",
    "overwrite": "compare redoes unfinished runs by itself and keeps finished ones",
    "skipped": "each run lists its skipped structures in its own folder",
    "split_seed": "set by seeds (the split of seed k is drawn with k)",
}
#: options that change where or how fast a run computes, not what it computes
NOT_IDENTITY = {"cache_dir", "workers", "num_workers", "accelerator", "devices", "strategy"}


def grid_options() -> dict[str, tuple[str, bool, Any]]:
    """The settings of :func:`cgcnn.train` that a comparison can set (all but
    :data:`RESERVED` and what a run computes), from their fields in :mod:`cgcnn.config`.

    Returns:
        ``{name: (kind, optional, default)}`` where ``kind`` is ``"bool"``, ``"int"``,
        ``"float"``, ``"int_list"`` or ``"str"`` and ``optional`` says whether ``None`` is
        allowed.
    """
    from cgcnn.config import COMPUTED, default_of, is_optional, iter_settings, setting_kind

    return {
        name: (setting_kind(item), is_optional(item), default_of(item))
        for _, name, item in iter_settings()
        if name not in RESERVED and name not in COMPUTED
    }


def value_label(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list):
        return "+".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def jsonable(value: Any) -> Any:
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return repr(value)
