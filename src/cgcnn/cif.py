"""Read one crystal from CIF text: a fast gemmi path that gives exactly pymatgen's result.

The reference is pymatgen: :func:`parse_cif` returns what
``Crystal.from_structure(Structure.from_str(text, fmt="cif"))`` gives (the first data block,
``primitive=False``): the same sites in the same order, the same lattice matrix and the same
fractional coordinates.

**Fast path.**  Parsing a CIF with pymatgen costs 1.5 to 5 ms; gemmi reads a small CIF in about
10 microseconds, and the whole fast path below takes about 0.1 ms.  gemmi is used only where
pymatgen's result can be reproduced exactly (:func:`fast_path_applies` tells whether it is):

* the text is plain ASCII with a single ``data_`` block and none of the constructs on which
  pymatgen's home-made tokenizer and a conforming CIF parser could disagree (a ``#`` after
  data on a line, CIF2 triple quotes, save frames, reserved words in unusual case, ...);
* the symmetry is P1: the first symmetry-operation list pymatgen looks at holds only
  ``x, y, z`` (or, with no list, the space group name or number says P1);
* the sites are one ``_atom_site_`` loop with an exact element symbol per site, plain numbers
  as coordinates, occupancy 1 (or no occupancy column), no oxidation states, no magnetic
  moments, and no two sites within 2e-4 (fractional, periodic) of each other, so that
  pymatgen merges nothing.

On that path pymatgen's steps are replayed with the same floating-point operations:
coordinates within 1e-4 (relative) of 1/3 or 2/3 are snapped to them, coordinates are
wrapped with ``x - floor(x)`` (so they land in [0, 1]: pymatgen does wrap, and a tiny negative
value becomes exactly 1.0), the lattice is built with ``Lattice.from_parameters``'s formula,
and the sites are ordered as pymatgen orders them: a stable sort of the sites' compositions
(grouping sites by element, the element last in pymatgen's ``Element`` order first, file
order within an element), then ``Structure.get_sorted_structure``'s stable sort by
electronegativity, then symbol.  Both sorts are replayed with Python's ``sorted`` and
comparisons that answer exactly as pymatgen's do, including for elements without an
electronegativity (NaN, which makes pymatgen's site comparison inconsistent: the replay then
still gives the same order because ``sorted`` makes the same comparisons).  The
electronegativities come from the installed pymatgen.  Checked against pymatgen 2026.10 on all
6,847 shared structures (identical to the last bit) and by ``tests/test_cif.py``, which
compares with the installed pymatgen, including randomly edited files.

**Fallback.**  Everything else goes through ``pymatgen.io.cif.CifParser``.  Its warnings are
silenced; failures, unknown elements and disordered sites become
:class:`~cgcnn.errors.InputError` with a one-line reason.

**Consistency.**  Beyond what pymatgen checks, a file must agree with itself: the sites
(after expanding the symmetry operations) must be proportional to ``_chemical_formula_sum``
when the file gives one (any number of formula units per cell; amounts within 1 %), so a
file that lost atom lines is refused instead of read as a smaller crystal; and the cell
lengths must be positive, the angles between 0 and 180 degrees and the cell's volume
positive.
"""

from __future__ import annotations

import bz2
import gzip
import itertools
import math
import os
import re
import warnings
from collections import Counter
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import gemmi
import numpy as np

from cgcnn.crystal import Crystal
from cgcnn.errors import InputError

if TYPE_CHECKING:
    from pymatgen.core import Structure

__all__ = ["fast_path_applies", "parse_cif", "parse_cif_file"]

_ORDERED_HINT = (
    "CGCNN needs ordered structures (one element per site, full occupancy); order the "
    "structure first, e.g. with pymatgen's OrderDisorderedStructureTransformation"
)

# --- pymatgen's CifParser constants (pymatgen/io/cif.py), replayed on the fast path -------

_FRAC_TOLERANCE = 1e-4  # CifParser's frac_tolerance (snapping to 1/3 and 2/3)
# CifParser merges sites within site_tolerance = 1e-4; the fast path leaves any pair of sites
# closer than twice that to pymatgen.
_FAST_MIN_SEPARATION = 2e-4
# CifParser refuses lattices thinner than 0.01 Å; the fast path leaves those below 0.02 Å.
_FAST_MIN_THICKNESS = 0.02

