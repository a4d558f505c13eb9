"""A synthetic, physical demo data set generated in code: crystals and their Madelung energy.

The package ships no third-party data, so ``cgcnn demo`` trains on crystals made here with
pymatgen.  Every crystal is an ionic compound of a textbook structure type (rock salt,
CsCl, zinc blende, fluorite, antifluorite, rutile, cubic perovskite, spinel) with a
charge-balanced choice of elements, a lattice constant estimated from Shannon ionic radii
and a small random strain and random atomic displacements.  The target is a quantity from
an established physical model, computed by a real library: the **Ewald (Madelung)
electrostatic energy per atom** of point charges sitting at the formal oxidation states
(Na+1, Cl-1, Ti+4, O-2, ...), from :class:`pymatgen.analysis.ewald.EwaldSummation`.

**The physics, for a student.**  Put a point charge ``q_i`` (in units of the elementary
charge) on every atom of a periodic crystal.  The electrostatic energy per cell is
``E = 1/2 * sum_i sum_j' q_i q_j e^2 / (4 pi eps0 r_ij)`` over all pairs, the ``j`` running
over every periodic image (``e^2 / (4 pi eps0) = 14.3996 eV Å``).  This sum converges only
conditionally; Ewald's method splits it into a short-range part summed in real space and a
smooth long-range part summed in reciprocal space, both converging fast.  For rock-salt
NaCl the result is the textbook ``E = -M e^2 / r0`` per ion pair, with the Madelung constant
``M = 1.7476`` and the Na-Cl distance ``r0``.  The energy depends on the *local
environment* because the dominant terms are the nearest unlike neighbours: more of them
(higher coordination), closer (shorter bonds) and with larger charges give a more negative
energy, while like-charged second neighbours push it back up.  That is exactly the kind of
information a crystal graph holds (which elements, at which distances), so a CGCNN can
learn it.  **What is physical:** the Coulomb energy of the given charge arrangement is
computed exactly (to the Ewald precision), and it is the dominant term of the lattice
energy of ionic solids (Born-Landé, Kapustinskii).  **What is not:** real ions are not
point charges with integer (formal) charges; there is no short-range Pauli repulsion, so
nothing stops the energy from dropping further if the ions were pushed together (the
lattice constants here come from tabulated radii, not from an energy minimum); there is
no covalency, polarisation or electronic structure.  The numbers are therefore *not*
formation energies and *not* DFT: a demo target with the right kind of dependence on
structure and chemistry, not a property to compare with experiment.

The target is the energy **per atom** (eV/atom): it is intensive, so it does not depend
on the choice of cell and a CGCNN with mean pooling fits it.  Magnitudes are large (a few
to several tens of eV/atom) because formal charges of 2-5 enter squared.
"""

from __future__ import annotations

import csv
import functools
import json
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from pymatgen.core import Structure

__all__ = [
    "GENERATOR_VERSION",
    "STRUCTURE_TYPES",
    "generate_demo_dataset",
    "structure_type_of",
    "write_demo_dataset",
]

#: Bumped whenever the generated crystals or targets change (the manifest records it).
GENERATOR_VERSION = 1

MANIFEST = "demo_manifest.json"
README = "README.txt"
ID_PROP = "id_prop.csv"

#: Shape of the random variety added to every crystal.
_SCALE_RANGE = 0.04  # isotropic lattice scale factor drawn in [1 - x, 1 + x]
_STRAIN_STD = 0.015  # standard deviation of each component of the symmetric strain tensor
_DISPLACEMENT_STD = 0.04  # Å, standard deviation of each Cartesian atomic displacement
_MIN_DISTANCE = 1.2  # Å, a draw with two atoms closer than this is redrawn (never seen)
_DECIMALS = 6  # lattice parameters and fractional coordinates are rounded to this

# ------------------------------------------------------------------------ chemistry
# (cation element, charge) lists and (anion element, charge) lists per structure type.
# Every combination is charge balanced by construction of the formula.

_ALKALI = ["Li", "Na", "K", "Rb"]
_HALIDES = ["F", "Cl", "Br", "I"]


def _ions(elements: Sequence[str], charge: int) -> list[tuple[str, int]]:
    return [(el, charge) for el in elements]


