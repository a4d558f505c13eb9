"""The three-body convolution: its triplets and angles against a direct computation, and the
invariances of a model that sees angles (rotation, translation, permutation, supercell)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure
from pymatgen.core.operations import SymmOp

from cgcnn.batching import GraphBatcher
from cgcnn.config import DEFAULT_ANGLE_RADIUS, GraphSettings
from cgcnn.errors import InputError
from cgcnn.graph import featurize
from cgcnn.nn import CGCNN, CGCNNConfig
from cgcnn.nn.three_body import AngleBasis, find_triplets


def _perovskite(a: float = 3.905) -> Structure:
    """Cubic SrTiO3: ties everywhere (an O has 14 neighbours at its 12th distance)."""
    return Structure(
        Lattice.cubic(a),
        ["Sr", "Ti", "O", "O", "O"],
        [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
    )


def _distorted(seed: int = 0) -> Structure:
    """A low-symmetry cell: the perovskite with a sheared lattice and displaced atoms."""
    rng = np.random.default_rng(seed)
    s = _perovskite()
    s = Structure(
        Lattice(np.diag([3.9, 4.0, 4.1]) + rng.normal(0, 0.15, (3, 3))),
        s.species,
        s.frac_coords + rng.normal(0, 0.02, (5, 3)),
    )
    return s


def _triplet_cosines(structure: Structure, angle_radius: float) -> list[list[float]]:
    """Per centre, the sorted cosines of all ordered pairs of distinct bonds within the
    angle radius, from our graph and :func:`find_triplets`."""
    graph = featurize(structure, angle_radius=angle_radius)
    t = find_triplets(
        torch.from_numpy(graph.edge_index),
        torch.from_numpy(graph.distances),
        torch.from_numpy(graph.bond_vectors()),
        angle_radius,
    )
    centres = graph.edge_index[1][t.bond.numpy()]
    assert np.array_equal(centres, graph.edge_index[1][t.other.numpy()])  # same centre
    assert not np.any(t.bond.numpy() == t.other.numpy())  # distinct bonds
    return [sorted(t.cos.numpy()[centres == i].tolist()) for i in range(len(structure))]


def _direct_cosines(structure: Structure, angle_radius: float) -> list[list[float]]:
    """The same from pymatgen's neighbour list, one angle at a time."""
    out = []
    for i, neighbours in enumerate(structure.get_all_neighbors(angle_radius)):
        vectors = [n.coords - structure[i].coords for n in neighbours]
        cosines = [
            float(np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v)))
            for u, v in itertools.permutations(vectors, 2)
        ]
        out.append(sorted(cosines))
    return out


def test_simple_cubic_angles_are_right_angles_and_straight_lines():
    cube = Structure(Lattice.cubic(2.0), ["Po"], [[0, 0, 0]])
    (cosines,) = _triplet_cosines(cube, 2.1)
    # six bonds along ±x, ±y, ±z: each has four at 90° and one at 180°
    assert len(cosines) == 30
    np.testing.assert_allclose(cosines, [-1.0] * 6 + [0.0] * 24, atol=1e-6)


def test_a_bent_molecule_has_its_angle():
    angle = math.radians(104.5)
    r = 0.9572
    water = Structure(
        Lattice.cubic(15.0),
        ["O", "H", "H"],
        [[0, 0, 0], [r, 0, 0], [r * math.cos(angle), r * math.sin(angle), 0]],
        coords_are_cartesian=True,
    )
    cosines = _triplet_cosines(water, 1.2)  # the O-H bonds, not H-H (1.51 Å)
    np.testing.assert_allclose(cosines[0], [math.cos(angle)] * 2, rtol=1e-6)
    assert cosines[1] == cosines[2] == []


@pytest.mark.parametrize("name", ["cubic", "distorted"])
def test_angles_equal_a_direct_computation(name):
    structure = _perovskite() if name == "cubic" else _distorted()
    ours = _triplet_cosines(structure, DEFAULT_ANGLE_RADIUS)
    direct = _direct_cosines(structure, DEFAULT_ANGLE_RADIUS)
    assert [len(c) for c in ours] == [len(c) for c in direct]
    assert sum(len(c) for c in ours) > 100  # the test compares something
    for a, b in zip(ours, direct, strict=True):
        np.testing.assert_allclose(a, b, atol=2e-6)


