"""The CGCNN model: embedding -> n_conv convolutions -> pooling -> MLP head.

The model is pure PyTorch / PyG (no file I/O).  Everything needed to rebuild it is in its
:class:`CGCNNConfig`, and everything needed to turn its outputs into physical units (the
atom feature table, target standardisation, per-element references of extensive targets)
is in its buffers, so a checkpoint holds the whole predictor.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn
from torch_geometric.nn import global_add_pool, global_mean_pool

from cgcnn.config import DEFAULT_ANGLE_RADIUS
from cgcnn.gaussian import GaussianExpansion
from cgcnn.names import ACTIVATIONS, CONVOLUTIONS, POOLINGS, READOUTS, TASKS, resolve
from cgcnn.nn.convs import CONVOLUTION_LAYERS, make_convolutions
from cgcnn.nn.pooling import Pooling
from cgcnn.nn.resolve import make_activation
from cgcnn.nn.three_body import AngleBasis, bond_vectors, find_triplets

#: settings added after version 0.1, and the values its checkpoints were trained with
LEGACY: dict[str, Any] = {"edge_messages": False}


@dataclass
class CGCNNConfig:
    """Hyperparameters of :class:`CGCNN` (saved with the weights).

    Attributes:
        atom_input_len: width of the input atom features (92 for the CGCNN encoding).
        atom_fea_len: F, atom feature width after the embedding (original: 64).
        n_conv: number of convolutions (original: 3).
        h_fea_len: width of the hidden layers after pooling (original: 128).
        n_h: number of hidden layers after pooling (original: 1).
        conv: ``gated`` (eq. 4) | ``shared`` (eq. 3) | ``edgegated`` (edge-gated, with edge
            states updated by every layer: :class:`~cgcnn.nn.EdgeGatedConv`) |
            ``threebody`` (edge-gated after a three-body update of the bonds from the angles
            between them: :class:`~cgcnn.nn.ThreeBodyConv`) | ``none``.
        pooling: ``mean | max | sum | attention`` (ignored when ``extensive``).
        activation: ``softplus | relu | silu | sigmoid | tanh``.
        batchnorm: batch norms inside the convolutions.
        task: ``regression`` | ``classification``.
        n_targets: regression outputs.
        n_classes: classification classes.
        extensive: predict a contribution per atom and sum them (targets that scale with
            the number of atoms), on top of per-element references.
        dropout: dropout after the first hidden layer (the original uses 0.5 for
            classification, 0 for regression).
        radius: the graph cutoff, Å (last Gaussian centre).
        gaussian_step: spacing of the Gaussian centres, Å.
        original_head: apply the activation to the pooled vector before ``conv_to_fc`` as
            the original code does (softplus both before and after); for its checkpoints.
        edge_messages: ``edgegated`` only: the bond states enter the atoms' messages (see
            :class:`~cgcnn.nn.EdgeGatedConv`); ``False`` in checkpoints of version 0.1.
        readout: ``pooled`` (pool the atoms, then the head) | ``site`` (the head on every
            atom, then the mean of the per-site outputs: each site's output is its
            contribution; ``pooling`` is then not used).  Extensive models always sum
            per-site outputs.
        angle_radius: ``threebody`` only: bonds up to this (Å) form the triplets whose
            angles the model sees (default :data:`cgcnn.config.DEFAULT_ANGLE_RADIUS`); the
            graphs must keep every neighbour within it
            (:attr:`cgcnn.config.GraphSettings.angle_radius`).
        target_names: names of the targets (columns of the output files).
        target_units: their units (``""`` where unknown), for tables and figures.
        class_names: names of the classes.
    """

    atom_input_len: int = 92
    atom_fea_len: int = 64
    n_conv: int = 3
    h_fea_len: int = 128
    n_h: int = 1
    conv: str = "gated"
    pooling: str = "mean"
    activation: str = "softplus"
    batchnorm: bool = True
    task: str = "regression"
    n_targets: int = 1
    n_classes: int = 2
    extensive: bool = False
    dropout: float = 0.0
    radius: float = 8.0
    gaussian_step: float = 0.2
    original_head: bool = False
    readout: str = "pooled"
    edge_messages: bool = True
    angle_radius: float = 0.0
    target_names: list[str] = field(default_factory=list)
    target_units: list[str] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.conv = resolve("convolution", self.conv, CONVOLUTIONS)
        self.pooling = resolve("pooling", self.pooling, POOLINGS)
        self.activation = resolve("activation", self.activation, ACTIVATIONS)
        self.task = resolve("task", self.task, TASKS)
        for name in ("atom_input_len", "atom_fea_len", "h_fea_len", "n_targets", "n_classes"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.n_conv < 0 or self.n_h < 1:
            raise ValueError(f"n_conv must be >= 0 and n_h >= 1, got {self.n_conv}, {self.n_h}")
        if self.task == "classification" and self.n_classes < 2:
            raise ValueError(f"classification needs n_classes >= 2, got {self.n_classes}")
        if self.task == "classification" and self.extensive:
            raise ValueError("extensive applies to regression targets only")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        self.readout = resolve("readout", self.readout, READOUTS)
        if self.readout == "site" and self.pooling != "mean" and not self.extensive:
            # not an error: a checkpoint saved with this pair must still load
            warnings.warn(
                f"readout='site' averages the per-site outputs; pooling={self.pooling!r} is "
                "unused (it applies to readout='pooled')",
                stacklevel=3,
            )
        if CONVOLUTION_LAYERS[self.conv].sees_angles:
            if not self.angle_radius > 0:
                self.angle_radius = DEFAULT_ANGLE_RADIUS
            if self.angle_radius > self.radius:
                raise ValueError(
                    f"angle_radius ({self.angle_radius:g} Å) must not exceed the graph radius "
                    f"({self.radius:g} Å)"
                )

    @property
    def n_outputs(self) -> int:
        return self.n_classes if self.task == "classification" else self.n_targets

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> CGCNNConfig:
        """The config saved in a checkpoint; settings added since are given the value that
        reproduces what the checkpoint was trained as (:data:`LEGACY`)."""
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        return cls(**{**LEGACY, **known})


class CGCNN(nn.Module):
    """Crystal Graph Convolutional Neural Network.

    Args:
        config: the hyperparameters.
        atom_table: (119, atom_input_len) atom feature table indexed by Z (from
            :class:`cgcnn.elements.AtomFeatures`); stored as a buffer.

    Forward shapes (a PyG batch of B crystals, N atoms, E edges):
        atomic_numbers (N,), edge_index (2, E), distances (E,), batch (N,), and optionally
        edge_weight (E,) (multiplicities of merged duplicate edges) and edge_gaussians (E, G)
        -> (B, n_targets) standardised regression outputs, or (B, n_classes) logits.
        :meth:`predict` returns physical units (regression) or probabilities.
    """

    def __init__(self, config: CGCNNConfig, atom_table: torch.Tensor | None = None) -> None:
        super().__init__()
        self.config = config
        c = config
        if atom_table is None:
            atom_table = torch.zeros(119, c.atom_input_len)
        if atom_table.shape != (119, c.atom_input_len):
            raise ValueError(
                f"atom_table must be (119, {c.atom_input_len}), got {tuple(atom_table.shape)}"
            )
        self.register_buffer("atom_table", atom_table.detach().float().clone())
        # which rows of the table are defined (elements the model can read)
        self.register_buffer("atom_known", (self.atom_table != 0).any(dim=1))
        self.gaussian = GaussianExpansion(c.radius, c.gaussian_step)
        edge_len = self.gaussian.num_features
        self.embedding = nn.Linear(c.atom_input_len, c.atom_fea_len)
        edge_embedding, convs = make_convolutions(
            c.conv, c.n_conv, c.atom_fea_len, edge_len, c.activation, c.batchnorm, c.edge_messages
        )
        if edge_embedding is not None:
            # the Gaussians (E, G) -> the first edge states (E, F)
            self.edge_embedding = edge_embedding
        if self.needs_bond_vectors:
            self.angle_basis = AngleBasis(c.angle_radius)
        self.convs = convs
        self.pool = Pooling("sum" if c.extensive else c.pooling, c.atom_fea_len)
        self.conv_to_fc = nn.Linear(c.atom_fea_len, c.h_fea_len)
        self.fcs = nn.ModuleList(nn.Linear(c.h_fea_len, c.h_fea_len) for _ in range(c.n_h - 1))
        self.act = make_activation(c.activation)
        self.dropout = nn.Dropout(c.dropout) if c.dropout > 0 else nn.Identity()
        self.fc_out = nn.Linear(c.h_fea_len, c.n_outputs)
        # Target transform (set from the training split by cgcnn.targets):
        #   regression: y = out * target_std + target_mean
        #   extensive:  y = sum_atoms(out * target_std) + sum_atoms(ref(Z)),
        #               ref(Z) = atom_table[Z] @ ref_coef + ref_bias
        t = c.n_targets
        self.register_buffer("target_mean", torch.zeros(t))
        self.register_buffer("target_std", torch.ones(t))
        self.register_buffer("ref_coef", torch.zeros(c.atom_input_len, t))
        self.register_buffer("ref_bias", torch.zeros(t))

    def reset_parameters(self) -> None:
        """Draw every learned weight afresh (the embedding, each layer, the head) and reset
        the batch norms; the atom table and the target transforms stay."""
        for module in self.modules():
            if module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def set_atom_features(self, table: torch.Tensor, known: torch.Tensor) -> None:
        """Copy a (119, atom_input_len) feature table and its (119,) known-element mask in."""
        self.atom_table.copy_(table)
        self.atom_known.copy_(known)

    # ------------------------------------------------------------------ forward

    def atom_embeddings(self, batch: Any) -> torch.Tensor:
        """(N, F) atom features after the convolutions."""
        x = self.embedding(self.atom_table[batch.atomic_numbers])  # (N, F)
        edge_attr = getattr(batch, "edge_gaussians", None)  # precomputed by GraphBatcher
        if edge_attr is None:
            edge_attr = self.gaussian(batch.distances)  # (E, G)
        # (E,) multiplicities when GraphBatcher merged identical periodic-image edges
        edge_weight = getattr(batch, "edge_weight", None)
        if self.needs_bond_vectors:
            if edge_weight is not None:
                raise ValueError(
                    "a model that sees bond angles needs unmerged edges: batch with "
                    "GraphBatcher(..., bond_vectors=True)"
                )
            triplets = find_triplets(
                batch.edge_index, batch.distances, bond_vectors(batch), self.config.angle_radius
            )
            basis = self.angle_basis(triplets, batch.distances)  # (T, B)
            edge_state = self.edge_embedding(edge_attr)  # (E, F)
            for conv in self.convs:
                x, edge_state = conv(x, batch.edge_index, edge_state, None, triplets, basis)
            return x
        if CONVOLUTION_LAYERS[self.config.conv].updates_edges:
            edge_state = self.edge_embedding(edge_attr)  # (E, F)
            for conv in self.convs:
                x, edge_state = conv(x, batch.edge_index, edge_state, edge_weight)
            return x
        for conv in self.convs:
            x = conv(x, batch.edge_index, edge_attr, edge_weight)  # (N, F)
        return x

    def _head(self, h: torch.Tensor) -> torch.Tensor:
        h = self.dropout(self.act(self.conv_to_fc(h)))  # (*, H)
        for fc in self.fcs:
            h = self.act(fc(h))
        return self.fc_out(h)

    def forward(self, batch: Any) -> torch.Tensor:
        x = self.atom_embeddings(batch)
        index = _batch_index(batch)
        num_graphs = _num_graphs(batch)
        if self.config.extensive:
            per_atom = self._head(x)  # (N, T): each atom's contribution
            return global_add_pool(per_atom, index, num_graphs)  # (B, T)
        if self.config.readout == "site":
            per_site = self._head(x)  # (N, T | C): each site's output
            return global_mean_pool(per_site, index, num_graphs)  # (B, T | C)
        crystal = self.pool(x, index, num_graphs)  # (B, F)
        if self.config.original_head:
            crystal = self.act(crystal)
        return self._head(crystal)  # (B, T) or (B, C)

    def crystal_embeddings(self, batch: Any) -> torch.Tensor:
        """(B, F) pooled crystal vectors (before the MLP head)."""
        return self.pool(self.atom_embeddings(batch), _batch_index(batch), _num_graphs(batch))

    @torch.no_grad()
    def site_contributions(self, batch: Any) -> torch.Tensor:
        """(N, T) each atom's contribution to the prediction, in the target's units.

        Extensive: the head's output for the atom times the target scale plus its element's
        reference, ``c_i = h(v_i) * std + (a(Z_i) @ ref_coef + ref_bias)``; a crystal's
        contributions sum to its prediction.  ``readout="site"``: ``c_i = h(v_i) * std +
        mean``; they average to it.  A model that pools before its head has no such values:
        ``ValueError``.
        """
        if not self.has_site_contributions:
            raise ValueError("per-site contributions need a model with a per-site readout")
        per_atom = self._head(self.atom_embeddings(batch))  # (N, T), standardised
        if not self.config.extensive:  # readout site: the mean of these is the prediction
            return per_atom * self.target_std + self.target_mean
        reference = self.atom_table[batch.atomic_numbers] @ self.ref_coef + self.ref_bias
        return per_atom * self.target_std + reference

    @property
    def needs_bond_vectors(self) -> bool:
        """Whether the model sees bond angles: its batches must carry bond vectors (or
        ``pos``, ``cell`` and ``offsets``), with no merged edges
        (``GraphBatcher(..., bond_vectors=True)``)."""
        return CONVOLUTION_LAYERS[self.config.conv].sees_angles

    @property
    def has_site_contributions(self) -> bool:
        """Whether the prediction is the sum (extensive) or the mean (``readout="site"``) of
        one value per site, for a regression."""
        config = self.config
        return config.task == "regression" and (config.extensive or config.readout == "site")

    # ------------------------------------------------------------------ units

    def reference(self, batch: Any) -> torch.Tensor:
        """(B, T) sum of the per-element references of each crystal (extensive only)."""
        per_atom = self.atom_table[batch.atomic_numbers] @ self.ref_coef + self.ref_bias
        return global_add_pool(per_atom, _batch_index(batch), _num_graphs(batch))

    def to_physical(self, out: torch.Tensor, batch: Any) -> torch.Tensor:
        """Standardised outputs -> targets in their units (regression) or probabilities."""
        if self.config.task == "classification":
            return torch.softmax(out, dim=1)
        if self.config.extensive:
            return out * self.target_std + self.reference(batch)
        return out * self.target_std + self.target_mean

    def to_standard(self, y: torch.Tensor, batch: Any) -> torch.Tensor:
        """Targets in their units -> the standardised space the loss is computed in."""
        if self.config.extensive:
            return (y - self.reference(batch)) / self.target_std
        return (y - self.target_mean) / self.target_std

    @torch.no_grad()
    def predict(self, batch: Any) -> torch.Tensor:
        """Predictions in physical units (regression) or class probabilities."""
        return self.to_physical(self(batch), batch)


def _batch_index(batch: Any) -> torch.Tensor:
    index = getattr(batch, "batch", None)
    if index is None:
        return batch.atomic_numbers.new_zeros(batch.atomic_numbers.shape[0])
    return index


def _num_graphs(batch: Any) -> int:
    return int(getattr(batch, "num_graphs", 1) or 1)
