"""Read crystals and their targets from every supported layout.

Supported sources (``DATA`` on the command line):

* a **directory in the original CGCNN layout**: ``id_prop.csv`` (no header; ``id,target[,...]``)
  and one ``ID.cif`` per row, optionally ``atom_init.json``.  ``id_prop.csv`` may hold only
  ids (prediction) or be absent, and then every structure file in the folder is read
  (``*.cif``, ``*.vasp``, ``*.poscar``, ``POSCAR*``, ``CONTCAR*``), its id being the file name
  without extension.  A UTF-8 BOM, blank lines, spaces around fields and a missing final
  newline are tolerated;
* a **CSV file** with one crystal per row, the structure as a CIF string
  (``id_column`` defaults to ``material_id``, else ``id``; ``structure_column`` to ``cif``);
  messages name a row by the line it starts on and its id (``x.csv line 17 (id 42)``);
* **JSON / JSON lines** (optionally gzipped) of pymatgen ``Structure.as_dict()`` records:
  a list of records, one record per line, a single structure, or the pandas "split"
  orientation used by Matbench (``{"index": [...], "columns": [...], "data": [[...]]}``);
  the structure is in ``structure_column`` (default ``structure``);
* single structure files: CIF, POSCAR/CONTCAR/``*.vasp``, extended XYZ (``*.extxyz``, ``*.xyz``,
  every frame a crystal, via ASE);
* in Python, pymatgen ``Structure`` objects, :class:`~cgcnn.crystal.Crystal` objects, a list of
  them or a ``{id: structure}`` mapping.

Readers yield :class:`StructureRecord` items lazily (a million-row file is never held as
parsed structures).  A problem with one row (an id with no file, a bad target) is carried
by the record's ``error`` so that the caller can stop or skip it; a problem with the
source as a whole raises :class:`~cgcnn.errors.InputError` at once.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import math
import os
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cgcnn.crystal import Crystal
from cgcnn.errors import InputError

if TYPE_CHECKING:
    pass

DataSource = str | os.PathLike | Any  # a path, a Structure, a Crystal, or a collection of them

ID_PROP = "id_prop.csv"
_CIF_SUFFIXES = (".cif",)
_POSCAR_SUFFIXES = (".vasp", ".poscar")
_POSCAR_PREFIXES = ("POSCAR", "CONTCAR")
_XYZ_SUFFIXES = (".extxyz", ".xyz")
_JSON_SUFFIXES = (".json", ".jsonl", ".json.gz", ".jsonl.gz")
_CSV_SUFFIXES = (".csv", ".csv.gz")

csv.field_size_limit(2**31 - 1)  # CIF strings in a CSV cell can be long


@dataclass(frozen=True)
class StructureRecord:
    """One crystal to read: where it is, how to parse it and its targets.

    Attributes:
        id: the crystal's id.
        source: where it comes from, for messages (``path``, ``path line N (id ID)`` for a
            CSV row, ``path:id`` for a JSON record).
        fmt: ``"cif"``, ``"poscar"``, ``"dict"`` (pymatgen ``as_dict``) or ``"crystal"``.
        payload: the structure's text/bytes, its dict, or a :class:`Crystal`; ``None`` when
            it is read from ``path`` on demand.
        path: the file to read when ``payload`` is ``None``.
        target: the targets, or ``None`` when unknown.
        error: why this row cannot be used (then nothing else is meaningful but id/source).
        listed_at: where the id was listed when that is not ``source`` (``id_prop.csv:LINE``).
        group: which of several sources the record comes from (ids are unique within one).
    """

    id: str
    source: str
    fmt: str
    payload: Any = None
    path: str | None = None
    target: tuple[float, ...] | None = None
    error: str | None = None
    listed_at: str | None = None
    group: int = 0

    def raw(self) -> Any:
        """The payload, reading ``path`` if needed (bytes for files)."""
        if self.payload is not None:
            return self.payload
        try:
            return Path(self.path).read_bytes()
        except OSError as exc:
            raise InputError(self.source, f"cannot read the file ({exc.strerror})") from None

    def load(self) -> Crystal:
        """Parse the structure into a :class:`Crystal`."""
        return parse_payload(self.fmt, self.raw(), self.source)


def content_hash(fmt: str, payload: Any) -> bytes:
    """A 16-byte digest of a structure's content (the cache key's content part)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(fmt.encode())
    if isinstance(payload, bytes):
        h.update(payload)
    elif isinstance(payload, str):
        h.update(payload.encode("utf-8", "surrogatepass"))
    elif isinstance(payload, Crystal):
        for array in (payload.lattice, payload.atomic_numbers, payload.frac_coords):
            h.update(np.ascontiguousarray(array).tobytes())
    else:
        h.update(json.dumps(payload, sort_keys=True, default=str).encode())
    return h.digest()


