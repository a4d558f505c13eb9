"""The convolutions by name: the one registry that ``--conv`` and :class:`~cgcnn.nn.CGCNN`
read.

=============  ==========================================  ===========================
name           layer                                       bond features it takes
=============  ==========================================  ===========================
``gated``      :class:`~cgcnn.nn.GatedConv` (eq. 4)         Gaussians (E, G), fixed
``shared``     :class:`~cgcnn.nn.SharedConv` (eq. 3)        Gaussians (E, G), fixed
``edgegated``  :class:`~cgcnn.nn.EdgeGatedConv`             bond states (E, F), updated
``threebody``  :class:`~cgcnn.nn.ThreeBodyConv`             bond states, updated, and the
                                                           angles between short bonds
``none``       no convolution (the baseline)               -
=============  ==========================================  ===========================

The names are :data:`cgcnn.names.CONVOLUTIONS` (kept free of torch for the command line);
importing this module checks that the two lists agree.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from cgcnn.names import CONVOLUTIONS
from cgcnn.nn.edge_gated_conv import EdgeGatedConv
from cgcnn.nn.gated_conv import GatedConv
from cgcnn.nn.resolve import make_activation
from cgcnn.nn.shared_conv import SharedConv
from cgcnn.nn.three_body import ThreeBodyConv


@dataclass(frozen=True)
class Convolution:
    """A registered convolution.

    Attributes:
        layer: the layer class (``None``: no convolution).
        updates_edges: its layers take and return bond states (E, F) that an embedding of
            the Gaussians starts; otherwise they read the Gaussians (E, G) as they are.
        sees_angles: its layers also take the triplets of short bonds and their basis
            (:mod:`cgcnn.nn.three_body`); batches must carry bond vectors, unmerged.
    """

    layer: type[nn.Module] | None
    updates_edges: bool = False
    sees_angles: bool = False


#: name -> convolution, in the order of ``--conv``'s choices
CONVOLUTION_LAYERS: dict[str, Convolution] = {
    "gated": Convolution(GatedConv),
    "shared": Convolution(SharedConv),
    "edgegated": Convolution(EdgeGatedConv, updates_edges=True),
    "threebody": Convolution(ThreeBodyConv, updates_edges=True, sees_angles=True),
    "none": Convolution(None),
}
if tuple(CONVOLUTION_LAYERS) != CONVOLUTIONS:  # pragma: no cover - a developer's slip
    raise ImportError(f"cgcnn.names.CONVOLUTIONS {CONVOLUTIONS} != {tuple(CONVOLUTION_LAYERS)}")


def make_convolutions(
    name: str,
    n_conv: int,
    atom_fea_len: int,
    edge_fea_len: int,
    activation: str,
    batchnorm: bool,
    edge_messages: bool = True,
) -> tuple[nn.Module | None, nn.ModuleList]:
    """``(edge embedding or None, n_conv layers)`` of the convolution ``name``.

    For a convolution that updates bond states, the embedding maps the Gaussians (E, G) to
    the first states (E, F); it is made before the layers (the order in which their
    weights are drawn from the random generator).
    """
    conv = CONVOLUTION_LAYERS[name]
    if conv.layer is None:
        return None, nn.ModuleList()
    if conv.updates_edges:
        embedding = nn.Sequential(
            nn.Linear(edge_fea_len, atom_fea_len), make_activation(activation)
        )
        layers = nn.ModuleList(
            conv.layer(atom_fea_len, activation, batchnorm, edge_messages) for _ in range(n_conv)
        )
        return embedding, layers
    layers = nn.ModuleList(
        conv.layer(atom_fea_len, edge_fea_len, activation, batchnorm) for _ in range(n_conv)
    )
    return None, layers
