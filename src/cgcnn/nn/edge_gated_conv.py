"""An edge-gated convolution that also updates the edges (a residual gated graph convolution).

The node and edge update of Bresson & Laurent's residual gated graph ConvNets (2017), as
ALIGNN uses it on the atom graph (Choudhary & DeCost, npj Comput. Mater. 7, 185, 2021),
without ALIGNN's bond-angle line graph.  Unlike CGCNN's convolution, whose edge features stay
the Gaussian expansion of the bond length in every layer, here each bond carries a state
that every layer refines from the two atoms it joins.
"""

from __future__ import annotations

import torch
from torch import nn

from cgcnn.nn.resolve import make_activation
from cgcnn.nn.weighted_norm import weighted_batch_norm

#: Added to the sum of the gates, so an atom whose gates are all ~0 divides by a positive number.
GATE_EPS = 1e-6


class EdgeGatedConv(nn.Module):
    r"""Edge-gated convolution with edge updates.

    .. math::
        m_{ij} = \mathrm{BN}_e(A v_i + B v_j + C e_{ij}), \qquad
        g_{ij} = \sigma(m_{ij})

        v_i' = v_i + g\Big(\mathrm{BN}_v\Big(U v_i +
            \frac{\sum_j g_{ij} \odot (V v_j + W e_{ij})}{\sum_j g_{ij} + \epsilon}\Big)\Big),
            \qquad e_{ij}' = e_{ij} + g(m_{ij})

    with g the activation, σ the logistic sigmoid and BN_e / BN_v batch norms over edges and
    atoms (optional).  The gates g_ij decide, per feature, how much each neighbour j counts
    for centre i; they are normalised over i's neighbours.

    With ``edge_messages=True`` (what :class:`~cgcnn.nn.CGCNN` builds by default) the bond's
    own state enters the message, ``V v_j + W e_ij``: with the gates normalised, a message of
    ``V v_j`` alone averages to ``V v`` whenever the neighbours are alike (every atom of an
    elemental crystal), so no bond length ever reached the atoms and every carbon allotrope
    had the same crystal vector.  ``edge_messages=False`` (this class's default) is the
    residual gated graph convolution as published, and the layer that models of version 0.1
    were trained with (their checkpoints load so).
    A v_i and B v_j are computed per atom and gathered, like the split linear layer of
    :class:`~cgcnn.nn.GatedConv`.

    Args:
        atom_fea_len: F, the width of the atom features and of the edge states.
        activation: g, by name.
        batchnorm: use BN_e and BN_v.
        edge_messages: add ``W e_ij`` to the messages (see above).

    Shapes:
        x: (N, F) atom features; edge_index: (2, E) rows (neighbour j, centre i);
        edge_state: (E, F); edge_weight: optional (E,) multiplicities of merged duplicate
        edges (each row stands for that many identical edges: counted that many times in the
        sums and in BN_e's statistics); output: (N, F) atoms and (E, F) edge states.
    """

    def __init__(
        self,
        atom_fea_len: int,
        activation: str = "softplus",
        batchnorm: bool = True,
        edge_messages: bool = False,
    ):
        super().__init__()
        f = atom_fea_len
        self.atom_fea_len = f
        self.centre_gate = nn.Linear(f, f)  # A
        self.neighbour_gate = nn.Linear(f, f)  # B
        self.edge_gate = nn.Linear(f, f)  # C
        self.self_update = nn.Linear(f, f)  # U
        self.neighbour_update = nn.Linear(f, f)  # V
        self.bn_edge = nn.BatchNorm1d(f) if batchnorm else nn.Identity()
        self.bn_atom = nn.BatchNorm1d(f) if batchnorm else nn.Identity()
        self.act_atom = make_activation(activation)
        self.act_edge = make_activation(activation)
        # W: the bond's own state in the message (see the class docstring)
        self.edge_update = nn.Linear(f, f) if edge_messages else None

    def reset_parameters(self) -> None:
        """Draw the weights afresh and reset the batch norms (not called by ``__init__``,
        whose layers are already freshly drawn: calling it there would draw twice and change
        every model of a given seed)."""
        for linear in (
            self.centre_gate,
            self.neighbour_gate,
            self.edge_gate,
            self.self_update,
            self.neighbour_update,
            *([self.edge_update] if self.edge_update is not None else []),
        ):
            linear.reset_parameters()
        for bn in (self.bn_edge, self.bn_atom):
            if isinstance(bn, nn.BatchNorm1d):
                bn.reset_parameters()

    def forward(
        self,
        x: torch.Tensor,
        edge_index: torch.Tensor,
        edge_state: torch.Tensor,
        edge_weight: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        j, i = edge_index  # (E,), (E,)
        m = self.edge_gate(edge_state)  # (E, F)
        m = m + self.centre_gate(x).index_select(0, i) + self.neighbour_gate(x).index_select(0, j)
        m = weighted_batch_norm(m, edge_weight, self.bn_edge)
        gates = torch.sigmoid(m)  # (E, F)
        if edge_weight is not None:
            gates = gates * edge_weight.unsqueeze(1)
        values = self.neighbour_update(x).index_select(0, j)  # (E, F)
        if self.edge_update is not None:
            values = values + self.edge_update(edge_state)
        messages = gates * values  # (E, F)
        summed = torch.zeros_like(x).index_add_(0, i, messages)  # (N, F)
        norm = torch.zeros_like(x).index_add_(0, i, gates) + GATE_EPS  # (N, F)
        x = x + self.act_atom(self.bn_atom(self.self_update(x) + summed / norm))
        return x, edge_state + self.act_edge(m)

    def extra_repr(self) -> str:
        return f"atom_fea_len={self.atom_fea_len}"