_SYMOP_TAGS = (
    "_symmetry_equiv_pos_as_xyz",
    "_symmetry_equiv_pos_as_xyz_",
    "_space_group_symop_operation_xyz",
    "_space_group_symop_operation_xyz_",
)
_SPACE_GROUP_NAME_TAGS = (
    "_symmetry_space_group_name_H-M",
    "_symmetry_space_group_name_H_M",
    "_symmetry_space_group_name_H-M_",
    "_symmetry_space_group_name_H_M_",
    "_space_group_name_Hall",
    "_space_group_name_Hall_",
    "_space_group_name_H-M_alt",
    "_space_group_name_H-M_alt_",
    "_symmetry_space_group_name_hall",
    "_symmetry_space_group_name_hall_",
    "_symmetry_space_group_name_h-m",
    "_symmetry_space_group_name_h-m_",
)
_SPACE_GROUP_NUMBER_TAGS = (
    "_space_group_IT_number",
    "_space_group_IT_number_",
    "_symmetry_Int_Tables_number",
    "_symmetry_Int_Tables_number_",
)
_CELL_TAGS = (
    "_cell_length_a",
    "_cell_length_b",
    "_cell_length_c",
    "_cell_angle_alpha",
    "_cell_angle_beta",
    "_cell_angle_gamma",
)
_ATOM_TAGS = (
    "_atom_site_label",
    "_atom_site_type_symbol",
    "_atom_site_fract_x",
    "_atom_site_fract_y",
    "_atom_site_fract_z",
)
# Text that the fast path leaves to pymatgen: parts of tags that make pymatgen read a magnetic
# CIF, oxidation states (Species, not Element: other sort order), implicit hydrogens (pymatgen
# fails on a non-numeric count), a block pymatgen skips ('powder_pattern'), its end-of-file
# tag, and CIF2 triple quotes (pymatgen splits them into several tokens).
_LEFT_TO_PYMATGEN = (
    "_space_group_magn",
    "_atom_site_moment",
    "_space_group_symop_magn",
    "_atom_type_",
    "_atom_site_attached_hydrogens",
    "powder_pattern",
    "_eof",
    "'''",
    '"""',
)

# --- consistency checks ---------------------------------------------------------------

FORMULA_TAG = "_chemical_formula_sum"
# Relative tolerance between the sites' composition and _chemical_formula_sum's proportions.
_FORMULA_TOLERANCE = 1e-2
# One term of a plain formula sum: an element symbol and an optional amount ('Na4', 'O', 'C0.5').
_FORMULA_TERM = re.compile(r"([A-Z][a-z]?)(\d+(?:\.\d*)?|\.\d+)?")

# --- text checks of the fast path --------------------------------------------------------

# Plain decimal numbers, one per line (no uncertainty in brackets, no quotes, '?', '.', nan).
_NUMBERS = re.compile(r"(?:[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\n)+")
# The printable ASCII characters; with tab, LF and CRLF, all the fast path accepts.
_PRINTABLE_ASCII = bytes(range(0x20, 0x7F))
_LONE_CR = re.compile(r"\r(?!\n)")
_BLOCK_START = re.compile(r"^\s*data_", re.MULTILINE)  # how pymatgen finds blocks
_RESERVED_WORDS = ("data_", "loop_", "save_", "global_", "stop_")
_BLANKS = " \t\r\n"

# --- bytes to text --------------------------------------------------------------------

_BOM = "\ufeff"
_TEXT_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")


