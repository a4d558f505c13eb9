"""Featurize many structures into the graph cache, in parallel, reusing what is cached.

This is the engine behind ``cgcnn featurize`` and :class:`cgcnn.CrystalGraphDataset`.  It
needs numpy, pymatgen's neighbour search and gemmi, but not torch.

For each record (in source order): read its bytes, hash them, look the (settings,
content) key up in the cache; misses are parsed and featurized by worker processes in
chunks, and the main process writes their results to the cache, committing every chunk,
so a run that stops half-way keeps everything it finished.
"""

from __future__ import annotations

import csv
import heapq
import multiprocessing
import os
import sys
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cgcnn.cache import GraphStore, encode_graph
from cgcnn.config import resolve_workers
from cgcnn.errors import InputError
from cgcnn.graph import GraphSettings, build_graph
from cgcnn.io import StructureRecord, content_hash, parse_payload
from cgcnn.progress import plural

#: Structures per task sent to a worker process.
CHUNK_SIZE = 64
#: Below this many structures to featurize, a process pool costs more than it saves.
MIN_PARALLEL = 256
#: Without ``skip_invalid``, the error at the end of a run lists at most this many entries.
MAX_LISTED_PROBLEMS = 20


@dataclass
class Skipped:
    """A structure left out, and why."""

    id: str
    source: str
    reason: str


@dataclass
class FeaturizeReport:
    """What :func:`featurize_records` did.

    Attributes:
        ids: ids of the usable structures, in source order.
        targets: their targets (None where unknown).
        rowids: where each graph is in the cache.  (``ids`` and ``rowids`` are lists while
            featurizing; :class:`~cgcnn.dataset.CrystalGraphDataset` turns them into numpy
            arrays, its own ``ids`` and row ids.)
        featurized / reused: graphs computed now / found in the cache.
        skipped: structures left out (only with ``skip_invalid``).
        short_atoms / short_structures: atoms with fewer than ``max_neighbors`` neighbours
            within the radius, and structures holding such atoms.
        seconds: wall time.
    """

    ids: list[str] = field(default_factory=list)
    targets: list[tuple[float, ...] | None] = field(default_factory=list)
    rowids: list[int] = field(default_factory=list)
    featurized: int = 0
    reused: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    short_atoms: int = 0
    short_structures: int = 0
    seconds: float = 0.0

    def summary(self, settings: GraphSettings) -> str:
        lines = [
            f"{plural(len(self.ids), 'structure')} ready: {self.featurized} featurized, "
            f"{self.reused} reused from the cache, {len(self.skipped)} skipped "
            f"({self.seconds:.2f} s)"
        ]
        if self.short_atoms:
            lines.append(
                f"warning: {self.short_atoms} atoms in {self.short_structures} structures have "
                f"fewer than {settings.max_neighbors} neighbours within {settings.radius:g} Å; "
                "they get fewer edges (no padding); --grow-radius widens the search instead"
            )
        return "\n".join(lines)

    def write_skipped(self, path: str | os.PathLike) -> None:
        """Write the skipped structures as CSV ``id,source,reason``."""
        from cgcnn.files import atomic_write

        with atomic_write(path, newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["id", "source", "reason"])
            for item in self.skipped:
                writer.writerow([item.id, item.source, item.reason])

    def list_skipped(self, path: str | os.PathLike) -> str:
        """Write the skipped structures to ``path`` (:meth:`write_skipped`) and return the
        line that says so, for the command to print (nothing is written when none was
        skipped, and the line is empty)."""
        if not self.skipped:
            return ""
        self.write_skipped(path)
        total = len(self.ids) + len(self.skipped)
        return (
            f"{len(self.skipped)} of {total} structure(s) skipped; listed with their reasons "
            f"in {path}"
        )