def parse_payload(fmt: str, payload: Any, source: str) -> Crystal:
    """Turn a record's payload into a :class:`Crystal` (raises :class:`InputError`)."""
    if fmt == "crystal":
        return payload
    if fmt == "cif":
        from cgcnn.cif import parse_cif

        return parse_cif(payload, source)
    if fmt == "poscar":
        return _parse_poscar(payload, source)
    if fmt == "dict":
        return _parse_structure_dict(payload, source)
    raise ValueError(f"unknown structure format {fmt!r}")


def read_structures(
    source: DataSource | Sequence[DataSource], **options: Any
) -> list[StructureRecord]:
    """All records of ``source`` as a list (see :func:`iter_structures` for the options)."""
    return list(iter_structures(source, **options))


def iter_structures(
    source: DataSource | Sequence[DataSource],
    *,
    target: str | Sequence[str] | None = None,
    id_column: str | None = None,
    structure_column: str | None = None,
) -> Iterator[StructureRecord]:
    """Yield the crystals of ``source`` as :class:`StructureRecord` items.

    Args:
        source: a path (directory, CSV, JSON, structure file), a pymatgen ``Structure``, a
            :class:`Crystal`, a ``{id: structure}`` mapping or a list of any of these.
        target: target column name(s) for CSV/JSON, comma-separated or a list; for a
            CGCNN directory, the 1-based target column numbers of ``id_prop.csv`` (default:
            all of them).  ``None`` for CSV/JSON means "no targets".
        id_column: the id column of a CSV/JSON (default ``material_id``, else ``id``).
        structure_column: the structure column (default ``cif`` for CSV, ``structure`` for
            JSON).

    Raises:
        InputError: a source that does not exist or cannot be read as a whole.
    """
    targets = _split_names(target)
    if isinstance(source, Mapping):
        for key, item in source.items():
            yield _object_record(item, str(key))
        return
    if _is_structure_like(source):
        yield _object_record(source, "0")
        return
    if isinstance(source, str | os.PathLike):
        yield from _iter_path(Path(source), targets, id_column, structure_column)
        return
    if isinstance(source, Iterable):
        for index, item in enumerate(source):
            if _is_structure_like(item):
                yield _object_record(item, str(index))
            else:
                for record in iter_structures(
                    item, target=target, id_column=id_column, structure_column=structure_column
                ):
                    yield replace(record, group=index)
        return
    raise InputError(None, f"cannot read structures from a {type(source).__name__}")


def find_atom_init(source: DataSource) -> Path | None:
    """``atom_init.json`` beside a CGCNN directory source, if there is one."""
    if isinstance(source, str | os.PathLike):
        candidate = Path(source) / "atom_init.json"
        if candidate.is_file():
            return candidate
    return None


# --------------------------------------------------------------------------- sources


def _iter_path(
    path: Path, targets: list[str], id_column: str | None, structure_column: str | None
) -> Iterator[StructureRecord]:
    if not path.exists():
        raise InputError(str(path), "no such file or directory")
    if path.is_dir():
        if (path / ID_PROP).is_file():
            yield from _iter_cgcnn_dir(path, targets)
        else:
            yield from _iter_structure_files(path)
        return
    name = path.name.lower()
    if name.endswith(_CSV_SUFFIXES):
        yield from _iter_csv(path, targets, id_column, structure_column or "cif")
    elif name.endswith(_JSON_SUFFIXES):
        yield from _iter_json(path, targets, id_column, structure_column or "structure")
    elif name.endswith(_XYZ_SUFFIXES):
        yield from _iter_extxyz(path)
    elif _structure_format(path) is not None:
        yield StructureRecord(path.stem, str(path), _structure_format(path), path=str(path))
    else:
        raise InputError(
            str(path),
            "unknown file type; expected a folder, .csv, .json/.jsonl(.gz), .cif, POSCAR/"
            "CONTCAR/.vasp or .extxyz/.xyz",
        )


