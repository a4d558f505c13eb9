"""A crystal as plain arrays: the form every reader produces and the graph code consumes.

Building a :class:`pymatgen.core.Structure` costs more than parsing a small CIF with a
compiled reader, so readers hand over a :class:`Crystal`; :meth:`Crystal.from_structure`
and :meth:`Crystal.to_structure` convert to and from pymatgen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from cgcnn.errors import InputError

if TYPE_CHECKING:
    from pymatgen.core import Structure


@dataclass(frozen=True)
class Crystal:
    """A periodic crystal.

    Attributes:
        lattice: (3, 3) float64, lattice vectors as rows, Å.
        atomic_numbers: (N,) int64, Z of each site.
        frac_coords: (N, 3) float64, fractional coordinates of each site.
    """

    lattice: np.ndarray
    atomic_numbers: np.ndarray
    frac_coords: np.ndarray

    @property
    def num_atoms(self) -> int:
        return int(self.atomic_numbers.shape[0])

    @property
    def cart_coords(self) -> np.ndarray:
        """(N, 3) Cartesian coordinates, Å."""
        return self.frac_coords @ self.lattice

    @classmethod
    def from_structure(cls, structure: Structure, source: str | None = None) -> Crystal:
        """Take a pymatgen ``Structure`` (ordered: one element per site, full occupancy)."""
        if not structure.is_ordered:
            bad = next(i for i, site in enumerate(structure) if not site.is_ordered)
            raise InputError(
                source,
                f"site {bad} ({structure[bad].species}) is disordered or partially occupied; "
                "CGCNN needs one element per site (order the structure first, e.g. with "
                "pymatgen's OrderDisorderedStructureTransformation)",
            )
        numbers = np.array([site.specie.Z for site in structure], dtype=np.int64)
        return cls(
            lattice=np.array(structure.lattice.matrix, dtype=np.float64),
            atomic_numbers=numbers,
            frac_coords=np.array(structure.frac_coords, dtype=np.float64).reshape(-1, 3),
        )

    def to_structure(self) -> Structure:
        """The same crystal as a pymatgen ``Structure``."""
        from pymatgen.core import Lattice, Structure

        return Structure(Lattice(self.lattice), self.atomic_numbers.tolist(), self.frac_coords)

    def validate(self, source: str | None = None) -> None:
        """Raise :class:`InputError` for a crystal no graph can be built from.

        Checks: at least one atom, finite lattice and coordinates, a positive cell volume,
        and atomic numbers between 1 and 118.
        """
        if self.num_atoms == 0:
            raise InputError(source, "the structure has no atoms")
        if not np.all(np.isfinite(self.lattice)):
            raise InputError(source, "the lattice holds NaN or infinite values")
        if not np.all(np.isfinite(self.frac_coords)):
            bad = int(np.nonzero(~np.isfinite(self.frac_coords).all(axis=1))[0][0])
            raise InputError(source, f"site {bad} has a NaN or infinite coordinate")
        volume = abs(float(np.linalg.det(self.lattice)))
        if not volume > 1e-6:
            raise InputError(
                source,
                f"the cell volume is {volume:.6g} Å^3; the lattice vectors must span a "
                "positive volume",
            )
        z = self.atomic_numbers
        if z.min() < 1 or z.max() > 118:
            bad = int(z[(z < 1) | (z > 118)][0])
            raise InputError(source, f"atomic number {bad} is not an element")
