"""Atom feature tables: the vector that describes each element.

CGCNN starts every atom (node) of a crystal graph from a fixed vector chosen by its
element.  An :class:`AtomFeatures` holds those vectors as a (119, dim) float32 table
indexed by atomic number Z (row 0 is unused) and turns an array of atomic numbers into
an (N, dim) feature matrix.

Tables come from three places (:func:`resolve_atom_features` picks one):

* ``"cgcnn92"`` (the default): the 92-dimensional encoding of Xie & Grossman,
  Phys. Rev. Lett. 120, 145301 (2018), Supplementary Table S2, **generated here** from
  the element data of pymatgen and mendeleev (:meth:`AtomFeatures.cgcnn92`).
* ``"onehot"``: one column per element, 1 in the element's own column
  (:meth:`AtomFeatures.one_hot`).
* a JSON file in the original CGCNN ``atom_init.json`` format: an object whose keys are
  atomic numbers written as strings and whose values are lists of numbers, all of the
  same length (:meth:`AtomFeatures.from_json`, :meth:`AtomFeatures.to_json`).

The CGCNN 92-dimensional encoding
---------------------------------
Nine properties, each one-hot encoded in its own block of columns, in this order
(``docs/atom_features.md`` lists every bin edge and compares the result with the
original ``atom_init.json``):

=====  =======================  ====  ================================================
cols   property                 bins  value used
=====  =======================  ====  ================================================
0-18   group                    19    pymatgen ``Element.group``; column 0 = no group:
                                      the f block (La-Yb, Ac-No), columns 1-18 =
                                      groups 1-18
19-25  period                   7     pymatgen ``Element.row`` (1-7)
26-35  electronegativity        10    mendeleev ``en_pauling`` (Pauling), linear 0.5
                                      to 4.0
36-45  covalent radius          10    mendeleev ``covalent_radius_pyykko`` (Pyykkö &
                                      Atsumi 2009 single-bond radii, pm), linear 25 to
                                      250 pm
46-57  valence electrons        12    from pymatgen ``block`` and ``group`` (1-12, see
                                      below)
58-67  first ionisation energy  10    pymatgen ``Element.ionization_energy`` (eV),
                                      ln(eV) 1.3 to 3.3
68-77  electron affinity        10    mendeleev ``electron_affinity`` (eV), linear -3.0
                                      to 3.7
78-81  block                    4     pymatgen ``Element.block`` (s, p, d, f); He is
                                      put in the s block
82-91  atomic volume            10    molar volume of the solid, cm³/mol: pymatgen
                                      ``atomic_mass / density_of_solid``, else
                                      pymatgen ``molar_volume``; ln 1.5 to 4.3
=====  =======================  ====  ================================================

Binned properties use ten equal bins between the limits above, on the property itself
("linear") or on its natural logarithm ("ln").  Bin *i* holds
``edge[i] < x <= edge[i+1]``: a value exactly on an edge goes into the lower bin, values
below the first inner edge into bin 0 and values above the last inner edge into bin 9.
The edges are ``lo + i * d`` in float64 with ``d = (lo + step) - lo`` and
``step = (hi - lo) / 10``, which is what ``numpy.arange(lo, hi, step)`` computes; they
differ from ``numpy.linspace(lo, hi, 11)`` by a few units in the last place at most,
which matters only for values exactly on an edge.  A value on a nominal edge therefore
goes into the lower bin when the float64 edge is exact (Pauling 1.2 and 1.9) and into
the upper bin when the edge is rounded below it (Pauling 1.55 and 2.6: edges
1.5499999999999998 and 2.5999999999999996; Ac's electron affinity 0.35 eV: edge
0.34999999999999964, where ``linspace``'s 0.3500000000000001 would give the lower
bin).  The original table puts all of these values in the same bins, and with these
edges every binned block of it is reproduced wherever the property values agree.

Valence electrons: s block, 1 for group 1 and 2 otherwise (He included); p block,
group - 10 (B 3 ... Ne 8); d block, the group number (Sc 3 ... Zn 12); f block, 2 (the
outer s pair).  A property the data source does not know leaves its block all zero, as
in the original table.  Rows are generated for Z = 1 to 100, the elements of the
original table.

mendeleev's data are read from the SQLite database the package ships (its ``elements``
table, the one ``mendeleev.fetch.fetch_table("elements")`` returns) in one query with
the standard library, which avoids importing mendeleev, pandas and SQLAlchemy (about
1.5 s); if the database file is not where mendeleev keeps it or cannot be read,
``fetch_table`` is used.

The generated table reproduces 82 of the 100 rows of the original file exactly (the
original matches the data of early mendeleev versions).  The other 18 differ in: the
atomic volume (17 elements: the original used the ``atomic_volume`` column of early
mendeleev, a tabulated atomic volume current mendeleev no longer ships); the electron
affinity of He and Ar (mendeleev has -19.7 and -11.5 eV, below the -3.0 limit, which
are clamped into bin 0; the original leaves them empty); and the valence electrons of
Pd (12 in the original, from early mendeleev's ``nvalence()``, which counted the 4s² of
the [Kr] core).  ``tests/test_elements.py`` lists every differing element, segment
and reason.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import json
import math
import os
import re
import sqlite3
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cgcnn.errors import InputError

__all__ = [
    "CGCNN92_MAX_Z",
    "CGCNN92_SEGMENTS",
    "MAX_Z",
    "AtomFeatures",
    "Segment",
    "cgcnn92_properties",
    "cgcnn92_segments",
    "element_symbol",
    "encode_cgcnn92",
    "require_elements",
    "resolve_atom_features",
]

MAX_Z = 118
"""Largest atomic number a table can hold; tables have ``MAX_Z + 1`` rows."""

CGCNN92_MAX_Z = 100
"""The generated ``cgcnn92`` table defines Z = 1 to 100, like the original file."""

_N_ROWS = MAX_Z + 1
_BUILTIN_NAMES = ("cgcnn92", "onehot")


# ---------------------------------------------------------------------------------------
# The CGCNN 92-dimensional encoding
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """One property's block of one-hot columns in the CGCNN encoding.

    A segment is either categorical (``categories`` given: one column per category) or
    binned (``lo``, ``hi``: ``size`` equal bins between them, on ``ln(value)`` when
    ``log`` is true; see the module docstring for the bin rule).

    Attributes:
        name: key of the property in :func:`cgcnn92_properties`.
        description: the property, its unit and where its value comes from.
        size: number of columns.
        categories: the values of a categorical segment, one per column.
        lo: lower limit of a binned segment (of ``ln(value)`` when ``log``).
        hi: upper limit of a binned segment (of ``ln(value)`` when ``log``).
        log: bin the natural logarithm of the value.
    """

    name: str
    description: str
    size: int
    categories: tuple[Any, ...] | None = None
    lo: float | None = None
    hi: float | None = None
    log: bool = False

    def edges(self) -> np.ndarray:
        """The ``size + 1`` bin edges of a binned segment (in ln units when ``log``).

        ``lo + i * d`` with ``d = (lo + step) - lo``, ``step = (hi - lo) / size`` (the
        values of ``numpy.arange(lo, hi, step)``), and ``hi`` as the last edge.
        """
        if self.lo is None or self.hi is None:
            raise TypeError(f"segment {self.name} is categorical and has no bin edges")
        step = (self.hi - self.lo) / self.size
        edges = self.lo + ((self.lo + step) - self.lo) * np.arange(self.size + 1)
        edges[-1] = self.hi
        return edges

    def index(self, value: Any) -> int | None:
        """The column (0-based, within the segment) for ``value``; None if unknown.

        Raises:
            InputError: a category that is not one of the segment's, or a non-positive
                value for a logarithmic segment.
        """
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        if self.categories is not None:
            if value not in self.categories:
                raise InputError(
                    self.name,
                    f"{value!r} is not one of the categories {list(self.categories)}",
                )
            return self.categories.index(value)
        x = float(value)
        if self.log:
            if not x > 0:
                raise InputError(self.name, f"{x!r} has no logarithm (must be positive)")
            x = math.log(x)
        # number of inner edges strictly below x: edge[i] < x <= edge[i+1] -> bin i,
        # clamped to the first and last bin by leaving out the outer edges
        return int(np.searchsorted(self.edges()[1:-1], x, side="left"))


CGCNN92_SEGMENTS: tuple[Segment, ...] = (
    Segment(
        "group",
        "group number from pymatgen Element.group; column 0 = no group (f block: La-Yb, "
        "Ac-No), columns 1-18 = groups 1-18",
        19,
        categories=tuple(range(19)),
    ),
    Segment("period", "period, pymatgen Element.row", 7, categories=tuple(range(1, 8))),
    Segment(
        "electronegativity",
        "Pauling electronegativity, mendeleev en_pauling; linear bins 0.5 to 4.0",
        10,
        lo=0.5,
        hi=4.0,
    ),
    Segment(
        "covalent_radius",
        "single-bond covalent radius in pm, Pyykkö & Atsumi 2009 (mendeleev "
        "covalent_radius_pyykko); linear bins 25 to 250 pm",
        10,
        lo=25.0,
        hi=250.0,
    ),
    Segment(
        "valence_electrons",
        "valence electrons 1-12, from pymatgen Element.block and Element.group",
        12,
        categories=tuple(range(1, 13)),
    ),
    Segment(
        "first_ionization_energy",
        "first ionisation energy in eV, pymatgen Element.ionization_energy; bins on ln(eV) "
        "from 1.3 to 3.3",
        10,
        lo=1.3,
        hi=3.3,
        log=True,
    ),
    Segment(
        "electron_affinity",
        "electron affinity in eV, mendeleev electron_affinity; linear bins -3.0 to 3.7",
        10,
        lo=-3.0,
        hi=3.7,
    ),
    Segment(
        "block",
        "block s, p, d, f, pymatgen Element.block (He: s)",
        4,
        categories=("s", "p", "d", "f"),
    ),
    Segment(
        "atomic_volume",
        "molar volume of the solid element in cm³/mol: pymatgen Element.atomic_mass / "
        "Element.density_of_solid, or Element.molar_volume where pymatgen has no solid "
        "density; bins on ln(cm³/mol) from 1.5 to 4.3",
        10,
        lo=1.5,
        hi=4.3,
        log=True,
    ),
)
"""The nine segments of the CGCNN encoding, in column order (92 columns in all)."""


def cgcnn92_segments() -> dict[str, slice]:
    """The columns of each segment of the 92-d encoding, by segment name."""
    out: dict[str, slice] = {}
    start = 0
    for segment in CGCNN92_SEGMENTS:
        out[segment.name] = slice(start, start + segment.size)
        start += segment.size
    return out


def _float_or_none(value: Any) -> float | None:
    """A finite float, or None for a missing value (None, NaN, an error reading it)."""
    if value is None:
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _element_attr(element: Any, name: str) -> Any:
    """``getattr(element, name)``, None when pymatgen has no value (it may warn or raise)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return getattr(element, name)
        except (AttributeError, KeyError, ValueError, TypeError, IndexError):
            return None