def _structure_format(path: Path) -> str | None:
    name = path.name
    if name.lower().endswith(_CIF_SUFFIXES):
        return "cif"
    if name.lower().endswith(_POSCAR_SUFFIXES) or name.startswith(_POSCAR_PREFIXES):
        return "poscar"
    return None


def _iter_structure_files(folder: Path) -> Iterator[StructureRecord]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and _structure_format(p))
    if not files:
        raise InputError(
            str(folder), f"has no {ID_PROP} and no structure files (*.cif, *.vasp, POSCAR*)"
        )
    for path in files:
        yield StructureRecord(path.stem, str(path), _structure_format(path), path=str(path))


def _iter_cgcnn_dir(folder: Path, targets: list[str]) -> Iterator[StructureRecord]:
    """The original layout: id_prop.csv rows -> ID.cif files."""
    table = folder / ID_PROP
    columns = _target_columns(targets, table)
    n_targets: int | None = None
    for line_no, row in _csv_rows(table):
        rid = row[0]
        where = f"{table}:{line_no}"
        cif = folder / f"{rid}.cif"
        values = row[1:] if columns is None else [row[c] for c in columns if c < len(row)]
        if columns is not None and any(c >= len(row) for c in columns):
            yield _bad(rid, where, f"has {len(row) - 1} target column(s); asked for {targets}")
            continue
        if n_targets is None:
            n_targets = len(values)
        if len(values) != n_targets:
            yield _bad(rid, where, f"has {len(values)} target(s), earlier rows have {n_targets}")
            continue
        target, error = _parse_targets(values)
        if error:
            yield _bad(rid, where, error)
        elif not rid:
            yield _bad(rid, where, "empty id")
        elif not cif.is_file():
            yield _bad(rid, where, f"id {rid!r} has no structure file {cif.name} in {folder}")
        else:
            yield StructureRecord(
                rid, str(cif), "cif", path=str(cif), target=target, listed_at=where
            )


def _iter_csv(
    path: Path, targets: list[str], id_column: str | None, structure_column: str
) -> Iterator[StructureRecord]:
    with _open_text(path) as handle:
        reader = csv.reader(handle)
        try:
            header = [name.strip() for name in next(reader)]
        except StopIteration:
            raise InputError(str(path), "the file is empty") from None
        except (csv.Error, UnicodeDecodeError) as exc:
            raise InputError(str(path), f"not a readable CSV file ({exc})") from None
        id_index = _column_index(header, id_column, ("material_id", "id"), path, "--id-column")
        cif_index = _column_index(header, structure_column, (), path, "--structure-column")
        target_index = [_column_index(header, name, (), path, "--target") for name in targets]
        try:
            for line_no, row in _numbered(reader):
                if not any(field.strip() for field in row):
                    continue
                if len(row) != len(header):
                    yield _bad(
                        str(line_no),
                        f"{path} line {line_no}",
                        f"has {len(row)} fields, the header has {len(header)}",
                    )
                    continue
                rid = row[id_index].strip()
                where = f"{path} line {line_no} (id {rid})"
                target, error = _parse_targets([row[i] for i in target_index])
                if error:
                    yield _bad(rid, where, error)
                else:
                    yield StructureRecord(
                        rid,
                        where,
                        "cif",
                        payload=row[cif_index],
                        target=target if targets else None,
                    )
        except (csv.Error, UnicodeDecodeError) as exc:
            raise InputError(str(path), f"not a readable CSV file ({exc})") from None