class Problems:
    """The bad entries of a run, to report all of them at once (see :meth:`error`).

    Entries are kept by their position in the source, so the listing follows the source
    even when worker processes finish out of order; only the first ``limit`` are kept.
    """

    def __init__(self, limit: int = MAX_LISTED_PROBLEMS) -> None:
        self.limit = limit
        self.count = 0
        self._first: list[tuple[int, str, str]] = []  # (position, source, reason)

    def add(self, position: int, source: str, reason: str) -> None:
        self.count += 1
        self._first.append((position, source, reason))
        if len(self._first) > 4 * self.limit:
            self._first = heapq.nsmallest(self.limit, self._first)

    def error(self) -> InputError | None:
        """None if nothing was bad; the entry's own error if one was; else one error
        listing the first ``limit`` entries, one per line, and how many more there are."""
        if not self.count:
            return None
        first = heapq.nsmallest(self.limit, self._first)
        if self.count == 1:
            return InputError(first[0][1] or None, first[0][2])
        lines = [
            f"{self.count} structures or rows cannot be used; fix them, or leave them out "
            "with skip_invalid (--skip-invalid):"
        ]
        lines += [f"  {source}: {reason}" for _, source, reason in first]
        if self.count > len(first):
            lines.append(f"  ... and {self.count - len(first)} more")
        return InputError(None, "\n".join(lines))


def featurize_records(
    records: Iterable[StructureRecord],
    settings: GraphSettings,
    store: GraphStore,
    *,
    workers: int | None = None,
    skip_invalid: bool = False,
    progress: bool = True,
    total: int | None = None,
) -> FeaturizeReport:
    """Make sure every record's graph is in ``store``; return where they are.

    Args:
        records: from :func:`cgcnn.io.iter_structures`.
        settings: the graph settings.
        store: the cache.
        workers: processes for featurization (default: all cores; 0 or 1: in this
            process, as :func:`resolve_workers` says).
        skip_invalid: leave bad structures out (listed in the report) instead of raising.
        progress: show a progress bar (only on a terminal).
        total: number of records, for the progress bar, when known.

    Raises:
        InputError: unless ``skip_invalid``, at the end of the run if any structure or row
            was bad: that entry's own error if there was one, else one error listing the
            first :data:`MAX_LISTED_PROBLEMS` of them (one per line) and their number.
            Every good graph stays in the cache.
    """
    from cgcnn.progress import progress_bar

    start = time.perf_counter()
    workers = resolve_workers(workers)
    key = settings.key()
    report = FeaturizeReport()
    seen: dict[tuple[int, str], str] = {}  # (source group, id) -> where it was first seen
    problems = Problems()
    positions: dict[int, int] = {}  # slot of a miss -> its record's position in the source
    # report.rowids[slot] is -1 until a miss's graph is stored, -2 for a dropped entry
    bar = progress_bar(total, "featurize", "structure", enabled=progress)

    def reject(position: int, rid: str, source: str, reason: str) -> None:
        if skip_invalid:
            report.skipped.append(Skipped(rid, source, reason))
        else:
            problems.add(position, source, reason)

    def entries() -> Iterator[tuple[int, str, Any, bytes]]:
        """Yield (slot, fmt, payload, digest) for cache misses; fill hits directly."""
        for position, record in enumerate(records):
            bar.update(1)
            if record.error is not None:
                reject(position, record.id, record.source, record.error)
                continue
            where = record.listed_at or record.source
            if (record.group, record.id) in seen:
                first = seen[record.group, record.id]
                reject(position, record.id, where, f"duplicate id {record.id!r} (also {first})")
                continue
            try:
                payload = record.raw()
            except InputError as exc:
                reject(position, record.id, record.source, exc.reason)
                continue
            seen[record.group, record.id] = where
            digest = content_hash(record.fmt, payload)
            report.ids.append(record.id)
            report.targets.append(record.target)
            hit = store.lookup(key, digest, source=record.source)
            if hit is not None:
                report.rowids.append(hit[0])
                report.reused += 1
                _count_short(report, hit[2])
            else:
                report.rowids.append(-1)
                positions[len(report.rowids) - 1] = position
                yield len(report.rowids) - 1, record, payload, digest

    def store_results(results: list[tuple]) -> None:
        for slot, digest, outcome in results:
            position = positions.pop(slot)
            if isinstance(outcome, InputError):
                report.rowids[slot] = -2
                reject(position, report.ids[slot], outcome.source or "", outcome.reason)
                continue
            value, n_atoms, n_short = outcome
            report.rowids[slot] = store.insert(key, digest, n_atoms, n_short, value)
            report.featurized += 1
            _count_short(report, n_short)
        store.commit()

    try:
        pending = entries()
        if workers == 1:
            for chunk in _chunks(pending, CHUNK_SIZE):
                store_results(_featurize_chunk(_tasks(chunk), settings))
        else:
            _run_parallel(pending, settings, workers, store_results)
    finally:
        store.commit()
        bar.close()
    if (error := problems.error()) is not None:
        raise error

    dropped = {i for i, rowid in enumerate(report.rowids) if rowid < 0}
    if dropped:
        keep = [i for i in range(len(report.rowids)) if i not in dropped]
        report.ids = [report.ids[i] for i in keep]
        report.targets = [report.targets[i] for i in keep]
        report.rowids = [report.rowids[i] for i in keep]
    report.seconds = time.perf_counter() - start
    return report


