"""The on-disk graph cache: one SQLite file, graphs stored as compact binary records.

Layout: ``CACHE_DIR/graphs.sqlite`` holds one table, ``graphs``, with a row per (settings
key, content digest) pair.  The content digest hashes the structure's bytes (file, CIF
string, dict or arrays) and the settings key hashes every featurization setting and the
graph code's version (:meth:`cgcnn.graph.GraphSettings.key`), so changing a file or a
setting rebuilds exactly what changed and nothing else.

Why SQLite (Python's standard library, no new dependency): it is one file that scales to
millions of rows with an index, writes are transactional (a run that fails half-way keeps
every graph it committed), several processes may read at once while one writes (WAL
mode), and readers memory-map the file (``PRAGMA mmap_size``), so DataLoader workers share
the operating system's page cache instead of each holding a copy.  A dataset item is one
primary-key lookup, ≈ 10 µs.

A graph is stored as (little-endian, no pickle)::

    header   int32 N, int32 E, float64 radius, float64[9] cell
    uint8    atomic_numbers[N]
    float32  pos[N, 3]
    int32    edge_index[2, E]
    float32  distances[E]
    int16    offsets[E, 3]

about 18 bytes per edge: 1.2 kB for a 5-atom perovskite with 12 neighbours per atom.
"""

from __future__ import annotations

import os
import sqlite3
import struct
from pathlib import Path

import numpy as np

from cgcnn.graph import CrystalGraph

CACHE_FILE = "graphs.sqlite"
_HEADER = struct.Struct("<iid9d")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS graphs (
    settings TEXT NOT NULL,
    content BLOB NOT NULL,
    n_atoms INTEGER NOT NULL,
    n_short INTEGER NOT NULL,
    value BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS graphs_key ON graphs (settings, content);
"""


def default_cache_dir() -> Path:
    """``$CGCNN_CACHE_DIR``, else ``$XDG_CACHE_HOME/cgcnn``, else ``~/.cache/cgcnn``."""
    if os.environ.get("CGCNN_CACHE_DIR"):
        return Path(os.environ["CGCNN_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cgcnn"


def encode_graph(graph: CrystalGraph) -> bytes:
    """Serialise a graph to the binary record described in the module docstring."""
    n, e = graph.num_atoms, graph.num_edges
    return b"".join(
        (
            _HEADER.pack(n, e, graph.radius, *np.asarray(graph.cell, dtype=np.float64).ravel()),
            graph.atomic_numbers.astype(np.uint8).tobytes(),
            graph.pos.astype("<f4").tobytes(),
            graph.edge_index.astype("<i4").tobytes(),
            graph.distances.astype("<f4").tobytes(),
            graph.offsets.astype("<i2").tobytes(),
        )
    )


def decode_graph(blob: bytes) -> CrystalGraph:
    """Inverse of :func:`encode_graph`."""
    n, e, radius, *cell = _HEADER.unpack_from(blob, 0)
    at = _HEADER.size
    numbers = np.frombuffer(blob, np.uint8, n, at)
    at += n
    pos = np.frombuffer(blob, "<f4", 3 * n, at).reshape(n, 3)
    at += 12 * n
    edge_index = np.frombuffer(blob, "<i4", 2 * e, at).reshape(2, e)
    at += 8 * e
    distances = np.frombuffer(blob, "<f4", e, at)
    at += 4 * e
    offsets = np.frombuffer(blob, "<i2", 3 * e, at).reshape(e, 3)
    return CrystalGraph(
        atomic_numbers=numbers.astype(np.int64),
        edge_index=edge_index.astype(np.int64),
        distances=distances,
        offsets=offsets,
        pos=pos,
        cell=np.array(cell, dtype=np.float64).reshape(3, 3),
        radius=radius,
    )


class GraphStore:
    """The SQLite file of cached graphs.

    Args:
        directory: the cache folder (created if missing).
        readonly: open for reading only (DataLoader workers).

    The connection is opened lazily and re-opened after a fork, so a store object can be
    handed to worker processes.
    """

    def __init__(self, directory: str | os.PathLike, readonly: bool = False) -> None:
        self.directory = Path(directory)
        self.path = self.directory / CACHE_FILE
        self.readonly = readonly
        self._conn: sqlite3.Connection | None = None
        self._pid: int | None = None
        if not readonly:
            self.connection  # noqa: B018 - create the file and schema now, fail early

    @property
    def connection(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():
            self._conn = self._open()
            self._pid = os.getpid()
        return self._conn

    def _open(self) -> sqlite3.Connection:
        if self.readonly:
            conn = sqlite3.connect(f"{self.path.as_uri()}?mode=ro", uri=True, timeout=60)
        else:
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=60)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.executescript(_SCHEMA)
            except (OSError, sqlite3.Error) as exc:
                from cgcnn.errors import InputError

                raise InputError(str(self.path), f"cannot open the graph cache ({exc})") from None
        conn.execute("PRAGMA mmap_size=68719476736")  # map up to 64 GiB; shared page cache
        return conn

    def lookup(self, settings: str, content: bytes) -> tuple[int, int, int] | None:
        """``(row id, n_atoms, n_short)`` of a cached graph, or ``None``."""
        return self.connection.execute(
            "SELECT rowid, n_atoms, n_short FROM graphs WHERE settings=? AND content=?",
            (settings, content),
        ).fetchone()

    def insert(
        self, settings: str, content: bytes, n_atoms: int, n_short: int, value: bytes
    ) -> int:
        """Store a graph (not committed until :meth:`commit`) and return its row id."""
        cur = self.connection.execute(
            "INSERT OR IGNORE INTO graphs (settings, content, n_atoms, n_short, value) "
            "VALUES (?, ?, ?, ?, ?)",
            (settings, content, n_atoms, n_short, value),
        )
        if cur.rowcount == 1:
            return int(cur.lastrowid)
        return int(self.lookup(settings, content)[0])

    def commit(self) -> None:
        if self._conn is not None:
            self._conn.commit()

    def get(self, rowid: int) -> CrystalGraph:
        """The graph stored at ``rowid``."""
        row = self.connection.execute(
            "SELECT value FROM graphs WHERE rowid=?", (int(rowid),)
        ).fetchone()
        if row is None:
            raise KeyError(f"graph {rowid} is not in {self.path} (was the cache deleted?)")
        return decode_graph(row[0])

    def count(self, settings: str | None = None) -> int:
        if settings is None:
            return self.connection.execute("SELECT COUNT(*) FROM graphs").fetchone()[0]
        return self.connection.execute(
            "SELECT COUNT(*) FROM graphs WHERE settings=?", (settings,)
        ).fetchone()[0]

    def close(self) -> None:
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None

    def __getstate__(self) -> dict:
        return {
            "directory": self.directory,
            "path": self.path,
            "readonly": self.readonly,
            "_conn": None,
            "_pid": None,
        }
