"""A convolution that sees bond angles: a three-body update of the bonds, then the edge-gated
convolution.

CGCNN's bonds carry only their lengths, so two crystals whose atoms have the same distances
to their neighbours but different angles between them look alike to it (graphene and a
strained diamond layer, the tilts of perovskite octahedra).  Following M3GNet's three-body
interaction (Chen & Ong, Nat. Comput. Sci. 2, 718, 2022), each short bond i→j gathers, from
every other short bond i→k of the same centre, a basis of the angle θ_jik and of the length
r_ik, weighted by a gate of atom k, and adds the result to its state before the atoms are
updated (:class:`~cgcnn.nn.EdgeGatedConv`).

Only bonds up to ``angle_radius`` (3 Å by default) form triplets: a 5-atom perovskite has
about 700 ordered pairs of such bonds, against 60 × 59 = 3,540 among its 60 edges.  The graph
keeps every neighbour within that radius (:attr:`cgcnn.config.GraphSettings.angle_radius`),
so the triplets of an atom do not depend on which of several equally distant atoms the
``max_neighbors`` cut kept, nor on the choice of cell, and the model stays invariant under
rotation, translation, permutation of the atoms and the choice of a supercell.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from cgcnn.nn.edge_gated_conv import EdgeGatedConv
from cgcnn.nn.resolve import make_activation

#: radial functions of r_ik in the triplet basis
RADIAL = 4
#: Legendre polynomials P_0 ... P_{ANGULAR-1} of cos θ_jik in the triplet basis
ANGULAR = 4


@dataclass
class Triplets:
    """The ordered pairs of short bonds that share a centre.

    Triplet t pairs the bond ``bond[t]`` (i→j, the one it updates) with the bond
    ``other[t]`` (i→k) of the same centre i; ``neighbour[t]`` is k and ``cos[t]`` is
    cos θ_jik.  Shapes: all (T,); ``bond``, ``other`` index edges, ``neighbour`` atoms.
    """

    bond: torch.Tensor
    other: torch.Tensor
    neighbour: torch.Tensor
    cos: torch.Tensor


def find_triplets(
    edge_index: torch.Tensor,
    distances: torch.Tensor,
    vectors: torch.Tensor,
    angle_radius: float,
) -> Triplets:
    """Every ordered pair of distinct bonds i→j, i→k no longer than ``angle_radius``.

    Args:
        edge_index: (2, E) rows (neighbour j, centre i).
        distances: (E,) bond lengths, Å.
        vectors: (E, 3) bond vectors from i to j's image, Å.
        angle_radius: the longest bond that takes part, Å.

    Returns:
        :class:`Triplets`, in the order of the short bonds grouped by centre; a centre with
        n short bonds has n (n - 1) of them.
    """
    short = torch.nonzero(distances <= angle_radius).squeeze(1)  # (S,)
    centre = edge_index[1, short]
    order = torch.argsort(centre, stable=True)
    short, centre = short[order], centre[order]
    _, counts = torch.unique_consecutive(centre, return_counts=True)  # bonds per centre
    size = torch.repeat_interleave(counts, counts)  # (S,) bonds of each bond's centre
    start = torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)  # (S,)
    first = torch.repeat_interleave(torch.arange(short.shape[0], device=short.device), size)
    within = torch.arange(first.shape[0], device=short.device) - torch.repeat_interleave(
        torch.cumsum(size, 0) - size, size
    )
    second = torch.repeat_interleave(start, size) + within
    distinct = first != second
    bond, other = short[first[distinct]], short[second[distinct]]
    cos = (vectors[bond] * vectors[other]).sum(dim=1) / (distances[bond] * distances[other])
    return Triplets(bond, other, edge_index[0, other], cos.clamp(-1.0, 1.0))


def bond_vectors(batch) -> torch.Tensor:
    """(E, 3) bond vectors of a batch: its ``bond_vectors`` (from
    :class:`~cgcnn.batching.GraphBatcher`), else ``pos[j] + offsets @ cell - pos[i]`` from the
    fields of PyG ``Data`` items (:mod:`cgcnn.fields`)."""
    given = getattr(batch, "bond_vectors", None)
    if given is not None:
        return given
    if getattr(batch, "pos", None) is None or getattr(batch, "offsets", None) is None:
        raise ValueError(
            "a model that sees bond angles needs batches with bond_vectors (GraphBatcher("
            "..., bond_vectors=True)) or with pos, cell and offsets"
        )
    j, i = batch.edge_index
    cell = batch.cell.reshape(-1, 3, 3)
    index = getattr(batch, "batch", None)
    crystal = torch.zeros_like(i) if index is None else index[i]
    images = torch.bmm(batch.offsets.to(cell.dtype).unsqueeze(1), cell[crystal]).squeeze(1)
    return batch.pos[j] - batch.pos[i] + images


class AngleBasis(nn.Module):
    r"""The triplet basis: radial functions of r_ik times Legendre polynomials of cos θ_jik,
    smoothly cut off in both bonds.

    .. math::
        b_{t, nl} = \sqrt{2 / r_c}\, \frac{\sin(n \pi r_{ik} / r_c)}{r_{ik}}\,
            P_l(\cos\theta_{jik})\; f(r_{ij})\, f(r_{ik}), \qquad
        f(r) = \left(1 - (r / r_c)^6\right)^2

    for n = 1 … :data:`RADIAL`, l = 0 … :data:`ANGULAR` − 1, r_c the angle radius.  The
    envelope f takes each triplet smoothly to zero at the cutoff (value and slope), so a bond
    that crosses it changes the prediction continuously, and stays near 1 well inside it:
    0.57 at 0.8 r_c, where ½(1 + cos(π r / r_c)) is down to 0.10 (with r_c = 3 Å, a
    perovskite's A-X bonds at 2.76 Å would count 0.016 each, their triplets 2.5e-4).

    Shapes: (T,) triplets -> (T, RADIAL * ANGULAR).
    """

    def __init__(self, angle_radius: float) -> None:
        super().__init__()
        self.angle_radius = float(angle_radius)
        self.register_buffer(
            "frequencies", torch.arange(1, RADIAL + 1, dtype=torch.float32) * math.pi
        )

    @property
    def num_features(self) -> int:
        return RADIAL * ANGULAR

    def forward(self, triplets: Triplets, distances: torch.Tensor) -> torch.Tensor:
        rc = self.angle_radius
        r_ij, r_ik = distances[triplets.bond], distances[triplets.other]  # (T,), (T,)
        radial = torch.sin(self.frequencies * (r_ik / rc).unsqueeze(1)) / r_ik.unsqueeze(1)
        radial = radial * math.sqrt(2.0 / rc)  # (T, RADIAL)
        legendre = [torch.ones_like(triplets.cos), triplets.cos]
        for degree in range(1, ANGULAR - 1):  # (l + 1) P_{l+1} = (2l + 1) x P_l - l P_{l-1}
            legendre.append(
                ((2 * degree + 1) * triplets.cos * legendre[degree] - degree * legendre[degree - 1])
                / (degree + 1)
            )
        angular = torch.stack(legendre[:ANGULAR], dim=1)  # (T, ANGULAR)
        envelope = _cutoff(r_ij, rc) * _cutoff(r_ik, rc)  # (T,)
        basis = radial.unsqueeze(2) * angular.unsqueeze(1)  # (T, RADIAL, ANGULAR)
        return basis.reshape(-1, self.num_features) * envelope.unsqueeze(1)

    def extra_repr(self) -> str:
        return f"angle_radius={self.angle_radius:g}, radial={RADIAL}, angular={ANGULAR}"


def _cutoff(r: torch.Tensor, rc: float) -> torch.Tensor:
    inside = (1.0 - (r / rc) ** 6) ** 2
    return torch.where(r < rc, inside, torch.zeros_like(r))


class ThreeBodyConv(nn.Module):
    r"""A three-body update of the bond states, then :class:`~cgcnn.nn.EdgeGatedConv`.

    .. math::
        s_{ij} = \sum_k b_{t(ijk)} \odot \sigma(W_k v_k), \qquad
        e_{ij} \leftarrow e_{ij} + g(W_s s_{ij}) \odot \sigma(W_g s_{ij})

    over the triplets t = (i→j, i→k) of :func:`find_triplets`, with b_t the
    :class:`AngleBasis`, v_k atom k's features, σ the logistic sigmoid and g the activation;
    then the atoms and all bonds are updated by the edge-gated convolution.  Bonds longer
    than the angle radius have s_ij = 0.

    Args:
        atom_fea_len: F, the width of the atom features and of the bond states.
        activation: g, by name.
        batchnorm: the edge-gated convolution's batch norms.
        edge_messages: the edge-gated convolution's bond messages.
        basis_len: B, the width of the triplet basis.

    Shapes:
        x: (N, F); edge_index: (2, E); edge_state: (E, F); edge_weight: must be ``None``
        (bonds that differ only in direction cannot be merged); triplets: T of them;
        basis: (T, B); output: (N, F) atoms and (E, F) bond states.
    """

    def __init__(
        self,
        atom_fea_len: int,
        activation: str = "softplus",
        batchnorm: bool = True,
        edge_messages: bool = True,
        basis_len: int = RADIAL * ANGULAR,
    ) -> None:
        super().__init__()
        f = atom_fea_len
        self.atom_gate = nn.Linear(f, basis_len)  # W_k
        self.bond_value = nn.Linear(basis_len, f)  # W_s
        self.bond_gate = nn.Linear(basis_len, f)  # W_g
        self.act = make_activation(activation)
        self.edge_gated = EdgeGatedConv(f, activation, batchnorm, edge_messages)

    def forward(
        self,
        x: torch.Tensor,
        edge_index: torch.Tensor,
        edge_state: torch.Tensor,
        edge_weight: torch.Tensor | None,
        triplets: Triplets,
        basis: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if edge_weight is not None:
            raise ValueError("a three-body convolution needs unmerged edges (edge_weight=None)")
        gates = torch.sigmoid(self.atom_gate(x)).index_select(0, triplets.neighbour)  # (T, B)
        summed = basis.new_zeros(edge_state.shape[0], basis.shape[1])
        summed = summed.index_add_(0, triplets.bond, basis * gates)  # (E, B)
        edge_state = edge_state + self.act(self.bond_value(summed)) * torch.sigmoid(
            self.bond_gate(summed)
        )
        return self.edge_gated(x, edge_index, edge_state, None)
