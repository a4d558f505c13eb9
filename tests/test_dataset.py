"""CrystalGraphDataset and the graph cache: reuse, rebuild on change, workers, reference match."""

from __future__ import annotations

import csv
import warnings

import numpy as np
import pytest
import torch
from pymatgen.core import Structure

from cgcnn import CrystalGraphDataset, featurize
from cgcnn.cache import GraphStore, decode_graph, encode_graph
from cgcnn.examples import example_structures
from conftest import make_cif, write_cgcnn_folder
from helpers import assert_matches_reference, reference_neighbors, shared


def test_encode_decode_round_trip():
    for structure in example_structures().values():
        graph = featurize(structure)
        back = decode_graph(encode_graph(graph))
        for field in ("atomic_numbers", "edge_index", "distances", "offsets", "pos", "cell"):
            np.testing.assert_array_equal(getattr(back, field), getattr(graph, field))
        assert back.radius == graph.radius


def test_dataset_items_reuse_and_rebuild(tmp_path, cache_dir):
    cifs = {f"c{k}": make_cif(a=3.8 + 0.05 * k) for k in range(4)}
    folder = write_cgcnn_folder(tmp_path / "d", cifs)
    ds = CrystalGraphDataset(folder, cache_dir=cache_dir, progress=False)
    assert len(ds) == 4 and ds.report.featurized == 4
    assert list(ds.ids) == list(cifs)
    np.testing.assert_allclose(ds.targets[:, 0], [0.5, 1.5, 2.5, 3.5])
    item = ds[2]
    assert item.id == "c2" and item.y.shape == (1, 1) and item.num_nodes == 5
    assert item.edge_index.shape == (2, 60)

    again = CrystalGraphDataset(folder, cache_dir=cache_dir, progress=False)
    assert (again.report.featurized, again.report.reused) == (0, 4)
    torch.testing.assert_close(again[2].distances, item.distances)

    # a changed file is rebuilt, and only it
    (folder / "c1.cif").write_text(make_cif(a=4.5))
    changed = CrystalGraphDataset(folder, cache_dir=cache_dir, progress=False)
    assert (changed.report.featurized, changed.report.reused) == (1, 3)
    assert changed[1].distances.min() > item.distances.min()

    # a changed setting rebuilds everything, and the old graphs stay cached
    other = CrystalGraphDataset(folder, cache_dir=cache_dir, max_neighbors=6, progress=False)
    assert other.report.featurized == 4 and other[0].edge_index.shape == (2, 30)
    back = CrystalGraphDataset(folder, cache_dir=cache_dir, progress=False)
    assert back.report.reused == 4


def test_dataset_from_structures_without_targets(cache_dir):
    ds = CrystalGraphDataset(example_structures(), cache_dir=cache_dir, progress=False)
    assert ds.targets is None and len(ds) == 10
    assert "y" not in ds[0]
    with pytest.raises(IndexError):
        ds[10]


def test_fewer_neighbours_warning(cache_dir, capsys):
    ds = CrystalGraphDataset(
        example_structures(), cache_dir=cache_dir, radius=4.0, max_neighbors=12, progress=True
    )
    assert ds.report.short_atoms > 0
    err = capsys.readouterr().err
    report = ds.report
    expected = (
        f"{report.short_atoms} atoms in {report.short_structures} structures have fewer than 12"
    )
    assert expected in err


def test_dataloader_workers_share_the_cache(tmp_path, cache_dir):
    from torch_geometric.loader import DataLoader

    cifs = {f"c{k}": make_cif(a=3.8 + 0.02 * k) for k in range(12)}
    ds = CrystalGraphDataset(
        write_cgcnn_folder(tmp_path / "d", cifs), cache_dir=cache_dir, progress=False
    )
    serial = list(DataLoader(ds, batch_size=5))
    parallel = list(DataLoader(ds, batch_size=5, num_workers=2))
    assert [b.num_graphs for b in parallel] == [5, 5, 2]
    for a, b in zip(serial, parallel, strict=True):
        assert a.id == b.id
        torch.testing.assert_close(a.distances, b.distances)
        torch.testing.assert_close(a.edge_index, b.edge_index)