def _to_text(data: str | bytes, source: str) -> str:
    """Decode ``data`` into text (UTF-8, or 8-bit text), drop a BOM, refuse binary data."""
    if isinstance(data, str):
        text = data
    else:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"CIF data must be str or bytes, not {type(data).__name__}")
        raw = bytes(data)
        raw = _decompress(raw, source)
        if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
            try:
                text = raw.decode("utf-16")
            except UnicodeDecodeError:
                raise InputError(
                    source, "the file starts with a UTF-16 mark but is not UTF-16"
                ) from None
        else:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                # Not UTF-8: accepted if it reads as 8-bit text (Latin-1 decodes any byte; binary
                # data almost always holds control characters), and then decoded as pymatgen's
                # Structure.from_file decodes it (bad bytes become U+FFFD, which pymatgen drops
                # with every non-ASCII character; the fast path leaves non-ASCII to pymatgen).
                if _TEXT_CONTROL.search(raw.decode("latin-1")) is not None:
                    raise InputError(
                        source,
                        "not a CIF text file: byte "
                        f"0x{raw[exc.start]:02x} at offset {exc.start} is not UTF-8, and the "
                        "bytes are not Latin-1 text either (binary data?)",
                    ) from None
                text = raw.decode("utf-8", errors="replace")
    if text.startswith(_BOM):
        text = text[1:]
    if not text.strip():
        raise InputError(
            source, "the file is empty" if not text else "the file is empty (whitespace only)"
        )
    if text.isascii():  # the common case: a quicker test than the regular expression
        others = text.encode("ascii").translate(None, _PRINTABLE_ASCII)
        if not others.translate(None, b"\t\n\r\x0b\x0c"):
            return text
    bad = _TEXT_CONTROL.search(text)
    if bad is not None:
        raise InputError(
            source,
            f"not a CIF text file: control character {ord(bad.group()):#04x} at offset "
            f"{bad.start()} (binary data?)",
        )
    return text


def _decompress(raw: bytes, source: str) -> bytes:
    """Uncompress gzip or bzip2 data (pymatgen's ``Structure.from_file`` reads both)."""
    try:
        if raw.startswith(b"\x1f\x8b"):
            return gzip.decompress(raw)
        if raw[:3] == b"BZh" and raw[3:4].isdigit() and raw[4:10] in (b"1AY&SY", b"\x17rE8P\x90"):
            return bz2.decompress(raw)
    except (OSError, EOFError, ValueError) as exc:
        raise InputError(source, f"corrupt compressed file ({exc})") from None
    return raw


# --- the fast path --------------------------------------------------------------------


@cache
def _element_data() -> dict[str, tuple[int, float]]:
    """Symbol -> (Z, Pauling electronegativity or NaN), from the installed pymatgen."""
    from pymatgen.core.periodic_table import Element

    table = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "No Pauling electronegativity for He"
        for element in Element:
            table[element.symbol] = (int(element.Z), float(element.X))
    return table


class _CompositionOrder:
    """Sort key: pymatgen's order of single-element, unit-occupancy ``Composition`` objects.

    ``Composition.__lt__`` is ``not __ge__``; for two such compositions ``A >= B`` holds when
    A's element comes first in ``Element`` order (electronegativity with NaN as infinity, then
    symbol), so A sorts before B when A's element comes *later* in ``Element`` order.
    """

    __slots__ = ("key",)

    def __init__(self, electronegativity: float, symbol: str) -> None:
        x = math.inf if electronegativity != electronegativity else electronegativity
        self.key = (x, symbol)

    def __lt__(self, other: _CompositionOrder) -> bool:
        return self.key > other.key


class _SiteOrder:
    """Sort key: ``pymatgen.core.sites.Site.__lt__`` for an ordered, fully occupied site.

    The average electronegativity of such a site's composition is the element's X (NaN when
    pymatgen has none), and its species string is the element symbol.
    """

    __slots__ = ("symbol", "x")

    def __init__(self, electronegativity: float, symbol: str) -> None:
        self.x = electronegativity
        self.symbol = symbol

    def __lt__(self, other: _SiteOrder) -> bool:
        if self.x < other.x:
            return True
        if self.x > other.x:
            return False
        return self.symbol < other.symbol


def _text_is_plain(text: str) -> bool:
    """True if pymatgen's tokenizer and gemmi cannot read this text differently.

    pymatgen's ``CifBlock`` drops non-ASCII characters, strips ``#`` comments even inside
    quoted strings, knows only lowercase ``data_`` and ``loop_``, splits blocks at any line
    starting with ``data_`` and stops at ``_eof``.  This text has none of that: it is ASCII
    without control characters, every ``#`` starts a comment line, and the only reserved
    words are one lowercase ``data_`` at the start of a line and plain ``loop_``.
    """
    if not text.isascii():
        return False
    if text.encode("ascii").translate(None, _PRINTABLE_ASCII).translate(None, b"\t\n\r"):
        return False  # control characters
    if "\r" in text and _LONE_CR.search(text) is not None:
        return False
    if any(part in text for part in _LEFT_TO_PYMATGEN):
        return False
    pos = text.find("#")
    while pos != -1:
        line_start = text.rfind("\n", 0, pos) + 1
        if text[line_start:pos].strip(" \t"):
            return False  # a '#' after data on the line, or inside a quoted string
        line_end = text.find("\n", pos)
        pos = -1 if line_end == -1 else text.find("#", line_end)
    lower = text.lower()
    n_blocks = 0
    for word in _RESERVED_WORDS:
        pos = lower.find(word)
        while pos != -1:
            if pos == 0 or lower[pos - 1] in _BLANKS:  # a token starts with the word
                if word not in ("data_", "loop_") or not text.startswith(word, pos):
                    return False
                if word == "loop_":
                    if pos + 5 < len(text) and text[pos + 5] not in _BLANKS:
                        return False
                else:
                    n_blocks += 1
                    if text[text.rfind("\n", 0, pos) + 1 : pos].strip(" \t"):
                        return False  # 'data_' not at the start of a line
            pos = lower.find(word, pos + 1)
    return n_blocks == 1


