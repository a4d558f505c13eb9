"""Training batches built straight from numpy arrays, without one PyG ``Data`` per crystal.

``torch_geometric.loader.DataLoader`` collates a list of ``Data`` objects attribute by
attribute (``Batch.from_data_list``): about 5.5 ms for 256 perovskites, ~7 % of a training
step with the original CGCNN's settings.  :class:`GraphBatcher` instead keeps every crystal
of a dataset in a few flat arrays (``packed``) and cuts a batch out of them with vectorised
index arithmetic (~0.5 ms for the same batch), or, for data sets too large to hold, reads
the graphs from the cache and concatenates their arrays.  Either way the batch is the same
``torch_geometric.data.Batch`` the PyG loader would make (fields ``atomic_numbers``,
``edge_index``, ``distances``, ``y``, ``batch``, ``ptr``), crystal for crystal, so the
numbers do not change.

When packing, edges that are exact copies of each other -- the same centre, the same
neighbour atom (another periodic image of it) and the same distance -- are merged into one
row with a multiplicity (``edge_weight``).  Their messages are identical, so the model
counts each merged row that many times (in the sums and the edge batch norm, see
:mod:`cgcnn.nn.weighted_norm`) and computes the same function on fewer rows: 2.28x fewer
edges on the Castelli perovskites (5-atom cells), 1.15x on the homework's Materials
Project perovskites, none on large or distorted cells.

Use it as the ``collate_fn`` of a DataLoader over :class:`IndexDataset`:

>>> batcher = GraphBatcher(dataset)                                       # doctest: +SKIP
>>> loader = DataLoader(IndexDataset(train_idx), batch_size=64, collate_fn=batcher)  # +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

#: Pack the whole data set into flat arrays when it has at most this many edges
#: (12 bytes an edge: two int32 indices and a float32 distance; 60M edges ≈ 0.7 GB).
PACK_EDGE_LIMIT = 60_000_000

#: Precompute the edges' Gaussian expansion when the table takes at most this many bytes.
EDGE_FEATURE_BYTES = 512 * 1024**2


class IndexDataset(Dataset):
    """A dataset whose items are the dataset indices it was given (for :class:`GraphBatcher`)."""

    def __init__(self, indices: Sequence[int] | np.ndarray) -> None:
        self.indices = np.asarray(indices, dtype=np.int64)

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    def __getitem__(self, position: int) -> int:
        return int(self.indices[position])


class GraphSubset:
    """The crystals ``indices`` of a dataset, in that order, as a dataset :class:`GraphBatcher`
    can batch (``graph``, ``targets``, ``elements``, ``len``), so that packing a subset reads
    and holds only its own graphs."""

    def __init__(self, dataset, indices: Sequence[int] | np.ndarray) -> None:
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64)
        targets = dataset.targets
        self.targets = None if targets is None else np.asarray(targets)[self.indices]

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    def graph(self, index: int):
        return self.dataset.graph(int(self.indices[index]))

    def elements(self) -> np.ndarray:
        from cgcnn.dataset import distinct_elements

        return distinct_elements(self)


def merge_duplicate_edges(
    crystal: np.ndarray, edge_index: np.ndarray, distances: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Rows that keep one edge of each group of identical edges, and the group sizes.

    Edges are identical when they have the same crystal, centre, neighbour and the same
    float32 distance (bit for bit: no tolerance, so nothing is approximated).

    Args:
        crystal: (E,) crystal of each edge.
        edge_index: (2, E) local (neighbour, centre) indices.
        distances: (E,) float32 distances.

    Returns:
        keep: (U,) row indices into the edges, ordered by (crystal, centre, distance,
        neighbour); counts: (U,) how many edges each kept row stands for.
    """
    bits = np.ascontiguousarray(distances, dtype=np.float32).view(np.int32)
    # distances are non-negative, so their bit patterns sort as the numbers do
    order = np.lexsort((edge_index[0], bits, edge_index[1], crystal))
    if order.shape[0] == 0:
        return order, np.zeros(0, dtype=np.int64)
    same_as_previous = np.ones(order.shape[0] - 1, dtype=bool)
    for key in (crystal, edge_index[1], bits, edge_index[0]):
        sorted_key = key[order]
        same_as_previous &= sorted_key[1:] == sorted_key[:-1]
    starts = np.concatenate([[0], np.flatnonzero(~same_as_previous) + 1])
    counts = np.diff(np.append(starts, order.shape[0]))
    return order[starts], counts


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + c)`` for each (s, c), without a Python loop."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(counts)
    within = np.arange(total, dtype=np.int64) - np.repeat(ends - counts, counts)
    return np.repeat(starts, counts) + within


