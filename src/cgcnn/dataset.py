"""A dataset of crystal graphs backed by the on-disk cache.

>>> ds = CrystalGraphDataset("perovskite-energy/", cache_dir="cache")   # doctest: +SKIP
>>> ds[0]                                                              # doctest: +SKIP
Data(edge_index=[2, 60], atomic_numbers=[5], distances=[60], offsets=[60, 3], ...)

Items are PyTorch Geometric ``Data`` objects (fields in :mod:`cgcnn.fields`), so
``torch_geometric.loader.DataLoader`` batches them.  The dataset itself holds only numpy
arrays (ids, targets, cache row ids); each item is read from the SQLite cache when asked
for, so DataLoader workers share the cache through the page cache and copy nothing per
worker.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from cgcnn.cache import GraphStore, default_cache_dir
from cgcnn.featurizer import FeaturizeReport, count_records_hint, featurize_records
from cgcnn.graph import CrystalGraph, GraphSettings
from cgcnn.io import iter_structures


class CrystalGraphDataset(Dataset):
    """Crystal graphs of the structures in ``source``, featurized once and cached on disk.

    Args:
        source: anything :func:`cgcnn.io.iter_structures` reads: a CGCNN folder, a CSV or
            JSON file, structure files, pymatgen ``Structure`` objects, or a list of these.
        target: target column(s) (CSV/JSON names; for a CGCNN folder, 1-based column
            numbers of ``id_prop.csv``, default all).
        radius: neighbour cutoff, Å.
        max_neighbors: neighbours kept per atom.
        grow_radius: widen the cutoff per structure until every atom has ``max_neighbors``.
        min_distance: atoms closer than this (Å) make a structure invalid.
        angle_radius: keep every neighbour within this (Å) too (for a model that sees bond
            angles; see :class:`~cgcnn.config.GraphSettings`).
        settings: the graph settings as one object; the five above, when given, win over
            it.  Whatever neither gives takes :class:`~cgcnn.config.GraphSettings`'s default
            (8 Å, 12 neighbours, no growing, 0.5 Å).
        cache_dir: the graph cache folder (default :func:`cgcnn.cache.default_cache_dir`);
            a relative path is taken from the current folder.
        workers: featurization processes (default: all cores).
        skip_invalid: leave bad structures out (see ``report.skipped``) instead of raising.
        id_column / structure_column: CSV/JSON column names.
        progress: show a progress bar while featurizing.

    Training and prediction do not go through ``dataset[i]``: they batch the graphs' arrays
    (:meth:`graph`) with :class:`~cgcnn.batching.GraphBatcher`.  ``dataset[i]`` builds a
    fresh ``Data`` each time (~90 µs), for PyG's own loaders and for inspection.

    Attributes:
        ids: (M,) str array of crystal ids.
        targets: (M, T) float32 array, or ``None`` when the source has no targets.
        settings: the :class:`~cgcnn.graph.GraphSettings`.
        report: the :class:`~cgcnn.featurizer.FeaturizeReport` of the featurization.

    Raises:
        InputError: bad settings, a bad source, or (without ``skip_invalid``) bad structures
            or rows: after reading them all, one error listing them (see
            :func:`~cgcnn.featurizer.featurize_records`).
    """

    def __init__(
        self,
        source: Any,
        *,
        target: str | Sequence[str] | None = None,
        radius: float | None = None,
        max_neighbors: int | None = None,
        grow_radius: bool | None = None,
        min_distance: float | None = None,
        angle_radius: float | None = None,
        cache_dir: str | os.PathLike | None = None,
        workers: int | None = None,
        skip_invalid: bool = False,
        id_column: str | None = None,
        structure_column: str | None = None,
        progress: bool = True,
        settings: GraphSettings | None = None,
    ) -> None:
        given = {
            "radius": radius,
            "max_neighbors": max_neighbors,
            "grow_radius": grow_radius,
            "min_distance": min_distance,
            "angle_radius": angle_radius,
        }
        base = {} if settings is None else dataclasses.asdict(settings)
        self.settings = GraphSettings(
            **{**base, **{k: v for k, v in given.items() if v is not None}}
        )
        writer = GraphStore(default_cache_dir() if cache_dir is None else cache_dir)
        self.cache_dir = writer.directory  # absolute: a later chdir changes nothing
        records = iter_structures(
            source, target=target, id_column=id_column, structure_column=structure_column
        )
        self.report: FeaturizeReport = featurize_records(
            records,
            self.settings,
            writer,
            workers=workers,
            skip_invalid=skip_invalid,
            progress=progress,
            total=count_records_hint(source),
        )
        writer.close()
        if self.report.short_atoms and progress:
            print(self.report.summary(self.settings).splitlines()[-1], file=sys.stderr)
        self.ids = np.array(self.report.ids, dtype=str)
        self.targets = _stack_targets(self.report.targets)
        self._rowids = np.array(self.report.rowids, dtype=np.int64)
        # the report's per-structure lists take ~110 bytes a structure as Python objects;
        # the arrays above say the same in ~30
        self.report.ids, self.report.rowids = self.ids, self._rowids
        self._store = GraphStore(self.cache_dir, readonly=True)
        self._elements: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self._rowids.shape[0])

    def elements(self) -> np.ndarray:
        """(K,) sorted distinct atomic numbers of all crystals (read once, then kept)."""
        if self._elements is None:
            self._elements = distinct_elements(self)
        return self._elements

    def graph(self, index: int) -> CrystalGraph:
        """The :class:`~cgcnn.graph.CrystalGraph` (numpy arrays) of item ``index``."""
        return self._store.get(int(self._rowids[index]))

    def __getitem__(self, index: int):
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} is out of range for {len(self)} crystals")
        y = None if self.targets is None else self.targets[index]
        return self.graph(index).to_data(y=y, id=str(self.ids[index]))

    def __repr__(self) -> str:
        t = "no targets" if self.targets is None else f"{self.targets.shape[1]} target(s)"
        return (
            f"{type(self).__name__}({len(self)} crystals, {t}, radius={self.settings.radius:g}, "
            f"max_neighbors={self.settings.max_neighbors})"
        )


def distinct_elements(graphs) -> np.ndarray:
    """(K,) sorted distinct atomic numbers of ``graphs`` (anything with ``len`` and
    ``graph(k)``), read graph by graph."""
    found: set[int] = set()
    for k in range(len(graphs)):
        found.update(np.unique(graphs.graph(k).atomic_numbers).tolist())
    return np.array(sorted(found), dtype=np.int64)


def _stack_targets(targets: list[tuple[float, ...] | None]) -> np.ndarray | None:
    if not targets or all(t is None for t in targets):
        return None
    width = max(len(t) for t in targets if t is not None)
    out = np.full((len(targets), width), np.nan, dtype=np.float32)
    for i, t in enumerate(targets):
        if t is not None:
            out[i, : len(t)] = t
    return out
