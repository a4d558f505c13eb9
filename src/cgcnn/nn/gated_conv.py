"""The gated CGCNN convolution, eq. 4 of Xie & Grossman, PRL 120, 145301 (2018)."""

from __future__ import annotations

import torch
from torch import nn

from cgcnn.nn.resolve import make_activation
from cgcnn.nn.weighted_norm import weighted_batch_norm


class GatedConv(nn.Module):
    r"""CGCNN's gated graph convolution, computed as the original code does.

    .. math::
        z_{ij} = v_i \oplus v_j \oplus u_{ij}, \qquad
        (f_{ij}, c_{ij}) = \mathrm{BN}_1(z_{ij} W + b) \in \mathbb{R}^{F} \times \mathbb{R}^{F}

        v_i' = g\Big(v_i + \mathrm{BN}_2\big(\sum_{j} \sigma(f_{ij}) \odot g(c_{ij})\big)\Big)

    with g the activation (softplus in the paper), BN_1 a batch norm over edges and BN_2
    over atoms (both optional).  The linear layer on the concatenation is computed as
    ``W_i v_i + W_j v_j + W_u u_ij``: two products per atom instead of one per edge, the
    same numbers as the original's single product on the concatenation (``fc_full`` keeps
    the original's weight layout, so its checkpoints load unchanged).

    Args:
        atom_fea_len: F, the atom feature width.
        edge_fea_len: G, the width of the edge (Gaussian) features.
        activation: g, by name.
        batchnorm: use BN_1 and BN_2.

    Shapes:
        x: (N, F) atom features; edge_index: (2, E) rows (neighbour j, centre i);
        edge_attr: (E, G); edge_weight: optional (E,) multiplicities of merged duplicate
        edges (each row stands for that many identical edges: its message is counted that
        many times, in the sum and in BN_1's statistics); output: (N, F).
    """

    def __init__(
        self,
        atom_fea_len: int,
        edge_fea_len: int,
        activation: str = "softplus",
        batchnorm: bool = True,
    ) -> None:
        super().__init__()
        self.atom_fea_len = atom_fea_len
        self.edge_fea_len = edge_fea_len
        self.fc_full = nn.Linear(2 * atom_fea_len + edge_fea_len, 2 * atom_fea_len)
        self.bn1 = nn.BatchNorm1d(2 * atom_fea_len) if batchnorm else nn.Identity()
        self.bn2 = nn.BatchNorm1d(atom_fea_len) if batchnorm else nn.Identity()
        self.act_core = make_activation(activation)
        self.act_out = make_activation(activation)

    def reset_parameters(self) -> None:
        """Draw the weights afresh and reset the batch norms (``__init__``'s layers are
        already fresh; calling this there would change every model of a given seed)."""
        self.fc_full.reset_parameters()
        for bn in (self.bn1, self.bn2):
            if isinstance(bn, nn.BatchNorm1d):
                bn.reset_parameters()

    def forward(
        self,
        x: torch.Tensor,
        edge_index: torch.Tensor,
        edge_attr: torch.Tensor,
        edge_weight: torch.Tensor | None = None,
    ) -> torch.Tensor:
        f = self.atom_fea_len
        j, i = edge_index  # (E,), (E,)
        w = self.fc_full.weight  # (2F, 2F + G): columns for v_i, v_j, u_ij
        per_centre = x @ w[:, :f].T  # (N, 2F)
        per_neighbour = x @ w[:, f : 2 * f].T  # (N, 2F)
        gated = torch.addmm(self.fc_full.bias, edge_attr, w[:, 2 * f :].T)  # (E, 2F)
        # index_select, not per_centre[i]: its backward is index_add_, which sums in a fixed
        # order; the backward of advanced indexing accumulates in a thread-dependent order,
        # so two runs with the same seed drifted apart on a busy machine.
        # in place: one (E, 2F) buffer instead of three (addmm's backward does not need its
        # output, so autograd allows it)
        gated.add_(per_centre.index_select(0, i)).add_(per_neighbour.index_select(0, j))
        gated = weighted_batch_norm(gated, edge_weight, self.bn1)
        filt, core = gated.chunk(2, dim=1)  # (E, F) each
        messages = torch.sigmoid(filt) * self.act_core(core)  # (E, F)
        if edge_weight is not None:  # in place: mul's backward keeps its inputs, not this
            messages.mul_(edge_weight.unsqueeze(1))
        summed = torch.zeros_like(x).index_add_(0, i, messages)  # (N, F)
        return self.act_out(x + self.bn2(summed))

    def extra_repr(self) -> str:
        return f"atom_fea_len={self.atom_fea_len}, edge_fea_len={self.edge_fea_len}"
