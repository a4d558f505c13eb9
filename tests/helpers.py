"""Shared test helpers: where the shared data is, and the reference neighbour algorithm."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def shared(name: str) -> Path:
    """A path under ../shared/data, skipping the test when it is absent."""
    path = SHARED / name
    if not path.exists():
        pytest.skip(f"shared data {path} is absent (tests read real data from ../shared/data)")
    return path


def reference_neighbors(structure, radius: float, max_neighbors: int):
    """The reference algorithm: pymatgen get_all_neighbors, sorted by distance, first M.

    Returns a list (per atom) of (distances (k,), [(j, image tuple)]) sorted by distance.
    """
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        all_neighbors = structure.get_all_neighbors(radius)
    for neighbors in all_neighbors:
        neighbors = sorted(neighbors, key=lambda n: n.nn_distance)[:max_neighbors]
        out.append(
            (
                np.array([n.nn_distance for n in neighbors]),
                [(n.index, tuple(round(x) for x in n.image)) for n in neighbors],
            )
        )
    return out


def assert_matches_reference(graph, reference, label: str, tol: float = 1e-4) -> None:
    """Kept distances equal the reference's; indices too, except ties at the last distance."""
    centre = graph.edge_index[1]
    for i, (ref_d, ref_pairs) in enumerate(reference):
        mask = centre == i
        d = graph.distances[mask].astype(np.float64)
        assert d.shape == ref_d.shape, (
            f"{label} atom {i}: {d.shape[0]} vs {ref_d.shape[0]} neighbours"
        )
        np.testing.assert_allclose(np.sort(d), ref_d, atol=tol, err_msg=f"{label} atom {i}")
        if not len(d):
            continue
        # Every neighbour clearly inside the last shell (by either side's distance) must be
        # kept by the other side too; only ties at the last kept distance may differ.
        last = ref_d[-1]
        ours = [
            ((int(j), tuple(int(x) for x in img)), dist)
            for j, img, dist in zip(graph.edge_index[0][mask], graph.offsets[mask], d, strict=True)
        ]
        theirs = list(zip(ref_pairs, ref_d, strict=True))
        ours_all, theirs_all = {p for p, _ in ours}, {p for p, _ in theirs}
        assert {p for p, dist in theirs if dist < last - tol} <= ours_all, (
            f"{label} atom {i}: a reference neighbour before the last shell is missing"
        )
        assert {p for p, dist in ours if dist < last - tol} <= theirs_all, (
            f"{label} atom {i}: a neighbour before the last shell is not the reference's"
        )


def edge_table(graph) -> tuple[np.ndarray, np.ndarray]:
    """The graph's edges as a multiset: (E, 2) sorted (Z_i, Z_j) pairs and their (E,) distances."""
    z = graph.atomic_numbers
    j, i = graph.edge_index
    zi, zj, d = z[i], z[j], graph.distances.astype(np.float64)
    order = np.lexsort((d, zj, zi))
    return np.stack([zi[order], zj[order]], axis=1), d[order]


def assert_same_edges(graph_a, graph_b, repeat: int = 1, tol: float = 1e-5) -> None:
    """Both graphs hold the same multiset of (Z_i, Z_j, d) edges (``graph_b`` ``repeat`` times)."""
    pairs_a, d_a = edge_table(graph_a)
    pairs_b, d_b = edge_table(graph_b)
    if repeat > 1:
        pairs_a = np.repeat(pairs_a, repeat, axis=0)
        d_a = np.repeat(d_a, repeat)
    assert pairs_a.shape == pairs_b.shape, f"{len(pairs_a)} vs {len(pairs_b)} edges"
    np.testing.assert_array_equal(pairs_a, pairs_b)
    np.testing.assert_allclose(d_a, d_b, atol=tol)
