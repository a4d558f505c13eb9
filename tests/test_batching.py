"""GraphBatcher: the same batches as PyG's ``Batch.from_data_list``, from flat arrays."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch

from cgcnn.batching import GraphBatcher, IndexDataset, _ranges
from cgcnn.dataset import CrystalGraphDataset
from conftest import make_cif, write_cgcnn_folder

FIELDS = ("atomic_numbers", "edge_index", "distances", "batch", "ptr", "y")


@pytest.fixture
def dataset(tmp_path, cache_dir):
    cifs = {f"c{k}": make_cif(a=3.8 + 0.05 * k) for k in range(7)}
    cifs["nacl"] = make_cif(
        sites=[("Na", 0, 0, 0, 1), ("Cl", 0.5, 0.5, 0.5, 1), ("Na", 0.5, 0.5, 0, 1)], a=5.6
    )
    folder = write_cgcnn_folder(tmp_path / "data", cifs)
    return CrystalGraphDataset(folder, cache_dir=cache_dir, max_neighbors=5, progress=False)


def test_ranges_concatenates_aranges():
    starts, counts = np.array([4, 0, 10]), np.array([2, 0, 3])
    assert _ranges(starts, counts).tolist() == [4, 5, 10, 11, 12]
    assert _ranges(np.array([3]), np.array([0])).tolist() == []


@pytest.mark.parametrize("packed", [True, False])
@pytest.mark.parametrize("order", [[0, 1, 2, 3, 4, 5, 6, 7], [7, 2, 2, 5], [3]])
def test_batches_equal_pyg_collation(dataset, packed, order):
    batcher = GraphBatcher(dataset, packed=packed)
    assert batcher.packed is packed
    ours = batcher(order)
    reference = Batch.from_data_list([dataset[k] for k in order])
    assert ours.num_graphs == len(order)
    for name in FIELDS:
        mine, theirs = getattr(ours, name), getattr(reference, name)
        assert mine.dtype == theirs.dtype, name
        assert torch.equal(mine, theirs), name


def test_default_packs_small_sets_and_works_as_collate_fn(dataset):
    batcher = GraphBatcher(dataset)
    assert batcher.packed
    loader = torch.utils.data.DataLoader(
        IndexDataset([5, 1, 0]), batch_size=2, shuffle=False, collate_fn=batcher
    )
    sizes = [b.num_graphs for b in loader]
    assert sizes == [2, 1]
    first = next(iter(loader))
    assert torch.equal(first.y, torch.from_numpy(dataset.targets[[5, 1]]))


def test_precomputed_edge_expansion_matches_the_model(dataset):
    from cgcnn.nn.model import CGCNN, CGCNNConfig

    model = CGCNN(CGCNNConfig(atom_input_len=92, atom_fea_len=8, h_fea_len=8)).eval()
    batcher = GraphBatcher(dataset, edge_expansion=model.gaussian)
    batch = batcher([6, 0, 3])
    expected = model.gaussian(batch.distances)
    assert batch.edge_gaussians.shape == expected.shape
    torch.testing.assert_close(batch.edge_gaussians, expected)
    with torch.no_grad():
        with_table = model(batch)
        del batch.edge_gaussians
        torch.testing.assert_close(model(batch), with_table)
    # not packed: nothing precomputed, the model expands the distances itself
    assert not hasattr(GraphBatcher(dataset, packed=False, edge_expansion=model.gaussian)([1]),
                       "edge_gaussians")  # fmt: skip


def test_elements_from_the_packed_arrays_equal_the_datasets(dataset):
    expected = dataset.elements()
    for packed in (True, False):
        found = GraphBatcher(dataset, packed=packed).elements()
        assert found.dtype == np.int64 and found.tolist() == expected.tolist()
