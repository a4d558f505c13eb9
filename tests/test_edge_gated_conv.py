"""The edge-gated convolution against its equations, written out one atom and one edge at a time."""

from __future__ import annotations

import torch

from cgcnn.nn import EdgeGatedConv
from cgcnn.nn.edge_gated_conv import GATE_EPS


def _graph(seed: int = 0, n_atoms: int = 5, n_edges: int = 14, width: int = 6):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n_atoms, width, generator=g)
    edge_index = torch.randint(0, n_atoms, (2, n_edges), generator=g)
    edge_index[1, :n_atoms] = torch.arange(n_atoms)  # every atom is a centre at least once
    edge_state = torch.randn(n_edges, width, generator=g)
    return x, edge_index, edge_state


def _by_hand(conv: EdgeGatedConv, x, edge_index, edge_state):
    """The docstring's equations with loops (no batch norm, softplus)."""
    act = torch.nn.functional.softplus
    m = torch.stack(
        [
            conv.centre_gate(x[i]) + conv.neighbour_gate(x[j]) + conv.edge_gate(edge_state[k])
            for k, (j, i) in enumerate(edge_index.T.tolist())
        ]
    )
    gates = torch.sigmoid(m)
    atoms = []
    for i in range(x.shape[0]):
        into_i = [k for k in range(edge_index.shape[1]) if int(edge_index[1, k]) == i]
        summed = sum(gates[k] * conv.neighbour_update(x[int(edge_index[0, k])]) for k in into_i)
        norm = sum(gates[k] for k in into_i) + GATE_EPS
        atoms.append(x[i] + act(conv.self_update(x[i]) + summed / norm))
    return torch.stack(atoms), edge_state + act(m)


def test_matches_the_equations_written_out():
    torch.manual_seed(0)
    conv = EdgeGatedConv(6, batchnorm=False)
    x, edge_index, edge_state = _graph()
    atoms, edges = conv(x, edge_index, edge_state)
    want_atoms, want_edges = _by_hand(conv, x, edge_index, edge_state)
    torch.testing.assert_close(atoms, want_atoms, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(edges, want_edges, rtol=1e-5, atol=1e-6)


def test_edge_order_does_not_matter_and_edges_follow_their_order():
    torch.manual_seed(0)
    conv = EdgeGatedConv(6).train()  # batch statistics of this batch
    x, edge_index, edge_state = _graph(seed=1)
    perm = torch.randperm(edge_index.shape[1], generator=torch.Generator().manual_seed(2))
    atoms, edges = conv(x, edge_index, edge_state)
    atoms_p, edges_p = conv(x, edge_index[:, perm], edge_state[perm])
    torch.testing.assert_close(atoms_p, atoms, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(edges_p, edges[perm], rtol=1e-5, atol=1e-5)


def test_a_weighted_edge_counts_as_that_many_copies():
    torch.manual_seed(0)
    conv = EdgeGatedConv(6).train()
    x, edge_index, edge_state = _graph(seed=3)
    weight = torch.tensor([1.0, 3.0, 1.0, 2.0] + [1.0] * (edge_index.shape[1] - 4))
    repeats = weight.long()
    atoms_w, edges_w = conv(x, edge_index, edge_state, weight)
    atoms_r, edges_r = conv(
        x, edge_index.repeat_interleave(repeats, dim=1), edge_state.repeat_interleave(repeats, 0)
    )
    torch.testing.assert_close(atoms_w, atoms_r, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(edges_w.repeat_interleave(repeats, 0), edges_r, rtol=1e-5, atol=1e-5)


def test_gates_average_identical_neighbours_whatever_their_number():
    """With identical neighbours the normalised sum is one neighbour's message."""
    torch.manual_seed(0)
    conv = EdgeGatedConv(4, batchnorm=False)
    x = torch.randn(2, 4)
    for n in (1, 3, 12):
        edge_index = torch.tensor([[1] * n, [0] * n])  # atom 1 seen n times by atom 0
        state = torch.randn(1, 4).expand(n, 4)  # each n: other gates, same average
        atoms, _ = conv(x, edge_index, state)
        if n == 1:
            first = atoms[0]
        torch.testing.assert_close(atoms[0], first, rtol=1e-5, atol=1e-5)


def test_with_edge_messages_the_bond_state_enters_the_message():
    """v_i' = v_i + g(U v_i + sum_j g_ij (V v_j + W e_ij) / sum_j g_ij): the model's default."""
    torch.manual_seed(0)
    conv = EdgeGatedConv(6, batchnorm=False, edge_messages=True)
    x, edge_index, edge_state = _graph()
    atoms, edges = conv(x, edge_index, edge_state)
    act = torch.nn.functional.softplus
    m = torch.stack(
        [
            conv.centre_gate(x[i]) + conv.neighbour_gate(x[j]) + conv.edge_gate(edge_state[k])
            for k, (j, i) in enumerate(edge_index.T.tolist())
        ]
    )
    gates = torch.sigmoid(m)
    want = []
    for i in range(x.shape[0]):
        into_i = [k for k in range(edge_index.shape[1]) if int(edge_index[1, k]) == i]
        summed = sum(
            gates[k]
            * (conv.neighbour_update(x[int(edge_index[0, k])]) + conv.edge_update(edge_state[k]))
            for k in into_i
        )
        norm = sum(gates[k] for k in into_i) + GATE_EPS
        want.append(x[i] + act(conv.self_update(x[i]) + summed / norm))
    torch.testing.assert_close(atoms, torch.stack(want), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(edges, edge_state + act(m), rtol=1e-5, atol=1e-6)
    # alike neighbours, other bonds: the atoms now differ (without W they would not)
    alike = torch.zeros(3, 6)
    ring = torch.tensor([[1, 2, 0], [0, 0, 1]])
    short, long = torch.full((3, 6), 0.5), torch.full((3, 6), -0.5)
    assert not torch.allclose(conv(alike, ring, short)[0], conv(alike, ring, long)[0])
