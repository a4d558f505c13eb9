"""Fixtures: small hand-made CIF texts and folders in the original CGCNN layout."""

from __future__ import annotations

from pathlib import Path

import pytest

CIF_TEMPLATE = """# generated for the tests
data_{name}
_symmetry_space_group_name_H-M   'P 1'
_cell_length_a   {a}
_cell_length_b   {a}
_cell_length_c   {a}
_cell_angle_alpha   90.00000000
_cell_angle_beta   90.00000000
_cell_angle_gamma   90.00000000
_symmetry_Int_Tables_number   1
loop_
 _symmetry_equiv_pos_site_id
 _symmetry_equiv_pos_as_xyz
  1  'x, y, z'
loop_
 _atom_site_type_symbol
 _atom_site_label
 _atom_site_symmetry_multiplicity
 _atom_site_fract_x
 _atom_site_fract_y
 _atom_site_fract_z
 _atom_site_occupancy
{sites}
"""

PEROVSKITE_SITES = [
    ("Sr", 0.0, 0.0, 0.0, 1),
    ("Ti", 0.5, 0.5, 0.5, 1),
    ("O", 0.5, 0.5, 0.0, 1),
    ("O", 0.5, 0.0, 0.5, 1),
    ("O", 0.0, 0.5, 0.5, 1),
]


def make_cif(sites=PEROVSKITE_SITES, a: float | str = 3.905, name: str = "test") -> str:
    """A P1 CIF of the given (element, x, y, z, occupancy) sites."""
    lines = [
        f"  {el}  {el}{k}  1  {x}  {y}  {z}  {occ}" for k, (el, x, y, z, occ) in enumerate(sites)
    ]
    return CIF_TEMPLATE.format(name=name, a=a, sites="\n".join(lines))


GOOD_CIF = make_cif()

# name -> (file content, words the one-line error must contain)
BAD_CIFS: dict[str, tuple[bytes, str]] = {
    "empty": (b"", "empty"),
    "whitespace": (b"  \n\n", "empty"),
    "malformed": (b"data_x\n_cell_length_a 3.9\nloop_\n_atom_site_label\n'unclosed\n", ""),
    "junk": (bytes(range(256)) * 4, ""),
    "png": (b"\x89PNG\r\n\x1a\n" + bytes(200), ""),
    "truncated": (GOOD_CIF[: GOOD_CIF.index("Ti  Ti1") + 9].encode(), ""),
    "unknown-element": (make_cif([("Xx", 0, 0, 0, 1), ("O", 0.5, 0.5, 0.5, 1)]).encode(), "Xx"),
    "partial-occupancy": (
        make_cif([("Fe", 0, 0, 0, 0.5), ("O", 0.5, 0.5, 0.5, 1)]).encode(),
        "occupan",
    ),
    "atoms-too-close": (
        make_cif([("Na", 0, 0, 0, 1), ("Cl", 0.05, 0, 0, 1)], a=5.0).encode(),
        "closer than 0.5",
    ),
    "isolated-atom": (
        make_cif([("Na", 0, 0, 0, 1), ("Cl", 0.5, 0.5, 0.5, 1)], a=30.0).encode(),
        "no neighbour within",
    ),
    "zero-volume": (make_cif(a=0.0).encode(), ""),
    "nan-coordinate": (
        make_cif([("Na", 0, 0, 0, 1), ("Cl", "nan", 0.5, 0.5, 1)], a=5.0).encode(),
        "",
    ),
}


def write_cgcnn_folder(folder: Path, cifs: dict[str, str | bytes], rows: str | None = None) -> Path:
    """Write ID.cif files and id_prop.csv (default: target = row number) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for rid, text in cifs.items():
        data = text.encode() if isinstance(text, str) else text
        (folder / f"{rid}.cif").write_bytes(data)
    if rows is None:
        rows = "\n".join(f"{rid},{k}.5" for k, rid in enumerate(cifs))
    (folder / "id_prop.csv").write_text(rows)
    return folder


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"
