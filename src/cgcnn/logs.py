"""``metrics.csv``: one row per epoch, rewritten atomically, kept across ``--resume``.

Lightning's ``CSVLogger`` deletes an existing ``metrics.csv`` when its folder is not empty
and then appends to the file in place, so a resumed run first lost the epochs before the
resume (and a resume of a finished run lost the whole log), and a process killed during a
write could leave a torn line.  :class:`EpochLog` is that logger with another writer: it
keeps the rows of the earlier run up to the first epoch the new run logs, and rewrites the
whole file through :func:`cgcnn.files.atomic_write` each time Lightning saves the log.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

from cgcnn.files import atomic_write

LOG_FILE = "metrics.csv"


class _EpochLogWriter(ExperimentWriter):
    """Lightning's experiment writer without the deletion, writing whole files atomically."""

    def __init__(self, log_dir: str) -> None:  # no super().__init__: it deletes the log
        self.hparams: dict[str, Any] = {}
        self.metrics: list[dict[str, Any]] = []
        self.metrics_keys: list[str] = []
        self.log_dir = log_dir
        self.metrics_file_path = os.path.join(log_dir, self.NAME_METRICS_FILE)
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        from lightning.fabric.utilities.cloud_io import get_filesystem

        self._fs = get_filesystem(log_dir)
        self._rows: list[dict[str, Any]] | None = None  # read at the first save

    def save(self) -> None:
        if not self.metrics:
            return
        if self._rows is None:
            self._rows = _earlier_rows(Path(self.metrics_file_path), self.metrics)
        self._rows.extend(self.metrics)
        self.metrics = []
        names: list[str] = []
        for row in self._rows:
            names.extend(k for k in row if k not in names)
        self.metrics_keys = sorted(names)
        with atomic_write(self.metrics_file_path, newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.metrics_keys)
            writer.writeheader()
            writer.writerows(self._rows)


def _earlier_rows(path: Path, new_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of an earlier run in ``path`` from before the first epoch in ``new_rows``
    (none when the new run starts at epoch 0, or when there is no earlier log)."""
    first_new = min((int(r["epoch"]) for r in new_rows if r.get("epoch") is not None), default=0)
    if first_new == 0 or not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [r for r in rows if r.get("epoch") not in (None, "") and int(r["epoch"]) < first_new]


class EpochLog(CSVLogger):
    """A ``CSVLogger`` writing ``OUT/metrics.csv`` with :class:`_EpochLogWriter`."""

    def __init__(self, out: str | os.PathLike) -> None:
        super().__init__(save_dir=str(out), name="", version="")

    @property
    @rank_zero_experiment
    def experiment(self) -> _EpochLogWriter:
        if self._experiment is None:
            self._experiment = _EpochLogWriter(self.log_dir)
        return self._experiment