def _iter_json(
    path: Path, targets: list[str], id_column: str | None, structure_column: str
) -> Iterator[StructureRecord]:
    name = path.name.lower()
    if name.endswith((".jsonl", ".jsonl.gz")):
        records = _jsonl_records(path)
    else:
        try:
            with _open_text(path) as handle:
                document = json.load(handle)
        except (json.JSONDecodeError, UnicodeDecodeError, EOFError, gzip.BadGzipFile) as exc:
            raise InputError(str(path), f"not valid JSON ({exc})") from None
        records = _json_records(document, path)
    for index, record in enumerate(records):
        if _looks_like_structure_dict(record):
            record = {structure_column: record}
        if not isinstance(record, dict):
            yield _bad(str(index), f"{path}:{index}", "is not a JSON object")
            continue
        rid = _record_id(record, id_column, index)
        where = f"{path}:{rid}"
        structure = record.get(structure_column)
        if not isinstance(structure, dict):
            keys = ", ".join(sorted(map(str, record))) or "none"
            yield _bad(
                rid, where, f"has no structure dict under {structure_column!r} (keys: {keys})"
            )
            continue
        missing = [t for t in targets if t not in record]
        if missing:
            yield _bad(rid, where, f"has no target {missing[0]!r}")
            continue
        target, error = _parse_targets([record[t] for t in targets])
        if error:
            yield _bad(rid, where, error)
        else:
            yield StructureRecord(
                rid, where, "dict", payload=structure, target=target if targets else None
            )


def _json_records(document: Any, path: Path) -> list[Any]:
    if isinstance(document, list):
        return document
    if isinstance(document, dict):
        if {"columns", "data"} <= set(document):  # pandas "split" orientation (Matbench)
            columns = list(document["columns"])
            index = document.get("index") or list(range(len(document["data"])))
            rows = []
            for rid, values in zip(index, document["data"], strict=False):
                row = dict(zip(columns, values, strict=False))
                row.setdefault("id", rid)
                rows.append(row)
            return rows
        if _looks_like_structure_dict(document):
            return [document]
    raise InputError(
        str(path),
        "expected a list of records, one structure dict, or Matbench's "
        "{index, columns, data} layout",
    )


def _jsonl_records(path: Path) -> Iterator[Any]:
    try:
        with _open_text(path) as handle:
            for line_no, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputError(f"{path}:{line_no}", f"not valid JSON ({exc})") from None
    except (UnicodeDecodeError, EOFError, gzip.BadGzipFile) as exc:
        raise InputError(str(path), f"not a readable JSON-lines file ({exc})") from None


def _iter_extxyz(path: Path) -> Iterator[StructureRecord]:
    """Every frame of an (extended) XYZ file, read with ASE; ids ``stem`` or ``stem:k``."""
    try:
        from ase.io import read as ase_read
    except ImportError:  # pragma: no cover - ase is a dependency
        raise InputError(str(path), "reading extxyz needs the 'ase' package") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frames = ase_read(str(path), index=":", format="extxyz")
    except Exception as exc:  # ASE raises many types for bad text
        raise InputError(
            str(path), f"not a readable extended XYZ file ({_first_line(exc)})"
        ) from None
    if not frames:
        raise InputError(str(path), "holds no frames")
    for k, atoms in enumerate(frames):
        rid = path.stem if len(frames) == 1 else f"{path.stem}:{k}"
        where = f"{path}:{k}"
        if not all(atoms.pbc):
            yield _bad(rid, where, "is not periodic in all three directions (set Lattice= and pbc)")
            continue
        crystal = Crystal(
            lattice=np.array(atoms.cell.array, dtype=np.float64),
            atomic_numbers=np.array(atoms.numbers, dtype=np.int64),
            frac_coords=np.array(atoms.get_scaled_positions(wrap=False), dtype=np.float64),
        )
        yield StructureRecord(rid, where, "crystal", payload=crystal)


def _object_record(item: Any, rid: str) -> StructureRecord:
    source = f"structure {rid}"
    if isinstance(item, Crystal):
        return StructureRecord(rid, source, "crystal", payload=item)
    try:
        crystal = Crystal.from_structure(item, source)
    except InputError as exc:
        return _bad(rid, source, exc.reason)
    return StructureRecord(rid, source, "crystal", payload=crystal)


# --------------------------------------------------------------------------- parsing


