"""GraphBatcher: the same batches as PyG's ``Batch.from_data_list``, from flat arrays."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch

from cgcnn.batching import (
    GraphBatcher,
    GraphSubset,
    IndexDataset,
    _ranges,
    merge_duplicate_edges,
)
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
    batcher = GraphBatcher(dataset, packed=packed, merge_edges=False)
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


# ------------------------------------------------------------------ merged duplicate edges


def test_merge_duplicate_edges_keeps_one_row_per_identical_edge():
    crystal = np.array([0, 0, 0, 0, 0, 1, 1])
    # (neighbour, centre) rows; crystal 1 repeats crystal 0's (0 <- 1) edge: not a duplicate
    edge_index = np.array([[1, 2, 1, 1, 2, 1, 1], [0, 0, 0, 0, 0, 0, 0]])
    distances = np.array([2.0, 2.0, 2.0, 2.5, 2.0, 2.0, 2.0], dtype=np.float32)
    keep, counts = merge_duplicate_edges(crystal, edge_index, distances)
    kept = [(crystal[k], *edge_index[:, k], distances[k]) for k in keep]
    assert kept == [(0, 1, 0, 2.0), (0, 2, 0, 2.0), (0, 1, 0, 2.5), (1, 1, 0, 2.0)]
    assert counts.tolist() == [2, 2, 1, 2]
    # a distance one float32 step away is a different edge: nothing is approximated
    nudged = distances.copy()
    nudged[2] = np.nextafter(np.float32(2.0), np.float32(3.0))
    assert merge_duplicate_edges(crystal, edge_index, nudged)[1].tolist() == [1, 2, 1, 1, 2]
    empty = merge_duplicate_edges(np.zeros(0, int), np.zeros((2, 0), int), np.zeros(0, np.float32))
    assert empty[0].shape == (0,) and empty[1].shape == (0,)


def _edge_multiset(batch):
    """Sorted (centre, neighbour, distance) of every edge, merged rows repeated."""
    weight = getattr(batch, "edge_weight", None)
    repeats = np.ones(batch.distances.shape[0], int) if weight is None else weight.numpy()
    assert np.allclose(repeats, np.round(repeats)) and (repeats >= 1).all()
    rows = np.repeat(np.arange(batch.distances.shape[0]), repeats.astype(int))
    table = np.stack([batch.edge_index[1].numpy()[rows], batch.edge_index[0].numpy()[rows],
                      batch.distances.numpy()[rows]], axis=1)  # fmt: skip
    return table[np.lexsort(table.T[::-1])]


def test_merged_batches_stand_for_the_same_edges(dataset):
    merged, plain = GraphBatcher(dataset), GraphBatcher(dataset, merge_edges=False)
    assert merged.edge_weight is not None
    assert merged.distances.shape[0] < plain.distances.shape[0]  # the cubic cells merge
    assert merged.edge_weight.sum() == plain.distances.shape[0]
    order = [7, 2, 2, 5, 0]
    a, b = merged(order), plain(order)
    for name in ("atomic_numbers", "batch", "ptr", "y"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    np.testing.assert_array_equal(_edge_multiset(a), _edge_multiset(b))
    assert getattr(b, "edge_weight", None) is None


@pytest.mark.parametrize("conv", ["gated", "shared", "edgegated"])
def test_model_on_merged_edges_equals_the_model_on_all_edges(dataset, conv):
    import copy

    from cgcnn.nn.model import CGCNN, CGCNNConfig

    torch.manual_seed(0)
    config = CGCNNConfig(atom_input_len=92, atom_fea_len=16, h_fea_len=16, conv=conv)
    model = CGCNN(config)
    model.atom_table.normal_()
    twin = copy.deepcopy(model)
    order = [0, 3, 7, 7, 5, 1]
    merged = GraphBatcher(dataset, edge_expansion=model.gaussian)(order)
    plain = GraphBatcher(dataset, merge_edges=False)(order)
    out, out_twin = model(merged), twin(plain)
    torch.testing.assert_close(out, out_twin, rtol=1e-5, atol=1e-5)
    out.pow(2).sum().backward()
    out_twin.pow(2).sum().backward()
    # relative to the largest gradient: a bias right before a batch norm has a true
    # gradient of 0, which both compute only up to rounding
    scale = max(float(q.grad.abs().max()) for q in twin.parameters())
    for (name, p), q in zip(model.named_parameters(), twin.parameters(), strict=True):
        torch.testing.assert_close(p.grad / scale, q.grad / scale, rtol=0, atol=1e-5, msg=name)
    for (name, a), b in zip(model.named_buffers(), twin.buffers(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=name)  # running statistics
    model.eval(), twin.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(merged), twin(plain), rtol=1e-5, atol=1e-5)


def test_a_subset_packs_only_its_own_crystals_in_its_order(dataset):
    order = [6, 0, 7, 3]
    subset = GraphSubset(dataset, order)
    assert len(subset) == 4
    np.testing.assert_array_equal(subset.targets, dataset.targets[order])
    ours = GraphBatcher(subset, packed=True, merge_edges=False)
    assert ours.node_ptr[-1] == sum(dataset.graph(k).num_atoms for k in order)
    batch, reference = ours([0, 1, 2, 3]), Batch.from_data_list([dataset[k] for k in order])
    for field in FIELDS:
        torch.testing.assert_close(getattr(batch, field), getattr(reference, field))
    expected = np.unique(np.concatenate([dataset.graph(k).atomic_numbers for k in order]))
    np.testing.assert_array_equal(subset.elements(), expected)
    np.testing.assert_array_equal(GraphBatcher(subset, packed=True).elements(), expected)


@pytest.mark.parametrize("conv", ["gated", "edgegated"])
def test_predict_dataset_batches_like_pyg_loader(dataset, conv):
    from torch.utils.data import Subset
    from torch_geometric.loader import DataLoader

    from cgcnn.nn.model import CGCNN, CGCNNConfig
    from cgcnn.prediction import predict_dataset

    torch.manual_seed(0)
    model = CGCNN(CGCNNConfig(atom_input_len=92, atom_fea_len=16, h_fea_len=16, conv=conv))
    model.atom_table.normal_()
    model.eval()
    for data in (dataset, Subset(dataset, [5, 7, 0, 2])):
        items = [data[k] for k in range(len(data))]  # plain Data items: PyG's loader
        with torch.no_grad():
            reference = torch.cat([model.predict(b) for b in DataLoader(items, batch_size=3)])
        ours = predict_dataset(model, data, batch_size=3)
        assert ours.shape == (len(data), 1)
        np.testing.assert_allclose(ours, reference.numpy(), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(predict_dataset(model, items), ours, rtol=1e-5, atol=1e-5)


def test_prediction_in_chunks_equals_prediction_in_one_pass(dataset, monkeypatch):
    """Packing a few crystals at a time (memory of one chunk) changes no number and no order;
    an ensemble's members share the pass."""
    from torch.utils.data import Subset

    from cgcnn import prediction
    from cgcnn.nn.model import CGCNN, CGCNNConfig

    torch.manual_seed(0)
    models = [CGCNN(CGCNNConfig(atom_input_len=92, atom_fea_len=8, h_fea_len=8)) for _ in "ab"]
    for model in models:
        model.atom_table.normal_()
    data = Subset(dataset, [5, 7, 0, 2, 1, 3, 4])
    whole = prediction.predict_members(models, data, batch_size=2)
    packed: list[int] = []
    original = prediction.GraphSubset

    def counting(base, indices):
        packed.append(len(indices))
        return original(base, indices)

    monkeypatch.setattr(prediction, "PREDICT_CHUNK", 4)  # a multiple of the batch size
    monkeypatch.setattr(prediction, "GraphSubset", counting)
    chunked = prediction.predict_members(models, data, batch_size=2)
    assert packed == [4, 3]
    for a, b in zip(whole, chunked, strict=True):
        assert a.shape == (7, 1)
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(chunked[0], chunked[1])  # two models, two answers
