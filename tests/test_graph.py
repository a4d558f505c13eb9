"""The crystal graph: neighbour lists against pymatgen, ordering, invariances, settings."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from cgcnn import Crystal, InputError, featurize
from cgcnn.examples import example_structures
from cgcnn.graph import GraphSettings
from helpers import assert_matches_reference, assert_same_edges, reference_neighbors, shared

EXAMPLES = example_structures()


def _low_symmetry(seed: int = 0) -> Structure:
    """A triclinic cell with atoms at random positions kept > 1.2 Å apart."""
    rng = np.random.default_rng(seed)
    lattice = Lattice.from_parameters(5.1, 6.3, 7.2, 81.0, 97.0, 104.0)
    species, coords = [], []
    while len(coords) < 9:
        trial = rng.random(3)
        candidate = Structure(lattice, ["H"] * (len(coords) + 1), [*coords, trial])
        if len(coords) == 0 or candidate.distance_matrix[-1, :-1].min() > 1.2:
            coords.append(trial)
            species.append(["O", "Mg", "Si"][len(coords) % 3])
    return Structure(lattice, species, coords)


STRUCTURES = {**EXAMPLES, "triclinic": _low_symmetry()}


@pytest.mark.parametrize("name", list(STRUCTURES))
@pytest.mark.parametrize(("radius", "max_neighbors"), [(8.0, 12), (5.0, 6), (4.0, 30)])
def test_neighbors_match_pymatgen(name, radius, max_neighbors):
    structure = STRUCTURES[name]
    graph = featurize(structure, radius=radius, max_neighbors=max_neighbors)
    assert_matches_reference(graph, reference_neighbors(structure, radius, max_neighbors), name)


def test_fields_shapes_and_order():
    graph = featurize(EXAMPLES["SrTiO3-perovskite"])
    n, e = graph.num_atoms, graph.num_edges
    assert graph.atomic_numbers.shape == (n,)
    assert graph.edge_index.shape == (2, e)
    assert graph.distances.shape == (e,) and graph.distances.dtype == np.float32
    assert graph.offsets.shape == (e, 3)
    assert e == 12 * n
    centre = graph.edge_index[1]
    assert np.all(np.diff(centre) >= 0), "edges are grouped by centre"
    for i in range(n):
        d = graph.distances[centre == i]
        assert np.all(np.diff(d) >= -1e-6), "nearest first within a centre"
    # distances are what the offsets say: |r_j + offset @ cell - r_i|
    cart = graph.pos.astype(np.float64)
    j, i = graph.edge_index
    vec = cart[j] + graph.offsets @ graph.cell - cart[i]
    np.testing.assert_allclose(np.linalg.norm(vec, axis=1), graph.distances, atol=1e-5)


def test_to_data_fields():
    data = featurize(EXAMPLES["NaCl-rocksalt"]).to_data(y=[1.5, 2.0], id="NaCl")
    assert data.id == "NaCl"
    assert tuple(data.y.shape) == (1, 2)
    assert data.num_nodes == 8
    assert data.edge_index.dtype.is_floating_point is False
    assert tuple(data.cell.shape) == (1, 3, 3)


def test_same_crystal_same_graph():
    a = featurize(EXAMPLES["Cu-fcc"])
    b = featurize(EXAMPLES["Cu-fcc"])
    for field in ("edge_index", "distances", "offsets"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


def test_ties_broken_by_distance_element_index_image():
    # fcc Cu: 12 nearest neighbours at the same distance; 6 kept must be the lowest
    # (index, image) keys among them, in that order.
    graph = featurize(EXAMPLES["Cu-fcc"], max_neighbors=6)
    centre = graph.edge_index[1]
    for i in range(graph.num_atoms):
        mask = centre == i
        keys = [
            (int(j), tuple(o))
            for j, o in zip(graph.edge_index[0][mask], graph.offsets[mask].tolist(), strict=True)
        ]
        assert keys == sorted(keys)
        full = featurize(EXAMPLES["Cu-fcc"], max_neighbors=12)
        fm = full.edge_index[1] == i
        all_keys = sorted(
            (int(j), tuple(o))
            for j, o in zip(full.edge_index[0][fm], full.offsets[fm].tolist(), strict=True)
        )
        assert keys == all_keys[:6]


# ------------------------------------------------------------------ invariances


def _crystal(structure: Structure) -> Crystal:
    return Crystal.from_structure(structure)


def _rotation(seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


INVARIANCE_CASES = [
    "SrTiO3-perovskite",
    "TiO2-rutile",
    "ZnO-wurtzite",
    "NaCl-rocksalt",
    "triclinic",
]


@pytest.mark.parametrize("name", INVARIANCE_CASES)
def test_permutation_invariance(name):
    crystal = _crystal(STRUCTURES[name])
    perm = np.random.default_rng(1).permutation(crystal.num_atoms)
    permuted = Crystal(crystal.lattice, crystal.atomic_numbers[perm], crystal.frac_coords[perm])
    assert_same_edges(featurize(crystal), featurize(permuted))


@pytest.mark.parametrize("name", INVARIANCE_CASES)
def test_rotation_and_translation_invariance(name):
    crystal = _crystal(STRUCTURES[name])
    rotated = Crystal(crystal.lattice @ _rotation(3).T, crystal.atomic_numbers, crystal.frac_coords)
    shifted = Crystal(
        crystal.lattice, crystal.atomic_numbers, crystal.frac_coords + np.array([0.37, -0.21, 1.6])
    )
    reference = featurize(crystal)
    assert_same_edges(reference, featurize(rotated))
    assert_same_edges(reference, featurize(shifted))


@pytest.mark.parametrize("name", INVARIANCE_CASES)
def test_supercell_keeps_each_atoms_neighbours(name):
    structure = STRUCTURES[name]
    graph = featurize(structure)
    supercell = structure * (2, 2, 2)
    super_graph = featurize(supercell)
    assert_same_edges(graph, super_graph, repeat=8)
    # each supercell atom has exactly the neighbour distances of the atom it copies
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        origin = [
            int(
                np.argmin(
                    np.linalg.norm(
                        ((structure.frac_coords - (site.frac_coords * 2) % 1 + 0.5) % 1 - 0.5)
                        @ structure.lattice.matrix,
                        axis=1,
                    )
                )
            )
            for site in supercell
        ]
    for k, i in enumerate(origin):
        d_super = np.sort(super_graph.distances[super_graph.edge_index[1] == k])
        d_unit = np.sort(graph.distances[graph.edge_index[1] == i])
        np.testing.assert_allclose(d_super, d_unit, atol=1e-5)


def test_homework_perovskites_invariance():
    """Invariances on a few real cells of the homework set (up to 40 atoms)."""
    folder = shared("perovskite-energy")
    for path in sorted(folder.glob("*.cif"))[:6]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            structure = Structure.from_file(path)
        crystal = _crystal(structure)
        perm = np.random.default_rng(0).permutation(crystal.num_atoms)
        moved = Crystal(
            crystal.lattice @ _rotation(7).T,
            crystal.atomic_numbers[perm],
            crystal.frac_coords[perm] + 0.31,
        )
        assert_same_edges(featurize(crystal), featurize(moved))


# ------------------------------------------------------------------ fewer neighbours, bad input


def test_fewer_neighbours_are_not_padded():
    graph = featurize(EXAMPLES["Cu-fcc"], radius=3.0, max_neighbors=20)
    counts = graph.neighbor_counts()
    assert np.all(counts == 12)  # only the first shell lies within 3 Å
    assert np.all(graph.distances <= 3.0)


def test_grow_radius_reaches_max_neighbors():
    graph = featurize(EXAMPLES["Cu-fcc"], radius=3.0, max_neighbors=20, grow_radius=True)
    assert np.all(graph.neighbor_counts() == 20)
    assert graph.radius > 3.0
    reference = reference_neighbors(EXAMPLES["Cu-fcc"], graph.radius, 20)
    assert_matches_reference(graph, reference, "Cu grown")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"radius": 0.0}, "radius: must be a positive number"),
        ({"radius": -1.0}, "radius: must be a positive number"),
        ({"radius": float("nan")}, "radius: must be a positive number"),
        ({"max_neighbors": 0}, "max_neighbors: must be >= 1"),
        ({"max_neighbors": 2.5}, "max_neighbors: must be a whole number"),
    ],
)
def test_bad_settings(kwargs, message):
    with pytest.raises(InputError, match=message):
        featurize(EXAMPLES["CsCl"], **kwargs)


def test_atoms_too_close():
    structure = Structure(Lattice.cubic(5.0), ["Na", "Cl"], [[0, 0, 0], [0.05, 0, 0]])
    with pytest.raises(
        InputError, match=r"atom 0 \(Na\) is 0.250 Å from atom 1 \(Cl\), closer than 0.5"
    ):
        featurize(structure, source="bad.cif")
    with pytest.raises(InputError, match=r"^bad.cif: "):
        featurize(structure, source="bad.cif")


def test_atom_with_no_neighbour():
    structure = Structure(Lattice.cubic(20.0), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    with pytest.raises(InputError, match=r"x.cif: atom 0 \(Na\) has no neighbour within 8 Å"):
        featurize(structure, source="x.cif")


def test_nan_coordinate_and_zero_volume():
    nan = Crystal(np.eye(3) * 4, np.array([11, 17]), np.array([[0, 0, 0], [np.nan, 0.5, 0.5]]))
    with pytest.raises(InputError, match="site 1 has a NaN or infinite coordinate"):
        featurize(nan)
    flat = Crystal(np.array([[4.0, 0, 0], [0, 4, 0], [4, 4, 0]]), np.array([11]), np.zeros((1, 3)))
    with pytest.raises(InputError, match="cell volume is 0"):
        featurize(flat)


def test_disordered_structure_is_rejected():
    structure = Structure(Lattice.cubic(4.0), [{"Fe": 0.5, "Ni": 0.5}], [[0, 0, 0]])
    with pytest.raises(InputError, match="site 0 .* disordered or partially occupied"):
        featurize(structure)


def test_settings_key_changes_with_every_setting():
    base = GraphSettings()
    keys = {
        base.key(),
        GraphSettings(radius=6.0).key(),
        GraphSettings(max_neighbors=8).key(),
        GraphSettings(grow_radius=True).key(),
        GraphSettings(min_distance=0.4).key(),
    }
    assert len(keys) == 5
    assert GraphSettings().key() == base.key()


# ------------------------------------------------------------------ real data (acceptance 1)


def _structures_of(folder_name: str, every: int = 1):
    folder = shared(folder_name)
    for path in sorted(folder.glob("*.cif"))[::every]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield path.stem, Structure.from_file(path)


@pytest.mark.parametrize("folder", ["perovskite-energy", "sample-regression"])
def test_shared_folders_match_reference(folder):
    for name, structure in _structures_of(folder):
        graph = featurize(structure)
        assert_matches_reference(graph, reference_neighbors(structure, 8.0, 12), f"{folder}/{name}")


def test_the_field_table_describes_what_to_data_makes():
    """cgcnn.fields is the schema of a graph's Data: every field to_data makes is in it,
    with the dtype and the shape it says (N atoms, E edges, T targets)."""
    from cgcnn.examples import example_structures
    from cgcnn.fields import FIELDS, describe
    from cgcnn.graph import featurize

    graph = featurize(example_structures()["TiO2-rutile"])
    data = graph.to_data(y=np.array([1.0, 2.0], dtype=np.float32), id="rutile")
    sizes = {"N": graph.num_atoms, "E": graph.num_edges, "T": 2}
    made = {key for key in data.keys() if key != "num_nodes"}  # noqa: SIM118 (PyG)
    assert made == set(FIELDS)
    for name, (shape, dtype, _) in FIELDS.items():
        value = data[name]
        if shape == "str":
            assert isinstance(value, str), name
            continue
        assert str(value.dtype) == f"torch.{dtype}", name
        expected = tuple(
            sizes[part] if part in sizes else int(part)
            for part in shape.strip("()").replace(" ", "").split(",")
            if part
        )
        assert tuple(value.shape) == expected, name
    assert all(name in describe() for name in FIELDS)
