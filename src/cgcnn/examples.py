"""A few textbook crystals built in code: the built-in example for ``cgcnn featurize``.

No data file is shipped: each crystal is made from its space group and a measured lattice
constant with pymatgen, so the example runs anywhere, offline.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pymatgen.core import Structure

#: id -> (space group, lattice parameters (a, c or a only), species, fractional coordinates)
#: Lattice constants are room-temperature experimental values, Å.
_RECIPES: dict[str, tuple[str, tuple[float, ...], list[str], list[list[float]]]] = {
    "NaCl-rocksalt": ("Fm-3m", (5.64,), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
    "CsCl": ("Pm-3m", (4.12,), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
    "SrTiO3-perovskite": (
        "Pm-3m",
        (3.905,),
        ["Sr", "Ti", "O"],
        [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0]],
    ),
    "Si-diamond": ("Fd-3m", (5.431,), ["Si"], [[0, 0, 0]]),
    "Cu-fcc": ("Fm-3m", (3.615,), ["Cu"], [[0, 0, 0]]),
    "Fe-bcc": ("Im-3m", (2.8665,), ["Fe"], [[0, 0, 0]]),
    "ZnS-zincblende": ("F-43m", (5.41,), ["Zn", "S"], [[0, 0, 0], [0.25, 0.25, 0.25]]),
    "TiO2-rutile": ("P4_2/mnm", (4.594, 2.959), ["Ti", "O"], [[0, 0, 0], [0.3053, 0.3053, 0]]),
    "ZnO-wurtzite": (
        "P6_3mc",
        (3.25, 5.207),
        ["Zn", "O"],
        [[1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, 0.382]],
    ),
    "Mg-hcp": ("P6_3/mmc", (3.209, 5.211), ["Mg"], [[1 / 3, 2 / 3, 0.25]]),
}


def example_structures() -> dict[str, Structure]:
    """The example crystals, ``{id: Structure}``, in a fixed order (fresh copies)."""
    return {name: structure.copy() for name, structure in _build().items()}


@functools.cache
def _build() -> dict[str, Structure]:
    # pymatgen's space-group tables take ~1.5 s to set up: build the crystals once
    from pymatgen.core import Lattice, Structure

    out = {}
    for name, (group, params, species, coords) in _RECIPES.items():
        if len(params) == 1:
            lattice = Lattice.cubic(params[0])
        else:
            a, c = params
            lattice = Lattice.hexagonal(a, c) if "6" in group else Lattice.tetragonal(a, c)
        out[name] = Structure.from_spacegroup(group, lattice, species, coords)
    return out