_MENDELEEV_COLUMNS = ("covalent_radius_pyykko", "en_pauling", "electron_affinity")
"""The columns of mendeleev's ``elements`` table the encoding uses."""


def _mendeleev_db_path() -> Path | None:
    """mendeleev's packaged ``elements.db``, found without importing mendeleev; None if
    the package or the file is not there."""
    spec = importlib.util.find_spec("mendeleev")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "elements.db"
        if path.is_file():
            return path
    return None


def _mendeleev_rows_sqlite(path: Path) -> list[tuple[Any, ...]]:
    """(atomic_number, *_MENDELEEV_COLUMNS) rows of the ``elements`` table at ``path``."""
    uri = f"{path.resolve().as_uri()}?mode=ro"
    query = f"SELECT atomic_number, {', '.join(_MENDELEEV_COLUMNS)} FROM elements"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as connection:
        return connection.execute(query).fetchall()


def _mendeleev_rows_fetch_table() -> list[tuple[Any, ...]]:
    """The same rows through mendeleev's API (imports mendeleev, pandas, SQLAlchemy)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from mendeleev.fetch import fetch_table

        frame = fetch_table("elements")
    columns = ["atomic_number", *_MENDELEEV_COLUMNS]
    return list(frame[columns].itertuples(index=False, name=None))


@functools.lru_cache(maxsize=1)
def _mendeleev_data() -> dict[int, dict[str, float | None]]:
    """mendeleev's Pyykkö radius (pm), Pauling electronegativity and electron affinity
    (eV), by atomic number; None where mendeleev has no value.

    One read of mendeleev's ``elements`` table: straight from its SQLite file when it is
    where mendeleev keeps it, else with ``mendeleev.fetch.fetch_table``.
    """
    path = _mendeleev_db_path()
    rows = None
    if path is not None:
        with contextlib.suppress(sqlite3.Error):
            rows = _mendeleev_rows_sqlite(path)
    if rows is None:
        rows = _mendeleev_rows_fetch_table()
    return {
        int(row[0]): {
            name: _float_or_none(value)
            for name, value in zip(_MENDELEEV_COLUMNS, row[1:], strict=True)
        }
        for row in rows
    }


def _solid_molar_volume(element: Any) -> float | None:
    """Molar volume of the solid element in cm³/mol from pymatgen: atomic mass (g/mol)
    over the density of the solid (kg/m³ = 1e-3 g/cm³); pymatgen's ``molar_volume``
    for the elements it has no solid density for (the gases, Br, Hg, Am)."""
    mass = _float_or_none(_element_attr(element, "atomic_mass"))
    density = _float_or_none(_element_attr(element, "density_of_solid"))
    if mass is not None and density is not None and density > 0:
        return 1000.0 * mass / density
    return _float_or_none(_element_attr(element, "molar_volume"))


def cgcnn92_properties(z: int) -> dict[str, Any]:
    """The property values the 92-d encoding of element ``z`` is made from.

    Keys are the segment names of :data:`CGCNN92_SEGMENTS`; a value is None where the
    data source has none.  Units: covalent radius pm, energies eV, volume cm³/mol.
    """
    from pymatgen.core.periodic_table import Element

    element = Element.from_Z(int(z))
    mendeleev = _mendeleev_data().get(element.Z, {})
    # pymatgen files He under p with the other noble gases; by its 1s2 shell (and in
    # the CGCNN table) it is an s-block element
    block = "s" if element.Z == 2 else _element_attr(element, "block")
    group = _element_attr(element, "group")
    if block == "f":
        group = 0  # lanthanides and actinides (not Lu, Lr) have no group of their own
    if block == "s":
        valence: int | None = 1 if group == 1 else 2
    elif block == "p":
        valence = group - 10
    elif block == "d":
        valence = group
    elif block == "f":
        valence = 2
    else:  # pragma: no cover - every element has a block
        valence = None
    return {
        "group": group,
        "period": _element_attr(element, "row"),
        "electronegativity": mendeleev.get("en_pauling"),
        "covalent_radius": mendeleev.get("covalent_radius_pyykko"),
        "valence_electrons": valence,
        "first_ionization_energy": _float_or_none(_element_attr(element, "ionization_energy")),
        "electron_affinity": mendeleev.get("electron_affinity"),
        "block": block,
        "atomic_volume": _solid_molar_volume(element),
    }


def encode_cgcnn92(properties: Mapping[str, Any]) -> np.ndarray:
    """One-hot encode property values (as from :func:`cgcnn92_properties`) into 92 floats.

    A missing key or a None value leaves its segment all zero.
    """
    out = np.zeros(sum(s.size for s in CGCNN92_SEGMENTS), dtype=np.float32)
    start = 0
    for segment in CGCNN92_SEGMENTS:
        column = segment.index(properties.get(segment.name))
        if column is not None:
            out[start + column] = 1.0
        start += segment.size
    return out


@functools.lru_cache(maxsize=1)
def _cgcnn92_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The generated (119, 92) table and its (119,) known mask, read-only, made once."""
    table = np.zeros((_N_ROWS, sum(s.size for s in CGCNN92_SEGMENTS)), dtype=np.float32)
    known = np.zeros(_N_ROWS, dtype=bool)
    for z in range(1, CGCNN92_MAX_Z + 1):
        table[z] = encode_cgcnn92(cgcnn92_properties(z))
        known[z] = True
    table.setflags(write=False)
    known.setflags(write=False)
    return table, known