class GraphBatcher:
    """Collate crystals of a :class:`~cgcnn.dataset.CrystalGraphDataset` into a PyG ``Batch``.

    Args:
        dataset: the dataset (its graphs and targets are read from it).
        packed: hold every graph in flat arrays (default: when the data set has at most
            ``PACK_EDGE_LIMIT`` edges, judged from its first crystals); otherwise each batch
            reads its graphs from the cache.
        edge_expansion: the model's distance expansion (``model.gaussian``); when given and
            the data are packed, every distance is expanded once and batches carry the rows
            as ``edge_gaussians`` (E, G), which the model then uses as they are.
        merge_edges: when packed, merge identical periodic-image edges into one row each
            and give batches their multiplicities as ``edge_weight`` (E,) (only when the
            data set has any); the model's outputs and gradients are unchanged up to
            floating-point rounding.
        bond_vectors: give batches each edge's vector from centre to neighbour,
            ``bond_vectors`` (E, 3) float32 in Å (for a model that sees bond angles, see
            :attr:`cgcnn.nn.CGCNN.needs_bond_vectors`).  Edges are then never merged: two
            images at the same distance point in different directions.

    Calling the batcher with a list of dataset indices returns the ``Batch`` of those
    crystals in that order: ``atomic_numbers`` (N,), ``edge_index`` (2, E) with rows
    (neighbour, centre) offset into the batch, ``distances`` (E,), ``batch`` (N,),
    ``ptr`` (B + 1,), when the dataset has targets ``y`` (B, T), when duplicate edges
    were merged ``edge_weight`` (E,), and when asked for ``bond_vectors`` (E, 3).
    """

    def __init__(
        self,
        dataset,
        packed: bool | None = None,
        edge_expansion=None,
        merge_edges: bool = True,
        bond_vectors: bool = False,
    ) -> None:
        self.dataset = dataset
        self.with_vectors = bool(bond_vectors)
        self.merge_edges = merge_edges and not self.with_vectors
        self.targets = None if dataset.targets is None else np.asarray(dataset.targets, np.float32)
        if packed is None:
            packed = self._estimated_edges() <= PACK_EDGE_LIMIT
        self.packed = bool(packed)
        self.edge_features: np.ndarray | None = None
        if self.packed:
            self._pack()
            if edge_expansion is not None:
                self.expand_edges(edge_expansion)

    def elements(self):
        """(K,) sorted distinct atomic numbers of the data set (from the packed arrays when
        packed, so the graphs are not read a second time; else ``dataset.elements()``)."""
        if not self.packed:
            return self.dataset.elements()
        return np.unique(self.atomic_numbers).astype(np.int64)

    def expand_edges(self, expansion) -> None:
        """Expand every distance once (when packed and the table fits in
        ``EDGE_FEATURE_BYTES``); batches then carry the rows as ``edge_gaussians``.

        The Gaussian expansion costs ~5 ms per batch of 256 perovskites (15k edges x 41
        exponentials), ~7 % of a training step; gathering precomputed rows costs ~0.3 ms.
        """
        if not self.packed:
            return
        width = int(expansion(torch.zeros(1)).shape[-1])
        if self.distances.shape[0] * width * 4 > EDGE_FEATURE_BYTES:
            return
        table = np.empty((self.distances.shape[0], width), dtype=np.float32)
        with torch.no_grad():
            for start in range(0, table.shape[0], 1 << 20):
                chunk = torch.from_numpy(self.distances[start : start + (1 << 20)])
                table[start : start + chunk.shape[0]] = expansion(chunk).numpy()
        self.edge_features = table

    def _estimated_edges(self) -> float:
        n = len(self.dataset)
        sample = min(n, 64)
        if sample == 0:
            return 0.0
        edges = sum(self.dataset.graph(k).edge_index.shape[1] for k in range(sample))
        return edges / sample * n

    def _pack(self, chunk: int = 8192) -> None:
        # chunk by chunk, so that no more than `chunk` graph objects live at once
        atoms, edges, numbers, edge_index, distances, weights = [], [], [], [], [], []
        vectors = []
        for start in range(0, len(self.dataset), chunk):
            graphs = [
                self.dataset.graph(k) for k in range(start, min(start + chunk, len(self.dataset)))
            ]
            atoms.append(np.array([g.num_atoms for g in graphs], dtype=np.int64))
            edges.append(np.array([g.edge_index.shape[1] for g in graphs], dtype=np.int64))
            numbers.append(np.concatenate([g.atomic_numbers for g in graphs]).astype(np.int16))
            # indices local to each crystal, so a crystal's slice can go anywhere in a batch
            edge_index.append(
                np.concatenate([g.edge_index for g in graphs], axis=1).astype(np.int32)
            )
            distances.append(np.concatenate([g.distances for g in graphs]).astype(np.float32))
            if self.with_vectors:
                vectors.append(np.concatenate([g.bond_vectors() for g in graphs]))
            if self.merge_edges:
                crystal = np.repeat(np.arange(len(graphs)), edges[-1])
                keep, counts = merge_duplicate_edges(crystal, edge_index[-1], distances[-1])
                edge_index[-1] = edge_index[-1][:, keep]
                distances[-1] = distances[-1][keep]
                edges[-1] = np.bincount(crystal[keep], minlength=len(graphs))
                weights.append(counts.astype(np.float32))
        self.node_ptr = np.concatenate([[0], np.cumsum(np.concatenate(atoms or [[]]))]).astype(
            np.int64
        )
        self.edge_ptr = np.concatenate([[0], np.cumsum(np.concatenate(edges or [[]]))]).astype(
            np.int64
        )
        self.atomic_numbers = np.concatenate(numbers or [np.zeros(0, np.int16)])
        self.edge_index = np.concatenate(edge_index or [np.zeros((2, 0), np.int32)], axis=1)
        self.distances = np.concatenate(distances or [np.zeros(0, np.float32)])
        self.bond_vectors: np.ndarray | None = None
        if self.with_vectors:
            self.bond_vectors = np.concatenate(vectors or [np.zeros((0, 3), np.float32)])
        self.edge_weight: np.ndarray | None = None
        if weights and any((w != 1).any() for w in weights):
            self.edge_weight = np.concatenate(weights)

    def __call__(self, indices: Sequence[int]):
        from torch_geometric.data import Batch

        idx = np.asarray(indices, dtype=np.int64)
        edge_features = weights = vectors = None
        if self.packed:
            atoms = self.node_ptr[idx + 1] - self.node_ptr[idx]
            edges = self.edge_ptr[idx + 1] - self.edge_ptr[idx]
            numbers = self.atomic_numbers[_ranges(self.node_ptr[idx], atoms)]
            edge_rows = _ranges(self.edge_ptr[idx], edges)
            local = self.edge_index[:, edge_rows]
            distances = self.distances[edge_rows]
            if self.edge_features is not None:
                edge_features = torch.from_numpy(self.edge_features[edge_rows])
            if self.edge_weight is not None:
                weights = torch.from_numpy(self.edge_weight[edge_rows])
            if self.bond_vectors is not None:
                vectors = self.bond_vectors[edge_rows]
        else:
            graphs = [self.dataset.graph(int(k)) for k in idx]
            atoms = np.array([g.num_atoms for g in graphs], dtype=np.int64)
            edges = np.array([g.edge_index.shape[1] for g in graphs], dtype=np.int64)
            numbers = np.concatenate([g.atomic_numbers for g in graphs])
            local = np.concatenate([g.edge_index for g in graphs], axis=1)
            distances = np.concatenate([g.distances for g in graphs]).astype(np.float32)
            if self.with_vectors:
                vectors = np.concatenate([g.bond_vectors() for g in graphs])
        ptr = np.concatenate([[0], np.cumsum(atoms)])
        edge_index = local.astype(np.int64) + np.repeat(ptr[:-1], edges)
        batch = Batch(
            atomic_numbers=torch.from_numpy(numbers.astype(np.int64)),
            edge_index=torch.from_numpy(edge_index),
            distances=torch.from_numpy(np.ascontiguousarray(distances, dtype=np.float32)),
            batch=torch.from_numpy(np.repeat(np.arange(len(idx), dtype=np.int64), atoms)),
            ptr=torch.from_numpy(ptr),
            num_nodes=int(ptr[-1]),
        )
        if self.targets is not None:
            batch.y = torch.from_numpy(self.targets[idx])
        if edge_features is not None:
            batch.edge_gaussians = edge_features
        if weights is not None:
            batch.edge_weight = weights
        if vectors is not None:
            batch.bond_vectors = torch.from_numpy(np.ascontiguousarray(vectors))
        return batch
