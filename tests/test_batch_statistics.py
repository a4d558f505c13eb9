"""Batch norm statistics recomputed with the weights that are evaluated."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure
from torch_geometric.data import Batch

from cgcnn.batch_statistics import RecomputeBatchNorm
from cgcnn.elements import AtomFeatures
from cgcnn.graph import featurize
from cgcnn.nn import CGCNN, CGCNNConfig


def _crystals(n: int) -> list:
    """n rock-salt and caesium-chloride cells of slightly different sizes."""
    graphs = []
    for k in range(n):
        a = 4.0 + 0.1 * k
        if k % 2:
            structure = Structure(Lattice.cubic(a), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
        else:
            structure = Structure.from_spacegroup(
                "Fm-3m", Lattice.cubic(a + 1.5), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
            )
        graphs.append(featurize(structure, max_neighbors=8).to_data())
    return graphs


class ListBatcher:
    """Crystal indices -> one PyG batch, like GraphBatcher."""

    def __init__(self, graphs: list) -> None:
        self.graphs = graphs
        self.calls: list[list[int]] = []

    def __call__(self, indices: np.ndarray) -> Batch:
        self.calls.append([int(k) for k in indices])
        return Batch.from_data_list([self.graphs[int(k)] for k in indices])


@pytest.fixture
def model() -> CGCNN:
    torch.manual_seed(0)
    config = CGCNNConfig(conv="edgegated", atom_fea_len=8, h_fea_len=8)
    return CGCNN(config, torch.from_numpy(AtomFeatures.cgcnn92().table))


def _batch_norms(model: torch.nn.Module) -> list[torch.nn.BatchNorm1d]:
    return [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d)]


def test_evaluation_equals_training_on_the_batch_the_statistics_came_from(model):
    graphs = _crystals(6)
    batcher = ListBatcher(graphs)
    for bn in _batch_norms(model):  # running averages far from the truth
        bn.running_mean.fill_(5.0)
        bn.running_var.fill_(1e4)
    batch = batcher(np.arange(6))
    with torch.no_grad():
        trained = model.train()(batch)
        stale = model.eval()(batch)
    RecomputeBatchNorm(batcher, np.arange(6), batch_size=6, crystals=6).recompute(
        model, torch.device("cpu")
    )
    with torch.no_grad():
        evaluated = model.eval()(batch)
    assert float((stale - trained).abs().max()) > 0.1  # what the test would catch
    # the running variance is the unbiased one (n / (n - 1) over ~100 rows): ~1 % apart
    torch.testing.assert_close(evaluated, trained, rtol=0.02, atol=0.02)


def test_the_statistics_are_the_mean_over_batches_and_the_layer_is_left_as_it_was(model):
    graphs = _crystals(5)
    batcher = ListBatcher(graphs)
    model.eval()
    recompute = RecomputeBatchNorm(batcher, np.arange(5), batch_size=2, crystals=4, seed=3)
    assert [len(b) for b in recompute.batches] == [2, 2]
    recompute.recompute(model, torch.device("cpu"))
    assert model.training is False
    norms = _batch_norms(model)
    assert norms and all(bn.momentum == 0.1 for bn in norms)
    assert all(int(bn.num_batches_tracked) == 2 for bn in norms)
    # the first layer's edge batch norm: the equal-weight mean of the two batches' means
    first = model.convs[0]
    means = []
    for indices in recompute.batches:
        batch = Batch.from_data_list([graphs[int(k)] for k in indices])
        captured: list[torch.Tensor] = []
        hook = first.bn_edge.register_forward_hook(
            lambda module, args, out, seen=captured: seen.append(args[0].detach())
        )
        with torch.no_grad():
            model.train()(batch)
        hook.remove()
        means.append(captured[0].mean(0))
    model.eval()
    recompute.recompute(model, torch.device("cpu"))
    torch.testing.assert_close(first.bn_edge.running_mean, (means[0] + means[1]) / 2)
    chosen = sorted(k for b in recompute.batches for k in b)
    assert len(set(chosen)) == 4 and set(chosen) <= set(range(5))


def test_more_crystals_than_the_training_set_uses_them_all():
    recompute = RecomputeBatchNorm(ListBatcher([]), np.arange(33), batch_size=32, crystals=1024)
    assert sorted(len(b) for b in recompute.batches) == [16, 17]
    assert sorted(np.concatenate(recompute.batches).tolist()) == list(range(33))
    assert RecomputeBatchNorm(ListBatcher([]), np.arange(0), 32, 1024).batches == []
