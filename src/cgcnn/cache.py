"""The on-disk graph cache: one SQLite file, graphs stored as compact binary records.

Layout: ``CACHE_DIR/graphs.sqlite`` holds one table, ``graphs``, with a row per (settings
key, content digest) pair.  The content digest hashes the structure's bytes (file, CIF
string, dict or arrays) and the settings key hashes every featurization setting and the
graph code's version (:meth:`cgcnn.graph.GraphSettings.key`), so changing a file or a
setting rebuilds exactly what changed and nothing else.

Why SQLite (Python's standard library, no new dependency): it is one file that scales to
millions of rows with an index, writes are transactional (a run that fails half-way keeps
every graph it committed), several processes may read at once while one writes (WAL
mode), and every reader goes through the operating system's page cache, so DataLoader
workers share it instead of each holding a copy.  A dataset item is one primary-key lookup,
≈ 10 µs.

Readers do not memory-map the file: a mapped page that has been read counts in the
process's resident memory until the mapping is closed, so one pass over a 100,000-graph
cache grew it by 135 MiB (a million graphs would add 1.3 GB).  SQLite's own reads are as
fast here: 8.8 µs a lookup either way over 100,000 perovskite graphs.

A graph is stored as (little-endian, no pickle)::

    header   int32 N, int32 E, float64 radius, float64[9] cell
    uint8    atomic_numbers[N]
    float32  pos[N, 3]
    int32    edge_index[2, E]
    float32  distances[E]
    int16    offsets[E, 3]

about 18 bytes per edge: 1.2 kB for a 5-atom perovskite with 12 neighbours per atom.

**Integrity.**  Each row also holds the CRC-32 of its ``value`` (``zlib.crc32``, ≈ 0.3 µs for a
1.2 kB record against ≈ 4 µs to decode it; BLAKE2b costs ≈ 1.1 µs).  :meth:`GraphStore.lookup`
treats a row that fails it as missing (one warning line; the graph is built again and
replaces the row) and :meth:`GraphStore.get` refuses it with :class:`~cgcnn.errors.InputError`,
so damaged bytes never reach a model.  A file that is not a database or is truncated is moved
aside (``graphs.sqlite.corrupt-<time>``) and a new cache is started.
"""

from __future__ import annotations

import os
import sqlite3
import struct
import sys
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from cgcnn.errors import InputError
from cgcnn.graph import CrystalGraph