def _numbers(values: list[str]) -> list[float] | None:
    """The values as floats if all are plain unquoted numbers, else None."""
    if not values or _NUMBERS.fullmatch("\n".join(values) + "\n") is None:
        return None
    return list(map(float, values))


class _Unsure(Exception):
    """Raised inside the fast path when pymatgen might read the text differently."""


def _find(block: gemmi.cif.Block, tag: str) -> str | list[str] | None:
    """The raw value of ``tag`` (a list for a loop column), None if absent.

    gemmi looks tags up ignoring case, pymatgen does not: a tag spelled differently raises
    :class:`_Unsure`.
    """
    pair = block.find_pair(tag)
    if pair is not None:
        if pair[0] != tag:
            raise _Unsure
        return pair[1]
    column = block.find_loop(tag)
    loop = column.get_loop()
    if loop is None:
        return None
    if tag not in loop.tags:
        raise _Unsure
    return list(column)


def _pymatgen_value(raw: str) -> str:
    """The string pymatgen's tokenizer makes of a one-line value."""
    if raw[:1] in ("'", '"'):
        return raw[1:-1]
    if raw[:1] == ";":
        raise _Unsure  # a text field: pymatgen joins its lines with spaces
    return raw


def _is_p1(block: gemmi.cif.Block) -> bool:
    """True if pymatgen's ``CifParser.get_symops`` surely gives only the identity."""
    for tag in _SYMOP_TAGS:
        value = _find(block, tag)
        if value is None or value in ("''", '""'):
            continue  # pymatgen skips absent and empty values
        raws = value if isinstance(value, list) else [value]
        return len(raws) == 1 and _pymatgen_value(raws[0]).replace(" ", "") == "x,y,z"
    # No operations: pymatgen looks the space group up by name, then by number, else P1.
    for tag in _SPACE_GROUP_NAME_TAGS:
        value = _find(block, tag)
        if isinstance(value, list):
            return False
        if value is not None and (name := _pymatgen_value(value)):
            return re.sub(r"[\s_]", "", name) == "P1"
    for tag in _SPACE_GROUP_NUMBER_TAGS:
        value = _find(block, tag)
        if isinstance(value, list):
            return False
        if value is not None and (number := _pymatgen_value(value)):
            parsed = _numbers([number])
            return parsed is not None and parsed[0] == 1.0
    return True


def _lattice_from_parameters(
    a: float, b: float, c: float, alpha: float, beta: float, gamma: float
) -> np.ndarray:
    """``pymatgen.core.Lattice.from_parameters`` (vesta=False) with the same float operations.

    The angle functions are the same numpy calls on the same shapes; the arithmetic between
    them is done on Python floats, which round exactly as numpy's float64 scalars do.
    """
    angles_r = np.radians([alpha, beta, gamma])
    cos_alpha, cos_beta, cos_gamma = np.cos(angles_r).tolist()
    sin_alpha, sin_beta, _sin_gamma = np.sin(angles_r).tolist()
    val = (cos_alpha * cos_beta - cos_gamma) / (sin_alpha * sin_beta)
    val = -1.0 if val < -1 else 1.0 if val > 1 else val  # np.clip(val, -1, 1), NaN kept
    gamma_star = np.arccos(val)
    cos_gamma_star = float(np.cos(gamma_star))
    sin_gamma_star = float(np.sin(gamma_star))
    return np.array(
        [
            [a * sin_beta, 0.0, a * cos_beta],
            [-b * sin_alpha * cos_gamma_star, b * sin_alpha * sin_gamma_star, b * cos_alpha],
            [0.0, 0.0, float(c)],
        ],
        dtype=np.float64,
    )