def test_the_graph_keeps_every_neighbour_within_the_angle_radius():
    cubic = _perovskite()
    assert featurize(cubic).neighbor_counts().tolist() == [12] * 5
    # O: 2 Ti at a/2 and 4 Sr + 8 O at a/sqrt(2) (2.76 Å): 14 within 3 Å, all kept
    counts = featurize(cubic, angle_radius=3.0).neighbor_counts().tolist()
    assert counts == [12, 12, 14, 14, 14]
    # the cache key of graphs without the setting is the one from before it existed
    import hashlib
    import json

    from cgcnn.config import GRAPH_VERSION

    old = {"radius": 8.0, "max_neighbors": 12, "grow_radius": False, "min_distance": 0.5}
    blob = json.dumps({**old, "version": GRAPH_VERSION}, sort_keys=True)
    assert GraphSettings().key() == hashlib.sha256(blob.encode()).hexdigest()[:16]
    assert GraphSettings(angle_radius=3.0).key() != GraphSettings().key()


@pytest.mark.parametrize("bad", [0, -1.0, 9.0, "3"])
def test_a_bad_angle_radius_is_one_clear_error(bad):
    with pytest.raises(InputError, match="angle_radius"):
        GraphSettings(angle_radius=bad)


def test_the_basis_vanishes_at_the_cutoff_and_has_legendre_angles():
    basis = AngleBasis(3.0)
    from cgcnn.nn.three_body import ANGULAR, RADIAL, Triplets

    cos = torch.tensor([1.0, 0.5, -0.3, 0.2])
    triplets = Triplets(torch.tensor([0, 0, 0, 1]), torch.tensor([1, 1, 1, 0]), None, cos)
    values = basis(triplets, torch.tensor([1.5, 2.0])).reshape(4, RADIAL, ANGULAR)
    x = cos[:3]
    legendre = torch.stack([torch.ones_like(x), x, (3 * x**2 - 1) / 2, (5 * x**3 - 3 * x) / 2], 1)
    ratio = values[:3, 0, :] / values[:3, 0, :1]  # the angular part, P_0 = 1
    torch.testing.assert_close(ratio, legendre, rtol=1e-5, atol=1e-6)
    at_cutoff = basis(triplets, torch.tensor([1.5, 3.0]))
    assert torch.all(at_cutoff == 0)