CACHE_FILE = "graphs.sqlite"
_HEADER = struct.Struct("<iid9d")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS graphs (
    settings TEXT NOT NULL,
    content BLOB NOT NULL,
    n_atoms INTEGER NOT NULL,
    n_short INTEGER NOT NULL,
    value BLOB NOT NULL,
    checksum INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS graphs_key ON graphs (settings, content);
"""
# Files written before the checksum column existed get it added on opening (ALTER TABLE)
# rather than a new file name: a new name would leave the old file behind, taking space.
# Their rows have a NULL checksum, so they cannot be verified; they are rebuilt when next
# looked up (once, the cost of a new cache) rather than trusted.

#: The first bytes of every SQLite database file.
_SQLITE_MAGIC = b"SQLite format 3\x00"
#: SQLite's error names for a damaged file (and their extended forms, e.g. SQLITE_CORRUPT_INDEX).
_DAMAGE_ERRORS = ("SQLITE_CORRUPT", "SQLITE_NOTADB")

_UPSERT = """
INSERT INTO graphs (settings, content, n_atoms, n_short, value, checksum)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (settings, content) DO UPDATE SET
    n_atoms = excluded.n_atoms, n_short = excluded.n_short,
    value = excluded.value, checksum = excluded.checksum
WHERE graphs.value IS NOT excluded.value OR graphs.checksum IS NOT excluded.checksum
RETURNING rowid
"""


def default_cache_dir() -> Path:
    """``$CGCNN_CACHE_DIR``, else ``$XDG_CACHE_HOME/cgcnn``, else ``~/.cache/cgcnn``
    (made absolute, so that a relative setting keeps naming the same folder)."""
    if os.environ.get("CGCNN_CACHE_DIR"):
        return _absolute(os.environ["CGCNN_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return _absolute(Path(base) / "cgcnn")


def _absolute(directory: str | os.PathLike) -> Path:
    """``directory`` as an absolute path (``~`` expanded, symbolic links kept)."""
    return Path(os.path.abspath(Path(directory).expanduser()))


def checksum(value: bytes) -> int:
    """The integrity checksum stored beside a graph record: its CRC-32."""
    return zlib.crc32(value)


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
        directory: the cache folder (created if missing); a relative path is taken from the
            current folder at construction.
        readonly: open for reading only (DataLoader workers).

    The connection is opened lazily and re-opened after a fork, so a store object can be
    handed to worker processes.  A writer that finds a file that is not a database, or a
    truncated one, moves it aside (with its ``-wal`` and ``-shm`` files) and starts a new
    cache, with one line on stderr.
    """

    def __init__(self, directory: str | os.PathLike, readonly: bool = False) -> None:
        self.directory = _absolute(directory)
        self.path = self.directory / CACHE_FILE
        self.readonly = readonly
        self._conn: sqlite3.Connection | None = None
        self._pid: int | None = None
        self._reported: set[int] = set()  # damaged rows already reported by lookup
        if not readonly:
            self.connection  # noqa: B018 - create the file and schema now, fail early

    @property
    def connection(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():
            self._conn = self._open()
            self._pid = os.getpid()
        return self._conn

    def _open(self) -> sqlite3.Connection:
        if not self.readonly:
            return self._open_writer()
        try:
            conn = sqlite3.connect(f"{self.path.as_uri()}?mode=ro", uri=True, timeout=60)
        except sqlite3.Error as exc:
            raise self._cannot_open(exc) from None
        conn.execute("PRAGMA mmap_size=0")  # read, not mapped: see the module's docstring
        return conn

    def _open_writer(self) -> sqlite3.Connection:
        """Open (or create) the file for writing, moving a damaged file aside first."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            problem = _file_problem(self.path)
        except OSError as exc:
            raise self._cannot_open(exc) from None
        if problem is not None:
            self._set_aside(problem)
        try:
            return self._connect_writer()
        except sqlite3.DatabaseError as exc:
            if not _is_damage(exc):
                raise self._cannot_open(exc) from None
            self._set_aside(f"is damaged ({exc})")
        try:
            return self._connect_writer()
        except sqlite3.Error as exc:
            raise self._cannot_open(exc) from None

    def _cannot_open(self, exc: BaseException) -> InputError:
        return InputError(str(self.path), f"cannot open the graph cache ({exc})")

    def _connect_writer(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=60)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
            self._add_checksum_column(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _add_checksum_column(self, conn: sqlite3.Connection) -> None:
        """Give a file from before checksums the ``checksum`` column (see ``_SCHEMA``)."""
        columns = {row[1] for row in conn.execute("PRAGMA table_info(graphs)")}
        if "checksum" in columns:
            return
        try:
            conn.execute("ALTER TABLE graphs ADD COLUMN checksum INTEGER")
            conn.commit()
        except sqlite3.OperationalError as exc:  # another process added it first
            if "duplicate column" not in str(exc):
                raise
            return
        print(
            f"cgcnn: note: {self.path}: graphs cached by an earlier version have no checksum; "
            "each is rebuilt once when next used",
            file=sys.stderr,
        )

    def _set_aside(self, problem: str, quiet: bool = False) -> Path:
        """Move the cache file (and its -wal / -shm files) aside; return the new name."""
        self.close()
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        k = 1
        while target.exists():
            target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{k}")
            k += 1
        try:
            for suffix in ("", "-wal", "-shm"):
                source = Path(f"{self.path}{suffix}")
                if source.exists():
                    source.replace(f"{target}{suffix}")
        except OSError as exc:
            raise InputError(
                str(self.path), f"the graph cache {problem} and cannot be moved aside ({exc})"
            ) from None
        if not quiet:
            print(
                f"cgcnn: warning: {self.path} {problem}; moved it to {target.name} and started "
                "a new graph cache",
                file=sys.stderr,
            )
        return target

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Turn SQLite's errors for a damaged file into one :class:`InputError` line."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            if not _is_damage(exc):
                raise
            raise self._damage_error(exc) from None

    def _fetchone(self, sql: str, parameters: tuple) -> tuple | None:
        """One row of a query, with :meth:`_guard`'s handling (inline: the hot path)."""
        try:
            return self.connection.execute(sql, parameters).fetchone()
        except sqlite3.DatabaseError as exc:
            if not _is_damage(exc):
                raise
            raise self._damage_error(exc) from None

    def _damage_error(self, exc: sqlite3.DatabaseError) -> InputError:
        """The error for a damaged file; a writer also moves the file aside, so the next
        run starts a new cache."""
        if self.readonly:
            return InputError(
                str(self.path),
                f"the graph cache is damaged ({exc}); featurize again to move it aside and "
                "rebuild it",
            )
        moved = self._set_aside(f"is damaged ({exc})", quiet=True)
        return InputError(
            str(self.path),
            f"the graph cache is damaged ({exc}); moved it to {moved.name}, run again to "
            "rebuild it",
        )

    def lookup(
        self, settings: str, content: bytes, source: str | None = None
    ) -> tuple[int, int, int] | None:
        """``(row id, n_atoms, n_short)`` of a cached graph whose bytes are intact, or ``None``.

        A row that fails its checksum counts as missing, after one line on stderr naming the
        cache file, the row and ``source`` (the structure), so that the caller builds the
        graph again and :meth:`insert` replaces the row.  A row from before checksums
        counts as missing too, silently.
        """
        row = self._fetchone(
            "SELECT rowid, n_atoms, n_short, checksum, value FROM graphs "
            "WHERE settings=? AND content=?",
            (settings, content),
        )
        if row is None:
            return None
        rowid, n_atoms, n_short, stored, value = row
        if stored is None:
            return None
        if stored != checksum(value):
            if rowid not in self._reported:  # (a structure listed twice is reported once)
                self._reported.add(rowid)
                print(
                    f"cgcnn: warning: {self.path}: the cached graph of "
                    f"{source or 'a structure'} (row {rowid}) fails its checksum (damaged "
                    "bytes); building it again",
                    file=sys.stderr,
                )
            return None
        return rowid, n_atoms, n_short

    def insert(
        self, settings: str, content: bytes, n_atoms: int, n_short: int, value: bytes
    ) -> int:
        """Store a graph (not committed until :meth:`commit`) and return its row id.

        A row already under the same key is replaced if its bytes or checksum differ (a
        damaged or unverified row being rebuilt), and kept otherwise; its row id stays.
        """
        with self._guard():
            returned = self.connection.execute(
                _UPSERT, (settings, content, n_atoms, n_short, value, checksum(value))
            ).fetchall()
            if returned:
                return int(returned[0][0])
            return int(
                self.connection.execute(
                    "SELECT rowid FROM graphs WHERE settings=? AND content=?", (settings, content)
                ).fetchone()[0]
            )

    def commit(self) -> None:
        if self._conn is not None:
            with self._guard():
                self._conn.commit()

    def get(self, rowid: int) -> CrystalGraph:
        """The graph stored at ``rowid``.

        Raises:
            InputError: the row's bytes fail their checksum (the file is damaged), or the
                row has none (written by an earlier version).
        """
        row = self._fetchone("SELECT value, checksum FROM graphs WHERE rowid=?", (int(rowid),))
        if row is None:
            raise KeyError(f"graph {rowid} is not in {self.path} (was the cache deleted?)")
        value, stored = row
        if stored is None or stored != checksum(value):
            what = "has no checksum" if stored is None else "fails its checksum (damaged bytes)"
            raise InputError(
                str(self.path),
                f"graph {rowid} {what}; build the dataset again (or run cgcnn featurize) to "
                "rebuild it",
            )
        return decode_graph(value)

    def count(self, settings: str | None = None) -> int:
        with self._guard():
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
            "_reported": set(),
        }


def _is_damage(exc: sqlite3.Error) -> bool:
    """True if SQLite says the file is damaged or is not a database."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name:
        return name.startswith(_DAMAGE_ERRORS)
    text = str(exc)
    return "malformed" in text or "not a database" in text


def _file_problem(path: Path) -> str | None:
    """Why ``path`` cannot be a whole SQLite database, or None (cheap: reads 100 bytes).

    Catches a file that is not a database and one cut short: the header records the
    number of pages, and the file must hold them all (unless a write-ahead log holds pages
    not yet copied back).  Damage elsewhere is found when the damaged part is read.
    """
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return None
    if size == 0:
        return None  # SQLite takes an empty file for a new database
    with open(path, "rb") as handle:
        header = handle.read(100)
    if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
        return "is not an SQLite database"
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    counted = pages > 0 and header[24:28] == header[92:96]  # SQLite's validity rule
    wal = Path(f"{path}-wal")
    has_log = wal.exists() and wal.stat().st_size > 0
    if counted and size < pages * page_size and not has_log:
        return f"is truncated ({size} bytes; its header says {pages * page_size})"
    return None