def _parse_poscar(payload: bytes | str, source: str) -> Crystal:
    from pymatgen.io.vasp import Poscar

    text = _decode(payload, source)
    if not text.strip():
        raise InputError(source, "the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            structure = Poscar.from_str(text).structure
    except Exception as exc:  # pymatgen raises ValueError, IndexError, ... for bad text
        raise InputError(source, f"not a readable POSCAR file ({_first_line(exc)})") from None
    return Crystal.from_structure(structure, source)


def _parse_structure_dict(payload: dict, source: str) -> Crystal:
    from pymatgen.core import Structure

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            structure = Structure.from_dict(payload)
    except Exception as exc:  # KeyError, ValueError, TypeError for malformed dicts
        raise InputError(
            source, f"not a valid pymatgen Structure dict ({_first_line(exc)})"
        ) from None
    return Crystal.from_structure(structure, source)


def _parse_targets(values: Sequence[Any]) -> tuple[tuple[float, ...] | None, str | None]:
    parsed = []
    for value in values:
        text = value.strip() if isinstance(value, str) else value
        try:
            number = float(text)
        except (TypeError, ValueError):
            return None, f"target {value!r} is not a number"
        if not math.isfinite(number):
            return None, f"target {value!r} is not finite"
        parsed.append(number)
    return (tuple(parsed) if parsed else None), None


# --------------------------------------------------------------------------- helpers


def _bad(rid: str, source: str, reason: str) -> StructureRecord:
    return StructureRecord(rid, source, "invalid", error=reason)


def _csv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """Non-blank rows of a header-less CSV, fields stripped, with 1-based line numbers."""
    try:
        with _open_text(path) as handle:
            for line_no, row in _numbered(csv.reader(handle)):
                fields = [field.strip() for field in row]
                if any(fields):
                    yield line_no, fields
    except (csv.Error, UnicodeDecodeError) as exc:
        raise InputError(str(path), f"not a readable CSV file ({exc})") from None


def _numbered(reader: Any) -> Iterator[tuple[int, list[str]]]:
    """The rows of a ``csv.reader`` with the 1-based line each starts on (a quoted field,
    such as a CIF string, may span many lines)."""
    start = reader.line_num + 1
    for row in reader:
        yield start, row
        start = reader.line_num + 1


def _open_text(path: Path) -> io.TextIOBase:
    """Open text (gzipped or not) as UTF-8, dropping a BOM."""
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def _target_columns(targets: list[str], table: Path) -> list[int] | None:
    if not targets:
        return None
    columns = []
    for name in targets:
        if not name.isdigit() or int(name) < 1:
            raise InputError(
                str(table),
                f"has no header, so --target takes column numbers (1 = first target), got {name!r}",
            )
        columns.append(int(name))
    return columns


def _column_index(
    header: list[str], name: str | None, defaults: Sequence[str], path: Path, option: str
) -> int:
    candidates = [name] if name else list(defaults)
    for candidate in candidates:
        if candidate in header:
            return header.index(candidate)
    wanted = " or ".join(repr(c) for c in candidates)
    available = ", ".join(repr(h) for h in header if h)
    raise InputError(str(path), f"has no column {wanted} (columns: {available}); use {option}")


def _record_id(record: dict, id_column: str | None, index: int) -> str:
    for key in [id_column] if id_column else ["material_id", "id"]:
        if key in record and record[key] is not None:
            return str(record[key]).strip()
    return str(index)


def _looks_like_structure_dict(obj: Any) -> bool:
    return isinstance(obj, dict) and "lattice" in obj and "sites" in obj


def _is_structure_like(obj: Any) -> bool:
    if isinstance(obj, Crystal):
        return True
    cls = type(obj)
    return cls.__name__ in {"Structure", "IStructure"} and cls.__module__.startswith("pymatgen")


def _split_names(target: str | Sequence[str] | None) -> list[str]:
    if target is None:
        return []
    names = target.split(",") if isinstance(target, str) else list(target)
    return [str(n).strip() for n in names if str(n).strip()]


def _decode(payload: bytes | str, source: str) -> str:
    if isinstance(payload, str):
        return payload
    try:
        return payload.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(source, "is not a text file (not UTF-8)") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