def _count_short(report: FeaturizeReport, n_short: int) -> None:
    if n_short:
        report.short_atoms += n_short
        report.short_structures += 1


def _tasks(chunk: list[tuple[int, StructureRecord, Any, bytes]]) -> list[tuple]:
    return [(slot, rec.fmt, payload, rec.source, digest) for slot, rec, payload, digest in chunk]


def _chunks(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _run_parallel(pending: Iterator, settings: GraphSettings, workers: int, store_results) -> None:
    """Featurize in a process pool, at most ``4 * workers`` chunks in flight."""
    first = list(_take(pending, MIN_PARALLEL))
    if len(first) < MIN_PARALLEL:  # small job: no pool
        for chunk in _chunks(iter(first), CHUNK_SIZE):
            store_results(_featurize_chunk(_tasks(chunk), settings))
        return
    context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else None)
    in_flight: deque[Future] = deque()
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        try:
            for chunk in _chunks(_chain(first, pending), CHUNK_SIZE):
                in_flight.append(pool.submit(_featurize_chunk, _tasks(chunk), settings))
                while len(in_flight) >= 4 * workers:
                    done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                    for future in [f for f in in_flight if f in done]:
                        in_flight.remove(future)
                        store_results(future.result())
            for future in in_flight:
                store_results(future.result())
        except BaseException:
            for future in in_flight:
                future.cancel()
            raise


def _take(items: Iterator[Any], n: int) -> Iterator[Any]:
    for _, item in zip(range(n), items, strict=False):
        yield item


def _chain(first: list[Any], rest: Iterator[Any]) -> Iterator[Any]:
    yield from first
    yield from rest


def _featurize_chunk(tasks: list[tuple], settings: GraphSettings) -> list[tuple]:
    """Worker: parse and featurize; returns (slot, digest, (value, n_atoms, n_short) | error)."""
    out = []
    for slot, fmt, payload, source, digest in tasks:
        try:
            graph = build_graph(parse_payload(fmt, payload, source), settings, source)
        except InputError as exc:
            out.append((slot, digest, exc))
            continue
        n_short = int(np.count_nonzero(graph.neighbor_counts() < settings.max_neighbors))
        out.append((slot, digest, (encode_graph(graph), graph.num_atoms, n_short)))
    return out


def count_records_hint(source: Any) -> int | None:
    """A cheap count of the structures in ``source`` for a progress bar, or None."""
    try:
        if isinstance(source, list | tuple | dict):
            return len(source)
        path = Path(source)
        if path.is_dir() and (path / "id_prop.csv").is_file():
            with open(path / "id_prop.csv", "rb") as handle:
                return sum(1 for line in handle if line.strip())
    except (TypeError, OSError):
        return None
    return None
