"""The homework's model module: the layers and the network of part 3.

You write ``GatedConvLayer.forward`` (eq. 4 of Xie & Grossman, PRL 120, 145301, 2018),
``SharedConvLayer.forward`` (eq. 3), ``pool`` and ``CrystalGraphNet.forward``.  Do not rename
the layers created in ``__init__``: the checks copy their weights into the ``cgcnn`` package's
own layers and compare the outputs.

Shapes used throughout (one batch of B crystals):
    N atoms, E edges (directed: neighbour j -> centre i), F atom features after the
    embedding, G Gaussian (edge) features, H hidden features after pooling.
    atom_fea (N, F); edge_index (2, E), row 0 = neighbour j, row 1 = centre i;
    edge_fea (E, G); crystal_index (N,), the crystal 0..B-1 each atom belongs to.
"""

from __future__ import annotations

import torch
from torch import nn


class GatedConvLayer(nn.Module):
    """The gated convolution, eq. 4.

    v_i' = softplus(v_i + BN(sum_j sigmoid(z_ij W_f + b_f) * softplus(z_ij W_s + b_s))),
    z_ij = v_i ⊕ v_j ⊕ u_ij
    """

    def __init__(self, atom_fea_len: int, nbr_fea_len: int) -> None:
        super().__init__()
        self.atom_fea_len = atom_fea_len
        # one linear map of z_ij = v_i ⊕ v_j ⊕ u_ij gives the filter and the core (2F)
        self.fc_full = nn.Linear(2 * atom_fea_len + nbr_fea_len, 2 * atom_fea_len)
        self.bn1 = nn.BatchNorm1d(2 * atom_fea_len)  # over edges
        self.bn2 = nn.BatchNorm1d(atom_fea_len)  # over atoms
        self.sigmoid = nn.Sigmoid()
        self.softplus_core = nn.Softplus()
        self.softplus_out = nn.Softplus()

    def forward(
        self, atom_fea: torch.Tensor, edge_index: torch.Tensor, edge_fea: torch.Tensor
    ) -> torch.Tensor:
        """(N, F) new atom features.

        Args:
            atom_fea: (N, F); edge_index: (2, E), row 0 = neighbour j, row 1 = centre i;
            edge_fea: (E, G).
        """
        # TODO: return the (N, F) tensor of eq. 4.  Steps: (1) j, i = edge_index; (2) z, the
        # (E, 2F + G) tensor v_i ⊕ v_j ⊕ u_ij (torch.cat of atom_fea[i], atom_fea[j] and
        # edge_fea along dim=1, in that order); (3) self.fc_full(z), then self.bn1: (E, 2F);
        # (4) .chunk(2, dim=1) splits it into the filter (first F columns) and the core;
        # (5) the messages self.sigmoid(filter) * self.softplus_core(core), (E, F); (6) their
        # sum over the edges of each centre i, (N, F) (torch.zeros_like(atom_fea).index_add(0,
        # i, ...)); (7) self.softplus_out(atom_fea + self.bn2(sum)): the residual update.
        ...


class SharedConvLayer(nn.Module):
    """The convolution with one weight matrix shared by all neighbours, eq. 3.

    v_i' = softplus(BN((sum_j v_j ⊕ u_ij) W_c + v_i W_s + b))

    The paper's eq. 3 has no batch norm; this layer (like ``cgcnn.nn.SharedConv`` with
    ``batchnorm=True``, the package's default) adds one before the activation, as the gated
    layer has (see the notebook, section 3.2).
    """

    def __init__(self, atom_fea_len: int, nbr_fea_len: int) -> None:
        super().__init__()
        self.atom_fea_len = atom_fea_len
        self.fc_neighbors = nn.Linear(atom_fea_len + nbr_fea_len, atom_fea_len, bias=False)  # W_c
        self.fc_self = nn.Linear(atom_fea_len, atom_fea_len)  # W_s and b
        self.bn = nn.BatchNorm1d(atom_fea_len)
        self.softplus = nn.Softplus()

    def forward(
        self, atom_fea: torch.Tensor, edge_index: torch.Tensor, edge_fea: torch.Tensor
    ) -> torch.Tensor:
        """(N, F) new atom features.

        Args:
            atom_fea: (N, F); edge_index: (2, E), row 0 = neighbour j, row 1 = centre i;
            edge_fea: (E, G).
        """
        # TODO: return the (N, F) tensor of eq. 3.  Steps: (1) the (E, F + G) tensor
        # v_j ⊕ u_ij (torch.cat of atom_fea[j] and edge_fea along dim=1); (2) its sum over
        # the edges of each centre i, an (N, F + G) tensor (Tensor.index_add(0, i, ...) on
        # zeros); (3) self.fc_neighbors of that sum plus self.fc_self(atom_fea);
        # (4) self.bn, then self.softplus.
        ...


