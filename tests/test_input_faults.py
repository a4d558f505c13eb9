"""Faults, bad input and hostile files: nothing lost, nothing wrong used, one clear line.

The graph cache's checksums and damaged files, relative cache folders, every bad entry of a
data set reported at once (CSV rows by line), and a radius too large for the memory.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from cgcnn import CrystalGraphDataset, InputError
from cgcnn import featurizer as featurizer_module
from cgcnn import graph as graph_module
from cgcnn.cache import CACHE_FILE
from cgcnn.cif import parse_cif, parse_cif_file
from cgcnn.crystal import Crystal
from cgcnn.graph import GraphSettings, build_graph
from conftest import GOOD_CIF, make_cif, write_cgcnn_folder

FIELDS = ("atomic_numbers", "edge_index", "distances", "offsets", "pos", "cell")


def small_folder(tmp_path: Path, n: int = 3) -> Path:
    """A CGCNN folder of ``n`` perovskites c0, c1, ... with different cell sizes."""
    cifs = {f"c{k}": make_cif(a=3.8 + 0.05 * k) for k in range(n)}
    return write_cgcnn_folder(tmp_path / "data", cifs)


def build(folder: Path, cache_dir: Path, **options) -> CrystalGraphDataset:
    """A dataset whose reading connection is closed again, so the file can be edited."""
    ds = CrystalGraphDataset(folder, cache_dir=cache_dir, progress=False, **options)
    ds._store.close()
    return ds


def assert_same_graph(got, expected) -> None:
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name), err_msg=name)
    assert got.radius == expected.radius


def fresh_graph(path: Path):
    return build_graph(parse_cif_file(path), GraphSettings(), str(path))


def flip_value_bytes(db: Path, rowid: int) -> None:
    """Flip the last 8 bytes of a stored graph record (its last edges' image offsets)."""
    with sqlite3.connect(db) as conn:
        (value,) = conn.execute("SELECT value FROM graphs WHERE rowid=?", (rowid,)).fetchone()
        damaged = value[:-8] + bytes(b ^ 0xFF for b in value[-8:])
        conn.execute("UPDATE graphs SET value=? WHERE rowid=?", (damaged, rowid))
    conn.close()


def checkpoint(db: Path) -> None:
    """Copy the write-ahead log into the file and remove it (no connection is left open)."""
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def stderr_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


# --- 1. cache integrity ------------------------------------------------------------------


def test_a_cached_graph_with_flipped_bytes_is_rebuilt(tmp_path, cache_dir, capsys):
    folder = small_folder(tmp_path)
    first = build(folder, cache_dir)
    rowid = int(first._rowids[1])
    db = cache_dir / CACHE_FILE
    flip_value_bytes(db, rowid)
    capsys.readouterr()

    again = build(folder, cache_dir)
    assert (again.report.featurized, again.report.reused) == (1, 2)
    assert int(again._rowids[1]) == rowid  # the row was replaced in place
    assert_same_graph(again.graph(1), fresh_graph(folder / "c1.cif"))
    lines = stderr_lines(capsys)
    assert lines == [
        f"cgcnn: warning: {db}: the cached graph of {folder / 'c1.cif'} (row {rowid}) fails "
        "its checksum (damaged bytes); building it again"
    ]

    third = build(folder, cache_dir)
    assert (third.report.featurized, third.report.reused) == (0, 3)
    assert stderr_lines(capsys) == []


def test_get_refuses_a_damaged_graph(tmp_path, cache_dir):
    folder = small_folder(tmp_path)
    ds = CrystalGraphDataset(folder, cache_dir=cache_dir, progress=False)
    rowid = int(ds._rowids[2])
    flip_value_bytes(cache_dir / CACHE_FILE, rowid)
    with pytest.raises(InputError) as info:
        ds.graph(2)
    assert str(info.value) == (
        f"{cache_dir / CACHE_FILE}: graph {rowid} fails its checksum (damaged bytes); build "
        "the dataset again (or run cgcnn featurize) to rebuild it"
    )
    assert_same_graph(ds.graph(0), fresh_graph(folder / "c0.cif"))  # the others are fine


def test_a_cache_from_before_checksums_is_migrated(tmp_path, cache_dir, capsys):
    folder = small_folder(tmp_path)
    build(folder, cache_dir)
    db = cache_dir / CACHE_FILE
    with sqlite3.connect(db) as conn:
        conn.execute("ALTER TABLE graphs DROP COLUMN checksum")
    conn.close()
    capsys.readouterr()

    again = build(folder, cache_dir)
    assert (again.report.featurized, again.report.reused) == (3, 0)  # unverified: rebuilt
    assert stderr_lines(capsys) == [
        f"cgcnn: note: {db}: graphs cached by an earlier version have no checksum; each is "
        "rebuilt once when next used"
    ]
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM graphs WHERE checksum IS NULL").fetchone() == (0,)
        assert conn.execute("SELECT COUNT(*) FROM graphs").fetchone() == (3,)
    conn.close()
    third = build(folder, cache_dir)
    assert (third.report.featurized, third.report.reused) == (0, 3)
    assert stderr_lines(capsys) == []


def moved_aside(cache_dir: Path) -> list[Path]:
    return sorted(cache_dir.glob(f"{CACHE_FILE}.corrupt-*"))


def test_a_cache_file_of_garbage_is_set_aside(tmp_path, cache_dir, capsys):
    folder = small_folder(tmp_path)
    cache_dir.mkdir()
    garbage = bytes(range(256)) * 20
    (cache_dir / CACHE_FILE).write_bytes(garbage)
    (cache_dir / f"{CACHE_FILE}-wal").write_bytes(b"junk log")

    ds = build(folder, cache_dir)
    assert len(ds) == 3 and ds.report.featurized == 3
    main, log = moved_aside(cache_dir)
    assert main.read_bytes() == garbage
    assert log.name == f"{main.name}-wal" and log.read_bytes() == b"junk log"
    assert stderr_lines(capsys) == [
        f"cgcnn: warning: {cache_dir / CACHE_FILE} is not an SQLite database; moved it to "
        f"{main.name} and started a new graph cache"
    ]
    assert_same_graph(ds.graph(0), fresh_graph(folder / "c0.cif"))


def test_a_truncated_cache_file_is_set_aside(tmp_path, cache_dir, capsys):
    folder = small_folder(tmp_path, n=8)
    build(folder, cache_dir)
    db = cache_dir / CACHE_FILE
    checkpoint(db)
    whole = db.read_bytes()
    assert len(whole) >= 4 * 4096  # several pages
    db.write_bytes(whole[: len(whole) // 2])
    capsys.readouterr()

    ds = build(folder, cache_dir)
    assert len(ds) == 8 and ds.report.featurized == 8
    (aside,) = moved_aside(cache_dir)
    assert aside.read_bytes() == whole[: len(whole) // 2]
    assert stderr_lines(capsys) == [
        f"cgcnn: warning: {db} is truncated ({len(whole) // 2} bytes; its header says "
        f"{len(whole)}); moved it to {aside.name} and started a new graph cache"
    ]


def test_a_cache_damaged_inside_is_one_line_then_rebuilt(tmp_path, cache_dir, capsys):
    # Every page but the first (the schema) zeroed: found only when a table is read.
    folder = small_folder(tmp_path, n=8)
    build(folder, cache_dir)
    db = cache_dir / CACHE_FILE
    checkpoint(db)
    whole = db.read_bytes()
    db.write_bytes(whole[:4096] + bytes(len(whole) - 4096))

    with pytest.raises(InputError) as info:
        build(folder, cache_dir)
    (aside,) = moved_aside(cache_dir)
    assert str(info.value) == (
        f"{db}: the graph cache is damaged (database disk image is malformed); moved it to "
        f"{aside.name}, run again to rebuild it"
    )
    ds = build(folder, cache_dir)
    assert len(ds) == 8 and ds.report.featurized == 8


# --- 2. relative cache folders -------------------------------------------------------------


def test_a_relative_cache_dir(tmp_path, monkeypatch):
    small_folder(tmp_path)
    monkeypatch.chdir(tmp_path)
    ds = CrystalGraphDataset("data/", cache_dir="graphs", progress=False)
    assert (tmp_path / "graphs" / CACHE_FILE).is_file()
    assert ds.cache_dir == tmp_path / "graphs"
    assert ds[0].num_nodes == 5
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the dataset keeps reading the same cache
    assert_same_graph(ds.graph(1), fresh_graph(tmp_path / "data" / "c1.cif"))
    assert not (elsewhere / "graphs").exists()


def test_a_relative_cache_dir_from_the_environment(tmp_path, monkeypatch):
    small_folder(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CGCNN_CACHE_DIR", "graphs")
    ds = CrystalGraphDataset("data", progress=False)
    assert (tmp_path / "graphs" / CACHE_FILE).is_file()
    assert ds[2].num_nodes == 5
    assert_same_graph(ds.graph(2), fresh_graph(tmp_path / "data" / "c2.cif"))


# --- 3. every bad entry at once -------------------------------------------------------------

TOO_CLOSE = make_cif([("Na", 0, 0, 0, 1), ("Cl", 0.05, 0, 0, 1)], a=5.0)
HEADER = (
    "{n} structures or rows cannot be used; fix them, or leave them out with skip_invalid "
    "(--skip-invalid):"
)


def single_error(path: Path) -> str:
    """The one-line error of a folder holding only ``path``'s structure."""
    folder = write_cgcnn_folder(path.parent / f"only-{path.stem}", {"x": path.read_bytes()})
    with pytest.raises(InputError) as info:
        CrystalGraphDataset(folder, cache_dir=path.parent / "c", progress=False)
    return str(info.value).replace(str(folder / "x.cif"), str(path))


def test_every_bad_entry_is_reported_at_once(tmp_path, cache_dir):
    cifs = {"good0": GOOD_CIF, "empty": b"", "close": TOO_CLOSE, "good1": make_cif(a=4.0)}
    cifs["junk"] = bytes(range(256)) * 4
    rows = "good0,1\nempty,2\nclose,3\nmissing,4\ngood1,5\njunk,6\ngood0,7"
    folder = write_cgcnn_folder(tmp_path / "data", cifs, rows)
    table = folder / "id_prop.csv"
    with pytest.raises(InputError) as info:
        CrystalGraphDataset(folder, cache_dir=cache_dir, progress=False, workers=1)
    assert info.value.source is None
    assert str(info.value).splitlines() == [
        HEADER.format(n=5),
        f"  {folder / 'empty.cif'}: the file is empty",
        f"  {single_error(folder / 'close.cif')}",
        f"  {table}:4: id 'missing' has no structure file missing.cif in {folder}",
        f"  {single_error(folder / 'junk.cif')}",
        f"  {table}:7: duplicate id 'good0' (also {table}:1)",
    ]
    # the good graphs were cached on the way
    ds = CrystalGraphDataset(folder, cache_dir=cache_dir, progress=False, skip_invalid=True)
    assert (ds.report.featurized, ds.report.reused) == (0, 2)
    assert sorted(s.id for s in ds.report.skipped) == ["close", "empty", "good0", "junk", "missing"]


def test_the_listing_follows_the_source_with_worker_processes(tmp_path, cache_dir, monkeypatch):
    # Structure errors come back from worker processes, row errors from the main process.
    monkeypatch.setattr(featurizer_module, "MIN_PARALLEL", 4)
    monkeypatch.setattr(featurizer_module, "CHUNK_SIZE", 2)
    ids = [f"s{k:02d}" for k in range(15)]
    cifs = {
        rid: TOO_CLOSE if k % 3 == 0 else make_cif(a=3.8 + 0.02 * k) for k, rid in enumerate(ids)
    }
    cifs = {rid: text for k, (rid, text) in enumerate(cifs.items()) if k % 3 != 1}
    folder = write_cgcnn_folder(tmp_path / "data", cifs, "\n".join(f"{rid},1" for rid in ids))
    with pytest.raises(InputError) as info:
        CrystalGraphDataset(folder, cache_dir=cache_dir, progress=False, workers=2)
    lines = str(info.value).splitlines()
    expected = [
        f"  {folder / f'{rid}.cif'}: atom 0 (Na) is "
        if k % 3 == 0
        else f"  {folder / 'id_prop.csv'}:{k + 1}: id '{rid}' has no structure file"
        for k, rid in enumerate(ids)
        if k % 3 != 2
    ]
    assert lines[0] == HEADER.format(n=10) and len(lines) == 11
    for line, start in zip(lines[1:], expected, strict=True):
        assert line.startswith(start), (line, start)


def test_the_listing_is_capped(tmp_path, cache_dir):
    cifs: dict[str, str | bytes] = {f"b{k:02d}": b"" for k in range(25)}
    cifs["good"] = GOOD_CIF
    folder = write_cgcnn_folder(tmp_path / "data", cifs)
    with pytest.raises(InputError) as info:
        CrystalGraphDataset(folder, cache_dir=cache_dir, progress=False, workers=1)
    assert str(info.value).splitlines() == [
        HEADER.format(n=25),
        *(f"  {folder / f'b{k:02d}.cif'}: the file is empty" for k in range(20)),
        "  ... and 5 more",
    ]


def test_a_single_bad_entry_keeps_its_own_line(tmp_path, cache_dir):
    folder = write_cgcnn_folder(tmp_path / "data", {"good": GOOD_CIF, "bad": b""})
    with pytest.raises(InputError) as info:
        CrystalGraphDataset(folder, cache_dir=cache_dir, progress=False)
    assert str(info.value) == f"{folder / 'bad.cif'}: the file is empty"
    assert info.value.source == str(folder / "bad.cif")


def quoted(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def test_csv_rows_are_named_by_their_line(tmp_path, cache_dir):
    # CIF strings span many lines, so a row's line is not its row number.
    good = quoted(GOOD_CIF)
    body = [f"a,{good},1.0", f"b,{quoted('not a cif')},2.0", "c,x", f"d,{good},oops", "a,x,3"]
    path = tmp_path / "set.csv"
    path.write_text("material_id,cif,e\n" + "\n".join(body) + "\n")
    lines = [2]
    for row in body[:-1]:
        lines.append(lines[-1] + row.count("\n") + 1)
    la, lb, lc, ld, le = lines
    expected = [
        (f"{path} line {lb} (id b)", "not a CIF file: no line starts with data_"),
        (f"{path} line {lc}", "has 2 fields, the header has 3"),
        (f"{path} line {ld} (id d)", "target 'oops' is not a number"),
        (f"{path} line {le} (id a)", f"duplicate id 'a' (also {path} line {la} (id a))"),
    ]
    assert lb == GOOD_CIF.count("\n") + 3
    with pytest.raises(InputError) as info:
        CrystalGraphDataset(path, target="e", cache_dir=cache_dir, progress=False)
    assert str(info.value).splitlines() == [
        HEADER.format(n=4),
        *(f"  {where}: {reason}" for where, reason in expected),
    ]
    ds = CrystalGraphDataset(
        path, target="e", cache_dir=cache_dir, progress=False, skip_invalid=True
    )
    assert sorted((s.source, s.reason) for s in ds.report.skipped) == sorted(expected)
    assert sorted(s.id for s in ds.report.skipped) == sorted(["b", str(lc), "d", "a"])


# --- 5. a radius too large for the memory ----------------------------------------------------


def big_cell(n_side: int = 18, spacing: float = 2.0) -> Crystal:
    """A simple cubic carbon lattice of n_side^3 atoms (5,832 for 18), spacing in Å."""
    grid = np.stack(np.meshgrid(*[np.arange(n_side)] * 3, indexing="ij"), -1).reshape(-1, 3)
    return Crystal(
        lattice=np.eye(3) * n_side * spacing,
        atomic_numbers=np.full(len(grid), 6, dtype=np.int64),
        frac_coords=grid / n_side,
    )


def test_a_radius_too_large_for_the_memory_is_refused_up_front(monkeypatch):
    crystal = big_cell()
    limit = 2 * 2**30
    monkeypatch.setattr(graph_module, "memory_limit", lambda: limit)
    searched = []
    monkeypatch.setattr(graph_module, "_all_pairs", lambda *a: searched.append(a) or 1 / 0)
    with pytest.raises(InputError) as info:
        build_graph(crystal, GraphSettings(radius=30.0), "big.cif")
    assert not searched  # refused before the search
    pairs = graph_module.estimate_pairs(5832, (18 * 2.0) ** 3, 30.0)
    assert pairs == pytest.approx(5832 * 4 / 3 * np.pi * 30**3 * 0.125)
    assert str(info.value) == (
        f"big.cif: radius 30 Å would give about {pairs:.2g} neighbour pairs for 5832 atoms "
        f"(~{pairs * 112 / 1e9:.3g} GB, more than the 2.15 GB allowed: half the free memory); "
        "use a smaller --radius"
    )


def test_grow_radius_is_stopped_before_the_memory_runs_out(monkeypatch):
    # A sparse cell: 8 and 12 Å find too few neighbours, 18 Å would be too much.
    crystal = big_cell(n_side=12, spacing=4.5)
    monkeypatch.setattr(graph_module, "_UNCHECKED_BYTES", 0)
    monkeypatch.setattr(graph_module, "memory_limit", lambda: 20 * 10**6)
    settings = GraphSettings(radius=8.0, grow_radius=True, max_neighbors=300)
    with pytest.raises(InputError) as info:
        build_graph(crystal, settings, "sparse")
    pairs = graph_module.estimate_pairs(1728, 54.0**3, 18.0)
    assert str(info.value) == (
        f"sparse: radius 18 Å would give about {pairs:.2g} neighbour pairs for 1728 atoms "
        f"(~{pairs * 112 / 1e6:.3g} MB, more than the 20 MB allowed: half the free memory); "
        "use a smaller --radius or leave out --grow-radius"
    )


def test_an_ordinary_radius_is_not_checked_against_the_memory(monkeypatch):
    monkeypatch.setattr(graph_module, "memory_limit", lambda: 0)
    assert build_graph(parse_cif(GOOD_CIF, "test.cif"), GraphSettings()).num_edges == 60


def test_the_memory_limit_is_half_the_free_memory(monkeypatch):
    monkeypatch.setattr(graph_module, "_free_memory", lambda: 3 * 10**9)
    assert graph_module.memory_limit() == 1_500_000_000