#: Structure type -> list of element "families": each family is a tuple of ion lists, one
#: per site role of the template, in the template's role order.  A crystal takes one family
#: at random (families are equally likely), then one ion per role.
_CHEMISTRY: dict[str, list[tuple[list[tuple[str, int]], ...]]] = {
    "rocksalt": [
        (_ions([*_ALKALI, "Ag"], 1), _ions(_HALIDES, -1)),
        (_ions(["Mg", "Ca", "Sr", "Ba", "Mn", "Fe", "Co", "Ni", "Cd"], 2), _ions(["O"], -2)),
        (_ions(["Mg", "Ca", "Sr", "Ba", "Pb"], 2), _ions(["S", "Se", "Te"], -2)),
    ],
    "cscl": [
        (_ions(["Cs", "Rb", "Tl"], 1), _ions(["Cl", "Br", "I"], -1)),
    ],
    "zincblende": [
        (_ions(["Zn", "Cd", "Hg", "Be"], 2), _ions(["S", "Se", "Te"], -2)),
        (_ions(["Cu", "Ag"], 1), _ions(["Cl", "Br", "I"], -1)),
        (_ions(["Al", "Ga", "In"], 3), _ions(["N"], -3)),
    ],
    "fluorite": [
        (_ions(["Ca", "Sr", "Ba", "Cd", "Pb"], 2), _ions(["F"], -1)),
        (_ions(["Sr", "Ba"], 2), _ions(["Cl"], -1)),
        (_ions(["Zr", "Hf", "Ce", "Th", "U"], 4), _ions(["O"], -2)),
    ],
    "antifluorite": [
        (_ions(_ALKALI, 1), _ions(["O", "S", "Se"], -2)),
    ],
    "rutile": [
        (_ions(["Ti", "Sn", "Ge", "Mn", "Ru", "Ir", "Cr", "V", "Pb"], 4), _ions(["O"], -2)),
        (_ions(["Mg", "Zn", "Ni", "Fe", "Co", "Mn"], 2), _ions(["F"], -1)),
    ],
    "perovskite": [
        (  # A2+ B4+ O3
            _ions(["Ca", "Sr", "Ba", "Pb"], 2),
            _ions(["Ti", "Zr", "Hf", "Sn", "Mn", "Ce"], 4),
            _ions(["O"], -2),
        ),
        (_ions(["Na", "K", "Rb"], 1), _ions(["Nb", "Ta", "Sb"], 5), _ions(["O"], -2)),
        (  # A3+ B3+ O3
            _ions(["La", "Nd", "Sm", "Gd", "Y", "Bi"], 3),
            _ions(["Al", "Ga", "Sc", "Cr", "Fe", "Mn", "Co", "In"], 3),
            _ions(["O"], -2),
        ),
        (  # halide perovskites A1+ B2+ X3
            _ions(["K", "Rb", "Cs"], 1),
            _ions(["Mg", "Zn", "Mn", "Cd", "Pb", "Ca"], 2),
            _ions(_HALIDES, -1),
        ),
    ],
    "spinel": [
        (
            _ions(["Mg", "Zn", "Fe", "Co", "Ni", "Mn", "Cd"], 2),
            _ions(["Al", "Ga", "Cr", "Fe", "Mn", "Co", "V"], 3),
            _ions(["O"], -2),
        ),
        (_ions(["Zn", "Cd", "Mn", "Fe"], 2), _ions(["Cr", "In", "Al"], 3), _ions(["S"], -2)),
    ],
}

#: The structure types, in the order crystals cycle through them (``id`` = ``TYPE-INDEX``).
STRUCTURE_TYPES: tuple[str, ...] = tuple(_CHEMISTRY)


@functools.cache
def _radius(element: str, charge: int) -> float:
    """Shannon radius (Å) of an ion from pymatgen (its default coordination)."""
    from pymatgen.core import Species

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no default radius, using low-spin data" notes
        radius = Species(element, charge).ionic_radius
    if radius is None:
        raise ValueError(f"pymatgen has no ionic radius for {element}{charge:+d}")
    return float(radius)


# ------------------------------------------------------------------------ templates
# A template: (lattice at unit scale as rows, role of each site, fractional coordinates).
# Roles index the ion lists of the chemistry families; anions are the last role.

Template = tuple[np.ndarray, list[int], np.ndarray]

_FCC = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
_TETRA = np.array(
    [[x, y, z] for x in (0.25, 0.75) for y in (0.25, 0.75) for z in (0.25, 0.75)]
)  # the 8 tetrahedral holes of the fcc cell