def pool(atom_fea: torch.Tensor, crystal_index: torch.Tensor, mode: str = "mean") -> torch.Tensor:
    """(B, F) one vector per crystal from its atoms' (N, F) vectors.

    Args:
        atom_fea: (N, F) atom features.
        crystal_index: (N,) crystal of each atom, 0..B-1 (B = crystal_index.max() + 1).
        mode: ``"mean"``, ``"max"`` or ``"sum"`` over the atoms of each crystal.
    """
    # TODO: return a (B, F) tensor.  torch_geometric.nn has global_mean_pool,
    # global_max_pool and global_add_pool(x, batch, size); or use
    # torch.zeros(B, F).index_add(0, crystal_index, atom_fea) (sum) and divide by the
    # number of atoms of each crystal (torch.bincount) for the mean.  Raise ValueError for
    # any other mode.
    ...


class CrystalGraphNet(nn.Module):
    """The whole network: embedding -> n_conv convolutions -> pooling -> MLP.

    Args:
        orig_atom_fea_len: width of the input atom features (92 for the CGCNN encoding).
        nbr_fea_len: G, width of the Gaussian edge features.
        atom_fea_len: F.
        n_conv: number of convolutions.
        h_fea_len: H, width of the hidden layer after pooling.
        conv: ``"gated"`` (eq. 4) or ``"shared"`` (eq. 3).
        pooling: ``"mean"``, ``"max"`` or ``"sum"``.
    """

    def __init__(
        self,
        orig_atom_fea_len: int = 92,
        nbr_fea_len: int = 41,
        atom_fea_len: int = 64,
        n_conv: int = 3,
        h_fea_len: int = 128,
        conv: str = "gated",
        pooling: str = "mean",
    ) -> None:
        super().__init__()
        layer = {"gated": GatedConvLayer, "shared": SharedConvLayer}[conv]
        self.pooling = pooling
        self.embedding = nn.Linear(orig_atom_fea_len, atom_fea_len)
        self.convs = nn.ModuleList(layer(atom_fea_len, nbr_fea_len) for _ in range(n_conv))
        self.conv_to_fc = nn.Linear(atom_fea_len, h_fea_len)
        self.softplus = nn.Softplus()
        self.fc_out = nn.Linear(h_fea_len, 1)

    def forward(
        self,
        atom_fea: torch.Tensor,
        edge_index: torch.Tensor,
        edge_fea: torch.Tensor,
        crystal_index: torch.Tensor,
    ) -> torch.Tensor:
        """(B, 1) one prediction per crystal.

        Args:
            atom_fea: (N, orig_atom_fea_len) input atom features (the 92-d encoding).
            edge_index: (2, E); edge_fea: (E, G); crystal_index: (N,).
        """
        # TODO: return a (B, 1) tensor: self.embedding -> (N, F); each layer of self.convs
        # in turn, conv(x, edge_index, edge_fea) -> (N, F); pool(x, crystal_index,
        # self.pooling) -> (B, F); self.conv_to_fc -> (B, H); self.softplus;
        # self.fc_out -> (B, 1).
        ...