# ---------------------------------------------------------------------------------------
# Element symbols (only needed for error messages)
# ---------------------------------------------------------------------------------------


def element_symbol(z: int) -> str:
    """The element symbol of atomic number ``z`` (1..118)."""
    from pymatgen.core.periodic_table import Element

    return Element.from_Z(int(z)).symbol


def require_elements(present: np.ndarray, known: np.ndarray, table: str) -> None:
    """Raise :class:`InputError` naming ``table`` if an element of ``present`` is not ``known``.

    Args:
        present: atomic numbers found in the data.
        known: (119,) bool mask of the elements the table defines.
        table: the table's name or file, for the message.
    """
    missing = sorted({int(z) for z in np.asarray(present).ravel() if not known[int(z)]})
    if missing:
        names = ", ".join(f"{element_symbol(z)} (Z={z})" for z in missing)
        raise InputError(table, f"has no features for element(s) {names} in the data")


# ---------------------------------------------------------------------------------------
# JSON reading helpers
# ---------------------------------------------------------------------------------------

_KEY_RE = re.compile(r"[0-9]+")


class _DuplicateKeyError(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _object_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` for :func:`json.loads` that refuses a repeated key."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKeyError(key)
        out[key] = value
    return out


def _json_kind(value: Any) -> str:
    """The JSON name of a parsed value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _short(value: Any, limit: int = 40) -> str:
    """A one-line repr of ``value`` cut to about ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _json_number(x: float) -> int | float:
    """A float32 value as the JSON number that reads back to exactly the same float32."""
    v = float(x)
    if v.is_integer() and abs(v) < 2**53 and not (v == 0.0 and math.copysign(1.0, v) < 0):
        return int(v)
    return v  # repr of the float64 widening of a float32 narrows back exactly


# ---------------------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------------------


class AtomFeatures:
    """An atom feature table: one float32 vector per element.

    Attributes:
        table: (119, dim) float32; row Z is the vector of the element with atomic number
            Z; row 0 and rows of elements not in the table are zero.
        known: (119,) bool, which rows are defined.
        source: where the table came from: a file path, or ``"cgcnn92"`` / ``"onehot"``
            for the built-in tables.
    """

    def __init__(self, table: np.ndarray, known: np.ndarray, source: str) -> None:
        """Make a table from arrays (copied).

        Raises:
            InputError: wrong shapes, non-finite values, row 0 marked known or no element
                known.
        """
        table = np.array(table, dtype=np.float32, copy=True)
        known = np.array(known, dtype=bool, copy=True)
        if table.ndim != 2 or table.shape[0] != _N_ROWS or table.shape[1] < 1:
            raise InputError(
                source, f"an atom feature table must have shape ({_N_ROWS}, dim), got {table.shape}"
            )
        if known.shape != (_N_ROWS,):
            raise InputError(
                source, f"the known mask must have shape ({_N_ROWS},), got {known.shape}"
            )
        if known[0]:
            raise InputError(source, "row 0 is not an element and cannot be known")
        if not known.any():
            raise InputError(source, "the atom feature table is empty")
        if not np.isfinite(table).all():
            raise InputError(source, "the atom feature table holds non-finite values")
        table[~known] = 0.0
        self.table = table
        self.known = known
        self.source = str(source)

    @property
    def dim(self) -> int:
        """Length of each feature vector."""
        return int(self.table.shape[1])

    def __repr__(self) -> str:
        return (
            f"AtomFeatures(source={self.source!r}, dim={self.dim}, "
            f"elements={int(self.known.sum())})"
        )

    def __call__(self, atomic_numbers: np.ndarray, source: str | None = None) -> np.ndarray:
        """Feature vectors of atoms: (N,) atomic numbers -> (N, dim) float32.

        Args:
            atomic_numbers: (N,) integer atomic numbers.
            source: what the atoms belong to (a file, ``file:id``), for error messages.

        Raises:
            InputError: an atomic number that is not 1..118, or an element the table does
                not define (the message names the element and the table's source).
        """
        z = np.asarray(atomic_numbers)
        if z.ndim != 1:
            raise InputError(source, f"atomic numbers must be a 1-D array, got shape {z.shape}")
        if z.size == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        if not np.issubdtype(z.dtype, np.integer):
            raise InputError(source, f"atomic numbers must be integers, got {z.dtype}")
        out_of_range = (z < 1) | (z > MAX_Z)
        if out_of_range.any():
            bad = int(z[out_of_range][0])
            raise InputError(source, f"atomic number {bad} is not an element (1 to {MAX_Z})")
        missing = ~self.known[z]
        if missing.any():
            bad = int(z[missing][0])
            raise InputError(
                source,
                f"element {element_symbol(bad)} (Z={bad}) is not in the atom feature table "
                f"{self.source}",
            )
        return self.table[z]

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> AtomFeatures:
        """Read a table in the original CGCNN ``atom_init.json`` format.

        The file holds a JSON object: keys are atomic numbers 1..118 written as strings,
        values are lists of finite numbers, all of the same length.

        Raises:
            InputError: naming the file, for a missing or unreadable file, text that is
                not JSON, JSON that is not such an object, a bad key, a bad value, rows of
                unequal length, a repeated element or an empty table.
        """
        source = os.fspath(path)
        file = Path(source)
        try:
            text = file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InputError(source, "file does not exist") from None
        except IsADirectoryError:
            raise InputError(source, "is a directory, not an atom feature JSON file") from None
        except UnicodeDecodeError:
            raise InputError(source, "not a UTF-8 text file (expected JSON)") from None
        except OSError as exc:
            raise InputError(source, f"cannot read the file: {exc.strerror or exc}") from None
        try:
            data = json.loads(text, object_pairs_hook=_object_pairs)
        except json.JSONDecodeError as exc:
            raise InputError(
                source, f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            ) from None
        except _DuplicateKeyError as exc:
            raise InputError(source, f"key {exc.key!r} appears more than once") from None
        except RecursionError:
            raise InputError(source, "not valid JSON: nested too deeply") from None
        if not isinstance(data, dict):
            raise InputError(
                source,
                "expected a JSON object mapping atomic numbers to feature lists, "
                f"got a JSON {_json_kind(data)}",
            )
        if not data:
            raise InputError(source, "the atom feature table is empty")

        rows: dict[int, np.ndarray] = {}
        first_key: str | None = None
        for key, value in data.items():
            if not _KEY_RE.fullmatch(key) or not 1 <= int(key) <= MAX_Z:
                raise InputError(
                    source,
                    f"key {_short(key)} is not an atomic number (an integer from 1 to {MAX_Z})",
                )
            z = int(key)
            if z in rows:
                raise InputError(source, f"atomic number {z} appears more than once")
            rows[z] = cls._parse_row(source, key, value)
            if first_key is None:
                first_key = key
            elif rows[z].shape[0] != rows[int(first_key)].shape[0]:
                raise InputError(
                    source,
                    f"rows of unequal length: {key!r} has {rows[z].shape[0]} numbers, "
                    f"{first_key!r} has {rows[int(first_key)].shape[0]}",
                )
        dim = next(iter(rows.values())).shape[0]
        table = np.zeros((_N_ROWS, dim), dtype=np.float32)
        known = np.zeros(_N_ROWS, dtype=bool)
        for z, row in rows.items():
            table[z] = row
            known[z] = True
        return cls(table, known, source)

    @staticmethod
    def _parse_row(source: str, key: str, value: Any) -> np.ndarray:
        """One feature list of a JSON table as float32, or InputError naming the file."""
        if not isinstance(value, list):
            raise InputError(
                source,
                f"the value of {key!r} must be a list of numbers, got a JSON {_json_kind(value)}",
            )
        if not value:
            raise InputError(source, f"the feature list of {key!r} is empty")
        numbers: list[float] = []
        for i, x in enumerate(value):
            if isinstance(x, bool) or not isinstance(x, (int, float)):
                raise InputError(
                    source,
                    f"the value of {key!r} must be a list of numbers; item {i} is a JSON "
                    f"{_json_kind(x)} ({_short(x)})",
                )
            try:
                numbers.append(float(x))
            except OverflowError:  # an integer beyond the float range
                numbers.append(math.inf)
        with np.errstate(over="ignore"):
            row = np.array(numbers, dtype=np.float64).astype(np.float32)
        bad = np.flatnonzero(~np.isfinite(row))
        if bad.size:
            i = int(bad[0])
            raise InputError(
                source,
                f"the value of {key!r} holds a number that is not finite as a 32-bit float "
                f"(item {i}: {_short(value[i])})",
            )
        return row

    def to_json(self, path: str | os.PathLike[str]) -> None:
        """Write the table in the ``atom_init.json`` format (reads back exactly).

        Integral values are written as JSON integers, others as the shortest decimal that
        reads back to the same float32.

        Raises:
            InputError: the file cannot be written.
        """
        data = {
            str(z): [_json_number(x) for x in self.table[z]] for z in np.flatnonzero(self.known)
        }
        target = os.fspath(path)
        try:
            Path(target).write_text(json.dumps(data) + "\n", encoding="utf-8")
        except OSError as exc:
            raise InputError(target, f"cannot write the file: {exc.strerror or exc}") from None

    @classmethod
    def cgcnn92(cls) -> AtomFeatures:
        """The CGCNN 92-dimensional encoding, generated from pymatgen and mendeleev data.

        Defines Z = 1 to 100.  The generation runs once per process (cached); each call
        returns a new object with its own arrays.
        """
        table, known = _cgcnn92_arrays()
        return cls(table, known, "cgcnn92")

    @classmethod
    def one_hot(cls, max_z: int = 100) -> AtomFeatures:
        """Plain one-hot by element: ``max_z`` columns, element Z has a 1 in column Z - 1.

        Raises:
            InputError: ``max_z`` is not an integer from 1 to 118.
        """
        if isinstance(max_z, bool) or not isinstance(max_z, (int, np.integer)):
            raise InputError("max_z", f"must be an integer from 1 to {MAX_Z}, got {max_z!r}")
        if not 1 <= max_z <= MAX_Z:
            raise InputError("max_z", f"must be an integer from 1 to {MAX_Z}, got {max_z}")
        max_z = int(max_z)
        table = np.zeros((_N_ROWS, max_z), dtype=np.float32)
        table[np.arange(1, max_z + 1), np.arange(max_z)] = 1.0
        known = np.zeros(_N_ROWS, dtype=bool)
        known[1 : max_z + 1] = True
        return cls(table, known, "onehot" if max_z == 100 else f"onehot(max_z={max_z})")

    @classmethod
    def concatenate(cls, tables: Sequence[AtomFeatures]) -> AtomFeatures:
        """Tables side by side: each element's vectors joined end to end.

        The result defines the elements every table defines; its source is the sources
        joined with ``+`` (``cgcnn92+onehot``).

        Raises:
            InputError: no table, or no element that all the tables define.
        """
        if not tables:
            raise InputError("atom_features", "nothing to concatenate")
        source = "+".join(t.source for t in tables)
        known = np.logical_and.reduce([t.known for t in tables])
        if not known.any():
            raise InputError(source, "the tables have no element in common")
        return cls(np.concatenate([t.table for t in tables], axis=1), known, source)

    def fingerprint(self) -> str:
        """SHA-256 (hex) of the table's contents: shape, known rows and float32 values.

        Two tables with the same vectors have the same fingerprint whatever their source.
        """
        digest = hashlib.sha256()
        digest.update(f"cgcnn-atom-features {self.table.shape[0]}x{self.dim}\n".encode())
        digest.update(np.ascontiguousarray(self.known, dtype=np.uint8).tobytes())
        digest.update(np.ascontiguousarray(self.table, dtype="<f4").tobytes())
        return digest.hexdigest()


def resolve_atom_features(spec: str | os.PathLike[str] | AtomFeatures | None) -> AtomFeatures:
    """The atom feature table a setting names.

    Args:
        spec: None or ``"cgcnn92"`` for the generated CGCNN encoding, ``"onehot"`` for
            one-hot by element (Z = 1 to 100), the path of an ``atom_init.json``-style
            file, several of these joined by ``+`` (``"cgcnn92+onehot"``: the tables side
            by side, :meth:`AtomFeatures.concatenate`), or a table (returned as is).  A
            built-in name wins over a file of the same name; an existing file whose name
            holds ``+`` is read as a file.

    Raises:
        InputError: not a built-in name and no such file, or a file that cannot be used.
    """
    if spec is None:
        return AtomFeatures.cgcnn92()
    if isinstance(spec, AtomFeatures):
        return spec
    if isinstance(spec, str) and spec == "cgcnn92":
        return AtomFeatures.cgcnn92()
    if isinstance(spec, str) and spec == "onehot":
        return AtomFeatures.one_hot()
    if isinstance(spec, (str, os.PathLike)):
        name = os.fspath(spec)
        if isinstance(name, str) and name and Path(name).exists():
            return AtomFeatures.from_json(name)
        if isinstance(name, str) and "+" in name:
            parts = name.split("+")
            if not all(parts):
                raise InputError(name, "an empty name in a '+'-joined list of atom feature tables")
            return AtomFeatures.concatenate([resolve_atom_features(part) for part in parts])
        raise InputError(
            str(name) or "atom_features",
            f"not a built-in atom feature table ({', '.join(_BUILTIN_NAMES)}) and no such "
            "file exists",
        )
    raise InputError(
        "atom_features",
        f"expected {' or '.join(repr(n) for n in _BUILTIN_NAMES)}, a JSON file path or an "
        f"AtomFeatures, got {type(spec).__name__}",
    )
