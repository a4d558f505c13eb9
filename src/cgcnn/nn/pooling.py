"""Pooling: one vector per crystal from its atoms' vectors."""

from __future__ import annotations

import torch
from torch import nn
from torch_geometric.nn import global_add_pool, global_max_pool, global_mean_pool
from torch_geometric.nn.aggr import AttentionalAggregation

from cgcnn.names import POOLINGS, resolve


class Pooling(nn.Module):
    r"""Pool atom features into crystal features.

    ``mean`` (the paper's choice: the prediction of a crystal does not change when its cell
    is doubled, right for intensive targets), ``sum`` (scales with the number of atoms,
    right for extensive targets), ``max``, or ``attention`` (a learned softmax weighting of
    the atoms, :class:`torch_geometric.nn.aggr.AttentionalAggregation`).

    Args:
        mode: one of ``mean | max | sum | attention``.
        fea_len: F (needed by ``attention`` only).

    Shapes:
        x: (N, F); batch: (N,) crystal index of each atom; output: (B, F).
    """

    def __init__(self, mode: str = "mean", fea_len: int | None = None) -> None:
        super().__init__()
        self.mode = resolve("pooling", mode, POOLINGS)
        self.attention = None
        if self.mode == "attention":
            if fea_len is None:
                raise ValueError("attention pooling needs fea_len")
            self.attention = AttentionalAggregation(nn.Linear(fea_len, 1))

    def reset_parameters(self) -> None:
        """Draw the attention weights afresh (the other modes have none)."""
        if self.attention is not None:
            self.attention.reset_parameters()

    def forward(self, x: torch.Tensor, batch: torch.Tensor, num_graphs: int) -> torch.Tensor:
        if self.mode == "mean":
            return global_mean_pool(x, batch, num_graphs)
        if self.mode == "sum":
            return global_add_pool(x, batch, num_graphs)
        if self.mode == "max":
            return global_max_pool(x, batch, num_graphs)
        return self.attention(x, batch, dim_size=num_graphs)

    def extra_repr(self) -> str:
        return f"mode={self.mode}"
