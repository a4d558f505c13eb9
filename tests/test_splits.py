"""Splits by ratio, by size and from a file."""

from __future__ import annotations

import numpy as np
import pytest

from cgcnn import InputError
from cgcnn.io import read_structures
from cgcnn.splits import random_split, split_from_file
from helpers import shared


def test_random_split_partitions_and_is_seeded():
    split = random_split(100, seed=1)
    assert split.sizes() == (80, 10, 10)
    together = np.concatenate([split.train, split.val, split.test])
    assert sorted(together.tolist()) == list(range(100))
    again = random_split(100, seed=1)
    assert np.array_equal(split.test, again.test)
    assert not np.array_equal(split.test, random_split(100, seed=2).test)
    assert random_split(100, test_ratio=0.0).sizes() == (90, 10, 0)
    assert random_split(100, train_size=50, val_size=5, test_size=5).sizes() == (50, 5, 5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"test_ratio": 1.5}, "--test-ratio: must be in"),
        ({"train_size": 95, "val_size": 5, "test_size": 5}, "more than the 100 crystals"),
        ({"val_size": 101}, "--val-size: must be between 0 and 100"),
        ({"val_ratio": 0.5, "test_ratio": 0.5}, "the training split is empty"),
    ],
)
def test_random_split_errors(kwargs, message):
    with pytest.raises(InputError, match=message):
        random_split(100, **kwargs)


def test_the_original_homework_split(tmp_path):
    ids = np.array([r.id for r in read_structures(shared("perovskite-energy"))])
    split = split_from_file(shared("perovskite-energy-split.csv"), ids)
    assert split.sizes() == (536, 67, 67)
    bad = tmp_path / "split.csv"
    bad.write_text("id,split\n" + ids[0] + ",holdout\n")
    with pytest.raises(InputError, match="split 'holdout' is not one of train, val, test"):
        split_from_file(bad, ids)
    bad.write_text("id,split\nnot-an-id,train\n")
    with pytest.raises(InputError, match="id 'not-an-id' is not in the data"):
        split_from_file(bad, ids)
    with pytest.raises(InputError, match="no such split file"):
        split_from_file(tmp_path / "missing.csv", ids)