def _min_thickness(lattice: np.ndarray) -> float:
    """The smallest distance between lattice planes (100), (010), (001), Å."""
    (ax, ay, az), (bx, by, bz), (cx, cy, cz) = lattice.tolist()
    crosses = (
        (by * cz - bz * cy, bz * cx - bx * cz, bx * cy - by * cx),  # b x c
        (cy * az - cz * ay, cz * ax - cx * az, cx * ay - cy * ax),  # c x a
        (ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx),  # a x b
    )
    volume = abs(ax * crosses[0][0] + ay * crosses[0][1] + az * crosses[0][2])
    return min(volume / math.sqrt(x * x + y * y + z * z) for x, y, z in crosses)


def _has_close_sites(coords: np.ndarray, tol: float) -> bool:
    """True if two sites may be closer than ``tol`` in every fractional coordinate, modulo
    lattice translations (pymatgen's ``find_in_coord_list_pbc`` test, with its 1e-4).

    Exact for up to 64 sites; above, pairs up to ``2 * tol`` apart may also be reported.
    """
    n = len(coords)
    if n <= 64:
        axes = np.ascontiguousarray(coords.T)
        diff = axes[:, :, None] - axes[:, None, :]
        diff -= np.rint(diff)
        np.abs(diff, out=diff)
        largest = np.maximum(np.maximum(diff[0], diff[1]), diff[2])
        return np.count_nonzero(largest < tol) > n  # every site is close to itself
    # A periodic grid of cells of size >= 2 tol, shifted by half a cell along each axis in the
    # 8 ways: two sites closer than tol along every axis share a cell in one of the 8 grids.
    cells = int(1 / (2 * tol))
    wrapped = (coords - np.floor(coords)) * cells
    for shift in itertools.product((0.0, 0.5), repeat=3):
        index = np.floor(wrapped + np.array(shift)).astype(np.int64) % cells
        keys = (index[:, 0] * cells + index[:, 1]) * cells + index[:, 2]
        keys.sort()
        if np.any(keys[1:] == keys[:-1]):
            return True
    return False


def _parse_fast(text: str) -> tuple[Crystal, str | None] | None:
    """The crystal and its ``_chemical_formula_sum`` (None if absent), if this text is on
    the fast path (see the module docstring), else None.

    A crystal returned here passes :meth:`Crystal.validate`: it has atoms, finite values,
    known elements and every lattice thickness above 0.02 Å (so positive lengths and
    angles between 0 and 180 degrees).
    """
    if not _text_is_plain(text):
        return None
    try:
        document = gemmi.cif.read_string(text)
    except Exception:  # gemmi raises ValueError / RuntimeError for text it cannot read
        return None
    if len(document) != 1:
        return None
    block = document[0]
    try:
        crystal = _read_p1_block(block)
    except _Unsure:
        return None
    if crystal is None:
        return None
    formula = block.find_value(FORMULA_TAG)
    return crystal, None if formula is None else gemmi.cif.as_string(formula)