def _model(seed: int = 0, **config) -> CGCNN:
    torch.manual_seed(seed)
    table = torch.rand(119, 16)
    model = CGCNN(
        CGCNNConfig(atom_input_len=16, atom_fea_len=16, h_fea_len=16, conv="threebody", **config),
        table,
    )
    for module in model.modules():  # batch norms with non-trivial statistics
        if isinstance(module, torch.nn.BatchNorm1d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return model.eval()


class _Graphs:
    """The minimal data set GraphBatcher reads."""

    def __init__(self, graphs):
        self.graphs, self.targets = graphs, None

    def __len__(self):
        return len(self.graphs)

    def graph(self, k):
        return self.graphs[k]


def _predict(model: CGCNN, structures, angle_radius=DEFAULT_ANGLE_RADIUS) -> np.ndarray:
    graphs = [featurize(s, angle_radius=angle_radius) for s in structures]
    batch = GraphBatcher(_Graphs(graphs), bond_vectors=True)(np.arange(len(graphs)))
    with torch.no_grad():
        return model(batch).numpy()[:, 0]


def _rotated(s: Structure) -> Structure:
    axis = np.array([1.0, 2.0, 3.0])
    op = SymmOp.from_axis_angle_and_translation(axis, 37.0)
    return Structure(
        Lattice(op.apply_rotation_only(s.lattice.matrix.T).T), s.species, s.frac_coords
    )


def _translated(s: Structure) -> Structure:
    return Structure(s.lattice, s.species, s.frac_coords + np.array([0.31, -0.17, 0.05]))


def _permuted(s: Structure) -> Structure:
    order = [3, 0, 4, 2, 1]
    return Structure(s.lattice, [s.species[k] for k in order], s.frac_coords[order])


@pytest.mark.parametrize("change", [_rotated, _translated, _permuted])
@pytest.mark.parametrize("name", ["cubic", "distorted"])
def test_the_prediction_is_invariant(change, name):
    model = _model()
    structure = _perovskite() if name == "cubic" else _distorted()
    before, after = _predict(model, [structure, change(structure)])
    assert after == pytest.approx(before, rel=1e-5, abs=1e-5)


@pytest.mark.parametrize("name", ["cubic", "distorted"])
def test_a_supercell_gives_the_same_intensive_prediction(name):
    model = _model()
    structure = _perovskite() if name == "cubic" else _distorted()
    supercells = [structure * (2, 1, 1), _permuted_supercell(structure)]
    values = _predict(model, [structure, *supercells])
    assert values[1:] == pytest.approx([values[0]] * 2, rel=1e-5, abs=1e-5)


def _atom_embeddings(model: CGCNN, structure: Structure, angle_radius) -> np.ndarray:
    graph = featurize(structure, angle_radius=angle_radius)
    batch = GraphBatcher(_Graphs([graph]), bond_vectors=True)(np.arange(1))
    with torch.no_grad():
        return model.atom_embeddings(batch).numpy()


def _unmatched(supercell: np.ndarray, cell: np.ndarray) -> float:
    """How far the supercell's atom vectors are from the nearest of the cell's (max abs)."""
    return max(float(np.abs(cell - row).max(axis=1).min()) for row in supercell)


def test_every_atom_of_a_supercell_is_an_atom_of_the_cell():
    """Atom by atom, not only on average; and the reason the graph keeps every neighbour
    within the angle radius: with only the 12 nearest, an O of cubic SrTiO3 keeps 2 of the 4
    Sr at 2.76 Å, and which 2 (at 90° or at 180° from each other) depends on how the atoms
    are numbered, so its angles change with the cell."""
    model = _model()
    cell = _perovskite()
    supercell = _permuted_supercell(cell)
    complete = _unmatched(
        _atom_embeddings(model, supercell, DEFAULT_ANGLE_RADIUS),
        _atom_embeddings(model, cell, DEFAULT_ANGLE_RADIUS),
    )
    assert complete < 5e-6
    cut = _unmatched(_atom_embeddings(model, supercell, None), _atom_embeddings(model, cell, None))
    assert cut > 5e-5  # measured: 1e-4


def _permuted_supercell(cell: Structure) -> Structure:
    big = cell * (2, 2, 2)
    order = np.random.default_rng(0).permutation(len(big))
    return Structure(big.lattice, [big.species[k] for k in order], big.frac_coords[order])


def _bent(angle_degrees: float) -> Structure:
    """O-C-O with 1.5 Å bonds at the given angle, alone in a 20 Å box."""
    angle = math.radians(angle_degrees)
    return Structure(
        Lattice.cubic(20.0),
        ["O", "C", "O"],
        [[1.5, 0, 0], [0, 0, 0], [1.5 * math.cos(angle), 1.5 * math.sin(angle), 0]],
        coords_are_cartesian=True,
    )


def test_it_tells_apart_what_bond_lengths_alone_cannot():
    """Within a 2 Å radius, the straight and the bent molecule have the same bonds (two of
    1.5 Å at C, one at each O; O-O is 3 or 2.12 Å): an edge-gated model cannot tell them
    apart, this one can."""
    molecules = [_bent(180.0), _bent(90.0)]
    graphs = [featurize(m, radius=2.0, angle_radius=2.0) for m in molecules]
    straight_bonds, bent_bonds = (g.distances.tolist() for g in graphs)
    assert straight_bonds == bent_bonds
    model = _model(radius=2.0, angle_radius=2.0)
    straight, bent = _predict(model, molecules, angle_radius=2.0)
    assert abs(straight - bent) > 1e-3
    torch.manual_seed(0)
    plain = CGCNN(
        CGCNNConfig(atom_input_len=16, atom_fea_len=16, h_fea_len=16, conv="edgegated", radius=2.0),
        torch.rand(119, 16),
    ).eval()
    batch = GraphBatcher(_Graphs(graphs))(np.arange(2))
    with torch.no_grad():
        a, b = plain(batch).numpy()[:, 0]
    assert a == pytest.approx(b, rel=1e-6)


def test_batches_from_data_items_equal_packed_batches():
    """PyG ``Data`` items carry pos, cell and offsets; the model computes the same bond
    vectors from them as the batcher packs."""
    from torch_geometric.data import Batch

    model = _model()
    structures = [_distorted(0), _distorted(1), _perovskite()]
    graphs = [featurize(s, angle_radius=DEFAULT_ANGLE_RADIUS) for s in structures]
    packed = GraphBatcher(_Graphs(graphs), bond_vectors=True)
    assert packed.edge_weight is None  # never merged
    np.testing.assert_allclose(
        packed.bond_vectors, np.concatenate([g.bond_vectors() for g in graphs])
    )
    with torch.no_grad():
        ours = model(packed(np.arange(3))).numpy()
        items = model(Batch.from_data_list([g.to_data() for g in graphs])).numpy()
    np.testing.assert_allclose(items, ours, rtol=1e-5, atol=1e-6)


def test_merged_edges_are_refused():
    model = _model()
    graphs = [featurize(_perovskite(), angle_radius=DEFAULT_ANGLE_RADIUS)]
    merged = GraphBatcher(_Graphs(graphs))(np.arange(1))  # merges the cubic cell's images
    assert merged.edge_weight is not None
    with pytest.raises(ValueError, match="unmerged edges"):
        model(merged)