def _template(kind: str, rng: np.random.Generator) -> Template:
    """The ideal cell of one structure type (rutile and spinel draw their free parameters)."""
    cubic = np.eye(3)
    if kind == "rocksalt":
        coords = np.vstack([_FCC, _FCC + np.array([0.5, 0.0, 0.0])])
        return cubic, [0] * 4 + [1] * 4, coords
    if kind == "cscl":  # a 2x1x1 supercell, so that the two cations can move differently
        coords = np.array([[0, 0, 0], [0.5, 0, 0], [0.25, 0.5, 0.5], [0.75, 0.5, 0.5]])
        return np.diag([2.0, 1.0, 1.0]), [0, 0, 1, 1], coords
    if kind == "zincblende":
        return cubic, [0] * 4 + [1] * 4, np.vstack([_FCC, _FCC + 0.25])
    if kind == "fluorite":
        return cubic, [0] * 4 + [1] * 8, np.vstack([_FCC, _TETRA])
    if kind == "antifluorite":  # cations in the tetrahedral holes
        return cubic, [0] * 8 + [1] * 4, np.vstack([_TETRA, _FCC])
    if kind == "rutile":
        u = rng.uniform(0.298, 0.308)
        c_over_a = rng.uniform(0.63, 0.67)
        coords = np.array(
            [
                [0, 0, 0],
                [0.5, 0.5, 0.5],
                [u, u, 0],
                [1 - u, 1 - u, 0],
                [0.5 + u, 0.5 - u, 0.5],
                [0.5 - u, 0.5 + u, 0.5],
            ]
        )
        return np.diag([1.0, 1.0, c_over_a]), [0, 0, 1, 1, 1, 1], coords
    if kind == "perovskite":
        coords = np.array([[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
        return cubic, [0, 1, 2, 2, 2], coords
    if kind == "spinel":
        return _spinel(round(float(rng.uniform(0.380, 0.392)), _DECIMALS))
    raise ValueError(f"unknown structure type {kind!r}")


@functools.cache
def _fd3m_operations() -> tuple[np.ndarray, np.ndarray]:
    """Rotations (K, 3, 3) and translations (K, 3) of Fd-3m (origin choice 1), sorted."""
    from pymatgen.symmetry.groups import SpaceGroup

    # the operations come as an unordered set: sort them for a reproducible site order
    matrices = sorted(op.affine_matrix.round(8).tolist() for op in SpaceGroup("Fd-3m").symmetry_ops)
    affine = np.array(matrices)
    return affine[:, :3, :3], affine[:, :3, 3]


def _spinel(u: float) -> Template:
    """Primitive (14-atom) normal spinel AB2X4, Fd-3m origin choice 1, anions at (u, u, u)."""
    rotations, translations = _fd3m_operations()
    # fcc primitive vectors in conventional fractional units (rows)
    prim = np.array([[0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    to_prim = np.linalg.inv(prim)
    roles: list[int] = []
    coords: list[np.ndarray] = []
    for role, site in enumerate(([0, 0, 0], [0.625, 0.625, 0.625], [u, u, u])):
        images = np.mod((rotations @ np.array(site, dtype=float) + translations) @ to_prim, 1.0)
        unique: list[np.ndarray] = []
        for frac in images:
            if all(np.abs((frac - other + 0.5) % 1.0 - 0.5).max() > 1e-6 for other in unique):
                unique.append(frac)
        roles += [role] * len(unique)
        coords += unique
    if roles.count(0) != 2 or roles.count(1) != 4 or roles.count(2) != 8:
        raise RuntimeError("the spinel template is wrong")  # pragma: no cover
    return prim, roles, np.array(coords)


def _nearest_anion_distance(
    lattice: np.ndarray, coords: np.ndarray, roles: list[int]
) -> list[float]:
    """Per cation site, the distance to its nearest anion (periodic images included)."""
    anion_role = max(roles)
    shifts = np.array([[i, j, k] for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)])
    anions = coords[[r == anion_role for r in roles]]
    images = (anions[None, :, :] + shifts[:, None, :]).reshape(-1, 3) @ lattice
    out = []
    for frac, role in zip(coords, roles, strict=True):
        if role != anion_role:
            out.append(float(np.min(np.linalg.norm(images - frac @ lattice, axis=1))))
    return out


# ------------------------------------------------------------------------ generation


def structure_type_of(crystal_id: str) -> str:
    """The structure type of a demo crystal from its id (``"perovskite-00012"``)."""
    return crystal_id.rsplit("-", 1)[0]


def _make_crystal(kind: str, rng: np.random.Generator) -> tuple[Structure, Structure, float]:
    """One random crystal of ``kind``: (structure, oxidation-decorated structure, E eV/atom)."""
    from pymatgen.analysis.ewald import EwaldSummation
    from pymatgen.core import Lattice, Species, Structure

    families = _CHEMISTRY[kind]
    family = families[int(rng.integers(len(families)))]
    ions = [ion_list[int(rng.integers(len(ion_list)))] for ion_list in family]
    lattice, roles, coords = _template(kind, rng)

    # lattice constant: cation-anion contact at the sum of the radii, averaged over cations
    anion = ions[-1]
    unit = _nearest_anion_distance(lattice, coords, roles)
    cation_roles = [r for r in roles if r != len(ions) - 1]
    contact = [_radius(*ions[r]) + _radius(*anion) for r in cation_roles]
    a = float(np.mean(np.array(contact) / np.array(unit)))

    for _ in range(100):
        scale = a * rng.uniform(1 - _SCALE_RANGE, 1 + _SCALE_RANGE)
        strain = rng.normal(0.0, _STRAIN_STD, (3, 3))
        strain = 0.5 * (strain + strain.T)
        matrix = scale * lattice @ (np.eye(3) + strain)
        cart = coords @ matrix + rng.normal(0.0, _DISPLACEMENT_STD, coords.shape)
        # round so that the CIF written later (8 decimals) holds exactly this crystal
        params = Lattice(matrix).parameters
        final_lattice = Lattice.from_parameters(*(round(p, _DECIMALS) for p in params))
        frac = np.round(np.mod(Lattice(matrix).get_fractional_coords(cart), 1.0), _DECIMALS)
        species = [Species(*ions[r]) for r in roles]
        decorated = Structure(final_lattice, species, frac)
        dist = decorated.distance_matrix + np.eye(len(decorated)) * 1e9
        if dist.min() >= _MIN_DISTANCE and min(final_lattice.abc) >= _MIN_DISTANCE:
            break
    else:  # pragma: no cover - the distortions are far too small for this
        raise RuntimeError(f"could not draw a {kind} crystal without overlapping atoms")

    if abs(decorated.charge) > 1e-8:  # pragma: no cover - charge balance is by construction
        raise RuntimeError(f"{decorated.composition} is not charge neutral")
    energy = EwaldSummation(decorated).total_energy / len(decorated)
    # unique CIF site labels (Na1, Na2, ..., Cl1, ...) rather than pymatgen's default "Na+"
    symbols = [site.specie.symbol for site in decorated]
    labels = [f"{el}{symbols[: k + 1].count(el)}" for k, el in enumerate(symbols)]
    for site, label in zip(decorated, labels, strict=True):
        site.label = label
    plain = Structure(final_lattice, symbols, frac, labels=labels)
    return plain, decorated, float(energy)


def generate_demo_dataset(
    n: int = 1200,
    seed: int = 0,
    *,
    oxidation_states: bool = False,
    progress: Callable[[int], None] | None = None,
) -> list[tuple[str, Structure, float]]:
    """Generate ``n`` ionic crystals and their Ewald electrostatic energy per atom.

    Crystals cycle through :data:`STRUCTURE_TYPES` (so every type gets ``n / 8`` crystals,
    give or take one); crystal ``i`` is drawn from its own random stream seeded with
    ``(seed, i)``, so the first ``m`` crystals do not depend on ``n`` and the result is
    the same bit for bit for the same ``seed`` (and the same pymatgen radii table).

    Args:
        n: the number of crystals (>= 0).
        seed: the random seed.
        oxidation_states: return the structures decorated with the formal oxidation states
            the target was computed with (``Species``, e.g. Fe2+ and Fe3+ in a spinel)
            instead of plain elements.
        progress: called with the number of crystals done so far, after each crystal.

    Returns:
        ``(id, structure, target)`` triples: the id is ``TYPE-INDEX``
        (e.g. ``"perovskite-00006"``), the structure a pymatgen ``Structure`` (4-14 atoms)
        with plain elements unless ``oxidation_states``, the target the Ewald energy of the
        formal point charges in eV/atom.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, not {n}")
    out: list[tuple[str, Structure, float]] = []
    width = max(5, len(str(n - 1)))
    for i in range(n):
        kind = STRUCTURE_TYPES[i % len(STRUCTURE_TYPES)]
        rng = np.random.default_rng([seed, i])
        plain, decorated, energy = _make_crystal(kind, rng)
        out.append((f"{kind}-{i:0{width}d}", decorated if oxidation_states else plain, energy))
        if progress is not None:
            progress(i + 1)
    return out


# ------------------------------------------------------------------------ writing


def _manifest(n: int, seed: int) -> dict:
    return {"generator": "cgcnn.demo_data", "version": GENERATOR_VERSION, "n": n, "seed": seed}


def _is_complete(folder: Path, n: int, seed: int) -> bool:
    """Whether ``folder`` holds a full demo data set written for ``n`` and ``seed``."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        with open(folder / ID_PROP, encoding="utf-8", newline="") as handle:
            ids = [row[0] for row in csv.reader(handle) if row]
    except (OSError, ValueError):
        return False
    if manifest != _manifest(n, seed) or len(ids) != n:
        return False
    return all((folder / f"{rid}.cif").is_file() for rid in ids)


def _readme(n: int, seed: int, targets: np.ndarray, counts: dict[str, int]) -> str:
    lines = [
        "cgcnn demo data set",
        "===================",
        "",
        "Synthetic crystals generated by cgcnn (cgcnn.demo_data); target = Ewald electrostatic",
        "energy per atom of point charges at the formal oxidation states, computed with",
        "pymatgen's EwaldSummation; not DFT.",
        "",
        f"count: {n} crystals",
        f"seed: {seed}",
        f"generator version: {GENERATOR_VERSION}",
        "",
        "Each crystal is a charge-balanced ionic compound of a textbook structure type, its",
        "lattice constant estimated from Shannon ionic radii (cation-anion contact), with a",
        "small random strain and random atomic displacements.  The target is",
        "EwaldSummation(structure with formal oxidation states).total_energy / number of atoms,",
        "in eV/atom: the Madelung (Coulomb) energy of integer point charges.  It has no",
        "short-range repulsion, covalency or electronic structure: it is a demo target, not a",
        "formation energy or lattice energy to compare with experiment.",
        "",
        "Layout: ID.cif per crystal (CIF without oxidation states), id_prop.csv (id,target).",
        "",
        "crystals per structure type:",
        *(f"  {kind}: {count}" for kind, count in counts.items()),
    ]
    if len(targets):
        lines += [
            "",
            f"target (eV/atom): mean {targets.mean():.3f}, std {targets.std():.3f}, "
            f"min {targets.min():.3f}, max {targets.max():.3f}",
        ]
    return "\n".join(lines) + "\n"


def write_demo_dataset(folder: str | Path, n: int = 1200, seed: int = 0) -> Path:
    """Write the demo data set to ``folder`` in the original CGCNN layout.

    Writes ``ID.cif`` per crystal, ``id_prop.csv`` (``id,target``, no header), a
    ``README.txt`` that says what the data is, and ``demo_manifest.json`` (written last,
    so an interrupted run is never taken as complete).  Does nothing when the folder
    already holds a complete data set of the same ``n``, ``seed`` and generator version.
    A folder with an ``id_prop.csv`` that is not a demo data set is left alone.

    Returns:
        The folder.

    Raises:
        FileExistsError: ``folder`` holds an ``id_prop.csv`` that cgcnn did not write.
    """
    folder = Path(folder)
    if _is_complete(folder, n, seed):
        return folder
    old_manifest = folder / MANIFEST
    if (folder / ID_PROP).exists() and not old_manifest.exists():
        raise FileExistsError(
            f"{folder} holds an {ID_PROP} that is not a cgcnn demo data set; choose an empty folder"
        )
    folder.mkdir(parents=True, exist_ok=True)
    if old_manifest.exists():  # another demo data set: remove its crystals first
        old_manifest.unlink()
        for cif in folder.glob("*.cif"):
            if structure_type_of(cif.stem) in STRUCTURE_TYPES:
                cif.unlink()

    data = generate_demo_dataset(n, seed)
    for rid, structure, _ in data:
        (folder / f"{rid}.cif").write_text(structure.to(fmt="cif"), encoding="utf-8")
    with open(folder / ID_PROP, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        for rid, _, target in data:
            writer.writerow([rid, repr(target)])
    counts = {kind: 0 for kind in STRUCTURE_TYPES}
    for rid, _, _ in data:
        counts[structure_type_of(rid)] += 1
    targets = np.array([t for _, _, t in data])
    (folder / README).write_text(_readme(n, seed, targets, counts), encoding="utf-8")
    (folder / MANIFEST).write_text(json.dumps(_manifest(n, seed), indent=1), encoding="utf-8")
    return folder