def _read_p1_block(block: gemmi.cif.Block) -> Crystal | None:
    """The crystal of a block of plain text (see :func:`_text_is_plain`), None if unsure."""
    cell = [_find(block, tag) for tag in _CELL_TAGS]
    if not all(isinstance(value, str) for value in cell):
        return None
    cell = _numbers(cell)
    if cell is None:
        return None
    a, b, c, alpha, beta, gamma = cell
    if not (min(a, b, c) > 0 and all(0 < angle < 180 for angle in (alpha, beta, gamma))):
        return None
    if not _is_p1(block):
        return None

    # Sites: one loop with label, symbol, x, y, z and, if any, the occupancy.
    loop = block.find_loop("_atom_site_label").get_loop()
    if loop is None:
        return None
    tags = loop.tags
    if not all(tag in tags for tag in _ATOM_TAGS):
        return None
    width = loop.width()
    values = loop.values
    columns = {tag: values[k::width] for k, tag in enumerate(tags)}
    occupancy = _find(block, "_atom_site_occupancy")
    if occupancy is not None:
        if "_atom_site_occupancy" not in tags:
            return None
        occupancies = _numbers(columns["_atom_site_occupancy"])
        if occupancies is None or any(value != 1.0 for value in occupancies):
            return None
    elements = _element_data()
    symbols = columns["_atom_site_type_symbol"]
    if not all(symbol in elements for symbol in symbols):
        return None
    numbers = _numbers(
        columns["_atom_site_fract_x"]
        + columns["_atom_site_fract_y"]
        + columns["_atom_site_fract_z"]
    )
    if numbers is None:
        return None
    n = len(symbols)
    coords = np.array(numbers, dtype=np.float64).reshape(3, n).T.copy()
    if not np.isfinite(coords).all():
        return None

    # CifParser._sanitize_data: math.isclose(frac / f, 1, abs_tol=1e-4, rel_tol=0) snaps a
    # coordinate to f = 1/3 or 2/3 (the 2/3 test runs last).
    for fraction in (1 / 3, 2 / 3):
        coords[np.abs(coords / fraction - 1) <= _FRAC_TOLERANCE] = fraction
    if n > 1 and _has_close_sites(coords, _FAST_MIN_SEPARATION):
        return None

    lattice = _lattice_from_parameters(a, b, c, alpha, beta, gamma)
    if not (np.isfinite(lattice).all() and _min_thickness(lattice) > _FAST_MIN_THICKNESS):
        return None

    # pymatgen's order: sorted compositions, then get_sorted_structure (both stable).
    distinct = set(symbols)
    by_composition = {s: _CompositionOrder(elements[s][1], s) for s in distinct}
    by_site = {s: _SiteOrder(elements[s][1], s) for s in distinct}
    order = sorted(range(n), key=lambda i: by_composition[symbols[i]])
    order = sorted(order, key=lambda i: by_site[symbols[i]])

    # CifParser._unique_coords: the identity operation, then x - floor(x).
    frac = coords[order]
    frac -= np.floor(frac)
    z = np.array([elements[symbols[i]][0] for i in order], dtype=np.int64)
    return Crystal(lattice=lattice, atomic_numbers=z, frac_coords=frac)


def fast_path_applies(text: str | bytes) -> bool:
    """Whether :func:`parse_cif` reads ``text`` with gemmi (True) or with pymatgen (False)."""
    try:
        decoded = _to_text(text, "<text>")
    except InputError:
        return False
    return _parse_fast(decoded) is not None


# --- the pymatgen fallback ------------------------------------------------------------


def _one_line(message: object) -> str:
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    return "; ".join(lines) if lines else "unknown error"


def _has_tag(block: gemmi.cif.Block, tag: str) -> bool:
    return block.find_value(tag) is not None or block.find_values(tag).get_loop() is not None


def _block_problem(block: gemmi.cif.Block) -> str | None:
    """What is missing or unusable in a data block pymatgen could not read, if we can tell."""
    name = block.name
    if not _has_tag(block, "_atom_site_label"):
        return f"data block {name!r} has no atoms (no _atom_site_label loop)"
    for tag in ("_atom_site_fract_x", "_atom_site_fract_y", "_atom_site_fract_z"):
        if not _has_tag(block, tag):
            return f"data block {name!r} has no fractional coordinates ({tag} is missing)"
        for raw in block.find_values(tag):
            if not math.isfinite(gemmi.cif.as_number(raw)):
                return f"data block {name!r}: {tag} value {raw!r} is not a finite number"
    cell = [gemmi.cif.as_number(block.find_value(tag) or "?") for tag in _CELL_TAGS]
    if (problem := _cell_problem(cell)) is not None:
        return problem
    if all(math.isfinite(value) for value in cell):
        a, b, c, alpha, beta, gamma = cell
        lattice = _lattice_from_parameters(a, b, c, alpha, beta, gamma)
        volume = abs(float(np.linalg.det(lattice)))
        if not volume > 1e-6:
            parameters = ", ".join(f"{value:g}" for value in cell)
            return (
                f"the cell (a, b, c, alpha, beta, gamma = {parameters}) has volume "
                f"{volume:.3g} Å^3; it must span a positive volume"
            )
    return None


