"""The convolution with one weight matrix shared by all neighbours, eq. 3 of the CGCNN paper."""

from __future__ import annotations

import torch
from torch import nn

from cgcnn.nn.resolve import make_activation


class SharedConv(nn.Module):
    r"""Graph convolution whose neighbour weights are the same for every neighbour.

    .. math::
        v_i' = g\Big(\mathrm{BN}\big(\big(\textstyle\sum_j v_j \oplus u_{ij}\big) W_c
               + v_i W_s + b\big)\Big)

    the paper's eq. 3 (and the CS182 homework's ``WeightShareConvLayer``): the neighbours'
    features and their bond features are summed, then one matrix W_c acts on the sum; the
    centre has its own matrix W_s.  Unlike the gated convolution it cannot weigh one
    neighbour more than another, and it has no residual connection.

    Args:
        atom_fea_len: F.
        edge_fea_len: G.
        activation: g, by name.
        batchnorm: use the batch norm over atoms.

    Shapes:
        x: (N, F); edge_index: (2, E) rows (neighbour j, centre i); edge_attr: (E, G);
        edge_weight: optional (E,) multiplicities of merged duplicate edges; output: (N, F).
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
        self.fc_neighbors = nn.Linear(atom_fea_len + edge_fea_len, atom_fea_len, bias=False)  # W_c
        self.fc_self = nn.Linear(atom_fea_len, atom_fea_len)  # W_s, b
        self.bn = nn.BatchNorm1d(atom_fea_len) if batchnorm else nn.Identity()
        self.act = make_activation(activation)

    def reset_parameters(self) -> None:
        """Draw the weights afresh and reset the batch norms (``__init__``'s layers are
        already fresh; calling this there would change every model of a given seed)."""
        self.fc_neighbors.reset_parameters()
        self.fc_self.reset_parameters()
        if isinstance(self.bn, nn.BatchNorm1d):
            self.bn.reset_parameters()

    def forward(
        self,
        x: torch.Tensor,
        edge_index: torch.Tensor,
        edge_attr: torch.Tensor,
        edge_weight: torch.Tensor | None = None,
    ) -> torch.Tensor:
        j, i = edge_index
        pair = torch.cat([x.index_select(0, j), edge_attr], dim=1)  # (E, F + G): v_j ⊕ u_ij
        if edge_weight is not None:  # in place: cat's backward does not keep its output
            pair.mul_(edge_weight.unsqueeze(1))
        summed = pair.new_zeros(x.shape[0], pair.shape[1]).index_add_(0, i, pair)  # (N, F + G)
        return self.act(self.bn(self.fc_neighbors(summed) + self.fc_self(x)))

    def extra_repr(self) -> str:
        return f"atom_fea_len={self.atom_fea_len}, edge_fea_len={self.edge_fea_len}"