def test_parallel_equals_serial_and_matches_reference(cache_dir, tmp_path):
    folder = shared("perovskite-energy")
    parallel = CrystalGraphDataset(folder, cache_dir=cache_dir, workers=2, progress=False)
    serial = CrystalGraphDataset(folder, cache_dir=tmp_path / "serial", workers=1, progress=False)
    assert parallel.report.featurized == serial.report.featurized == 670
    for k in range(0, 670, 37):
        a, b = parallel.graph(k), serial.graph(k)
        np.testing.assert_array_equal(a.edge_index, b.edge_index)
        np.testing.assert_array_equal(a.distances, b.distances)


def _check_dataset_against_reference(ds, structures: dict[str, Structure]) -> int:
    checked = 0
    index = {rid: k for k, rid in enumerate(ds.ids)}
    for rid, structure in structures.items():
        graph = ds.graph(index[rid])
        assert_matches_reference(graph, reference_neighbors(structure, 8.0, 12), rid)
        checked += 1
    return checked


def _folder_structures(folder):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {p.stem: Structure.from_file(p) for p in sorted(folder.glob("*.cif"))}


def _csv_subset(path, tmp_path, every: int):
    """Every ``every``-th row of a CSV as a new CSV, and its structures parsed by pymatgen."""
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1::every] if every > 1 else rows[1:]
    subset = tmp_path / path.name
    with open(subset, "w", newline="") as handle:
        csv.writer(handle).writerows([header, *body])
    id_col, cif_col = header.index("material_id"), header.index("cif")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        structures = {row[id_col]: Structure.from_str(row[cif_col], fmt="cif") for row in body}
    return subset, structures


@pytest.mark.parametrize("folder", ["perovskite-energy", "sample-regression"])
def test_dataset_from_folder_matches_reference(folder, cache_dir):
    path = shared(folder)
    ds = CrystalGraphDataset(path, cache_dir=cache_dir, progress=False)
    assert _check_dataset_against_reference(ds, _folder_structures(path)) == len(ds)


@pytest.mark.parametrize("name", ["perov5-dev.csv", "carbon24-dev.csv"])
def test_dataset_from_csv_matches_reference_tenth(name, cache_dir, tmp_path):
    subset, structures = _csv_subset(shared(name), tmp_path, every=10)
    ds = CrystalGraphDataset(subset, cache_dir=cache_dir, progress=False)
    assert _check_dataset_against_reference(ds, structures) == len(structures) == len(ds)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["perov5-dev.csv", "carbon24-dev.csv"])
def test_dataset_from_csv_matches_reference_all(name, cache_dir, tmp_path):
    subset, structures = _csv_subset(shared(name), tmp_path, every=1)
    ds = CrystalGraphDataset(subset, cache_dir=cache_dir, progress=False)
    assert _check_dataset_against_reference(ds, structures) == len(structures) == len(ds)
    for rid, structure in list(structures.items())[::7]:
        assert_matches_reference(featurize(structure), reference_neighbors(structure, 8.0, 12), rid)


def test_store_survives_pickling(cache_dir):
    import pickle

    store = GraphStore(cache_dir)
    store.insert("s", b"k" * 16, 1, 0, encode_graph(featurize(example_structures()["CsCl"])))
    store.commit()
    clone = pickle.loads(pickle.dumps(GraphStore(cache_dir, readonly=True)))
    assert clone.count() == 1


def test_items_are_built_fresh_from_the_cache(tmp_path, cache_dir):
    cifs = {f"c{k}": make_cif(a=3.8 + 0.02 * k) for k in range(3)}
    folder = write_cgcnn_folder(tmp_path / "d", cifs)
    ds = CrystalGraphDataset(folder, cache_dir=cache_dir, progress=False)
    first, again = ds[1], ds[1]
    assert first is not again  # nothing is held per item
    torch.testing.assert_close(first.distances, again.distances)
    np.testing.assert_array_equal(first.distances.numpy(), ds.graph(1).distances)