def _explain_failure(text: str, messages: list[str], exc: BaseException) -> str:
    """A one-line reason why pymatgen read no structure from ``text``."""
    if not _BLOCK_START.search(text):
        return "not a CIF file: no line starts with data_"
    try:
        document = gemmi.cif.read_string(text)
    except Exception as gemmi_exc:  # not valid CIF syntax: gemmi says where
        where = re.sub(r"^string:(\d+)(?::\d+)?(?:\(\d+\))?:?\s*", r"line \1: ", str(gemmi_exc))
        return f"malformed CIF ({_one_line(where)})"
    if len(document) > 0 and (problem := _block_problem(document[0])) is not None:
        return problem
    details = [m.split("\n", 1)[-1] for m in messages if m.startswith("No structure parsed")]
    detail = _one_line(details[0] if details else exc)
    if match := re.fullmatch(r"Occupancy (\S+) exceeded tolerance\.", detail):
        return (
            f"sites at the same position add up to occupancy {match[1]} (more than 1): "
            "duplicated atoms?"
        )
    if detail == "Invalid CIF file with no structures!":
        return "no atoms could be read from the CIF (no site with a known element and occupancy)"
    return f"pymatgen could not read a structure from the CIF ({detail})"


def _check_sites(structure: Structure, source: str) -> None:
    """Raise for unknown elements and disordered or partially occupied sites."""
    from pymatgen.core import DummySpecies

    for i, site in enumerate(structure):
        species = site.species
        for specie in species:
            if isinstance(specie, DummySpecies):
                raise InputError(
                    source, f"site {i} has an unknown element symbol {specie.symbol!r}"
                )
        if not site.is_ordered:
            if len(species) == 1:
                specie, amount = next(iter(species.items()))
                raise InputError(
                    source, f"site {i} ({specie}) has occupancy {amount:g}; {_ORDERED_HINT}"
                )
            shared = ", ".join(f"{sp} {amount:g}" for sp, amount in species.items())
            raise InputError(source, f"site {i} is shared by {shared}; {_ORDERED_HINT}")


def _parse_with_pymatgen(text: str, source: str) -> Crystal:
    from pymatgen.io.cif import CifParser

    messages: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            parser = CifParser.from_str(text)
            messages = parser.warnings
            structure = parser.parse_structures(primitive=False)[0]
        except Exception as exc:  # ValueError, KeyError, ZeroDivisionError, ... on bad text
            raise InputError(source, _explain_failure(text, messages, exc)) from None
    _check_sites(structure, source)
    crystal = Crystal.from_structure(structure, source)
    tags = _structure_block(parser.as_dict(), crystal)
    if tags is not None:
        cell = [_tag_number(tags, tag) for tag in _CELL_TAGS]
        if (problem := _cell_problem(cell)) is not None:
            raise InputError(source, problem)
        _check_formula(crystal, tags.get(FORMULA_TAG.lower()), source)
    return crystal


# --- consistency checks ----------------------------------------------------------------


def _structure_block(blocks: dict[str, dict], crystal: Crystal) -> dict[str, object] | None:
    """The tags (lower-case names) of the data block pymatgen read ``crystal`` from.

    That is the first block with atom sites, when its cell lengths are the crystal's (a
    block pymatgen could not read is skipped by pymatgen); None if that is not sure.
    """
    for block in blocks.values():
        tags = {str(tag).lower(): value for tag, value in block.items()}
        if "_atom_site_fract_x" in tags or "_atom_site_cartn_x" in tags:
            lengths = [_tag_number(tags, tag) for tag in _CELL_TAGS[:3]]
            norms = np.linalg.norm(crystal.lattice, axis=1)
            if np.allclose(np.abs(lengths), norms, rtol=1e-4, atol=0):
                return tags
            return None
    return None


def _tag_number(tags: dict[str, object], tag: str) -> float:
    """A numeric tag's value (uncertainty in brackets dropped), NaN if absent or not a number."""
    value = tags.get(tag.lower())
    return gemmi.cif.as_number(value) if isinstance(value, str) else math.nan


