"""Train / validation / test splits: by ratio, by size, or from a file."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cgcnn.errors import InputError

SPLIT_NAMES = ("train", "val", "test")


@dataclass(frozen=True)
class Split:
    """Indices (into a dataset) of the three parts."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def sizes(self) -> tuple[int, int, int]:
        return len(self.train), len(self.val), len(self.test)


def random_split(
    n: int,
    *,
    train_ratio: float | None = None,
    val_ratio: float = 0.1,
    test_ratio: float = 0.1,
    train_size: int | None = None,
    val_size: int | None = None,
    test_size: int | None = None,
    seed: int = 0,
) -> Split:
    """Shuffle ``range(n)`` with ``seed`` and cut it into train / val / test.

    Sizes win over ratios; ``train_ratio`` defaults to what the other two leave.  A ratio
    or size of 0 is allowed for validation and test (then that part is empty).
    """
    for name, value in (("val_ratio", val_ratio), ("test_ratio", test_ratio)):
        if not 0.0 <= value < 1.0:
            raise InputError(f"--{name.replace('_', '-')}", f"must be in [0, 1), got {value}")
    n_test = _count(test_size, test_ratio, n, "--test-size")
    n_val = _count(val_size, val_ratio, n, "--val-size")
    if train_size is not None:
        n_train = _count(train_size, None, n, "--train-size")
    elif train_ratio is not None:
        if not 0.0 < train_ratio <= 1.0:
            raise InputError("--train-ratio", f"must be in (0, 1], got {train_ratio}")
        n_train = round(train_ratio * n)
    else:
        n_train = n - n_val - n_test
    if n_train + n_val + n_test > n:
        raise InputError(
            "split",
            f"train {n_train} + val {n_val} + test {n_test} is more than the {n} crystals",
        )
    if n_train < 1:
        raise InputError("split", f"the training split is empty ({n} crystals in all)")
    order = np.random.default_rng(seed).permutation(n)
    return Split(
        train=np.sort(order[:n_train]),
        val=np.sort(order[n_train : n_train + n_val]),
        test=np.sort(order[n_train + n_val : n_train + n_val + n_test]),
    )


def split_from_file(path: str | os.PathLike, ids: np.ndarray) -> Split:
    """Read a CSV ``id,split`` (``train | val | test``) and map it onto ``ids``.

    Ids of the dataset missing from the file are left out (and counted in the error when
    the training part is empty); ids in the file missing from the dataset raise.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(str(path), "no such split file")
    index = {str(rid): k for k, rid in enumerate(ids)}
    parts: dict[str, list[int]] = {name: [] for name in SPLIT_NAMES}
    with open(path, newline="", encoding="utf-8-sig") as handle:
        rows = [row for row in csv.reader(handle) if any(cell.strip() for cell in row)]
    if rows and [c.strip().lower() for c in rows[0][:2]] == ["id", "split"]:
        rows = rows[1:]
    for line_no, row in enumerate(rows, start=1):
        if len(row) < 2:
            raise InputError(f"{path}:{line_no}", "expected 'id,split'")
        rid, part = row[0].strip(), row[1].strip().lower()
        if part not in parts:
            raise InputError(f"{path}:{line_no}", f"split {part!r} is not one of train, val, test")
        if rid not in index:
            raise InputError(f"{path}:{line_no}", f"id {rid!r} is not in the data")
        parts[part].append(index[rid])
    if not parts["train"]:
        raise InputError(str(path), "no id is in the training split")
    return Split(*(np.array(sorted(parts[name]), dtype=np.int64) for name in SPLIT_NAMES))


def _count(size: int | None, ratio: float | None, n: int, option: str) -> int:
    if size is not None:
        if size < 0 or size > n:
            raise InputError(option, f"must be between 0 and {n}, got {size}")
        return int(size)
    return round((ratio or 0.0) * n)