def _cell_problem(cell: list[float]) -> str | None:
    """What is wrong with the cell parameters (a, b, c, alpha, beta, gamma), if anything.

    Values that are absent (NaN) are not judged; a zero length is left to the volume check
    of :meth:`Crystal.validate`.
    """
    for name, value in zip("abc", cell[:3], strict=True):
        if value < 0:
            return f"_cell_length_{name} is {value:g} Å; a cell length must be positive"
    angles = dict(zip(("alpha", "beta", "gamma"), cell[3:], strict=True))
    for name, value in angles.items():
        if not (value > 0 and value < 180) and not math.isnan(value):
            return f"_cell_angle_{name} is {value:g}°; an angle must be between 0 and 180°"
    if any(math.isnan(value) for value in cell[3:]):
        return None
    cos = [math.cos(math.radians(value)) for value in cell[3:]]
    # (V / abc)^2 for a cell with these angles: not positive when no cell has them
    factor = 1 - sum(c * c for c in cos) + 2 * cos[0] * cos[1] * cos[2]
    if factor <= 1e-12:
        angles_text = ", ".join(f"{value:g}" for value in cell[3:])
        return (
            f"no cell has the angles alpha, beta, gamma = {angles_text}°: its volume would be "
            "zero or negative"
        )
    return None


def _declared_formula(value: object) -> dict[int, float] | None:
    """``_chemical_formula_sum`` as {Z: amount}; None when absent, unknown ('?', '.') or not
    a plain sum of element symbols and amounts (then it is not checked)."""
    if not isinstance(value, str) or not value.split():
        return None
    elements = _element_data()
    amounts: dict[int, float] = {}
    for term in value.split():
        match = _FORMULA_TERM.fullmatch(term)
        if match is None or match[1] not in elements:
            return None
        z = elements[match[1]][0]
        amounts[z] = amounts.get(z, 0.0) + (float(match[2]) if match[2] else 1.0)
    if not all(amount > 0 for amount in amounts.values()):
        return None
    return amounts


def _proportional(declared: dict[int, float], counts: Counter[int]) -> bool:
    """True if the sites hold the same elements as ``declared``, in the same proportions
    within :data:`_FORMULA_TOLERANCE` (any number of formula units per cell)."""
    if set(declared) != set(counts):
        return False
    ratios = [counts[z] / declared[z] for z in declared]
    return max(ratios) <= min(ratios) * (1 + _FORMULA_TOLERANCE)


def _check_formula(crystal: Crystal, value: object, source: str) -> None:
    """Raise if the sites disagree with the file's ``_chemical_formula_sum``."""
    declared = _declared_formula(value)
    if declared is None:
        return
    counts = Counter(crystal.atomic_numbers.tolist())
    if _proportional(declared, counts):
        return
    from cgcnn.elements import element_symbol

    order = [z for z in declared if z in counts] + [z for z in counts if z not in declared]
    given = " ".join(f"{element_symbol(z)}{counts[z]}" for z in order)
    raise InputError(
        source,
        f"the sites give {given} but {FORMULA_TAG} says {str(value).strip()!r}; atom lines "
        "are missing or the formula is wrong",
    )


# --- public API -----------------------------------------------------------------------


def parse_cif(text: str | bytes, source: str) -> Crystal:
    """Parse the first crystal of a CIF.

    The result equals ``Crystal.from_structure(Structure.from_str(text, fmt="cif"))``
    (pymatgen, first data block, ``primitive=False``); plain P1 files are read with gemmi,
    10 to 20 times faster (about 0.1 ms a structure), everything else with pymatgen.  A
    UTF-8 BOM is dropped first.  Bytes that are not UTF-8 but look like 8-bit text (no
    control characters when read as Latin-1) are decoded as ``Structure.from_file`` decodes
    them; other bytes are refused as binary.

    Args:
        text: the CIF, as text or as the bytes of a file (gzip/bzip2 compressed is fine).
        source: the file name or ``file:id`` named in error messages.

    Raises:
        InputError: empty or binary input, malformed CIF, no atoms, unknown element,
            disordered or partially occupied sites, a negative cell length, an angle
            outside (0, 180) degrees, a degenerate cell, or sites that disagree with the
            file's ``_chemical_formula_sum``.
    """
    decoded = _to_text(text, source)
    fast = _parse_fast(decoded)
    if fast is None:
        crystal = _parse_with_pymatgen(decoded, source)
        crystal.validate(source)
        return crystal
    crystal, formula = fast  # (a fast-path crystal always passes validate)
    _check_formula(crystal, formula, source)
    return crystal


def parse_cif_file(path: str | os.PathLike) -> Crystal:
    """Parse the first crystal of a CIF file (see :func:`parse_cif`); errors name the file."""
    source = os.fspath(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(source, f"cannot read the file ({exc.strerror or exc})") from None
    return parse_cif(data, source)
