"""Neural-network layers and the CGCNN model (pure PyTorch / PyG, no I/O)."""

from cgcnn.nn.edge_gated_conv import EdgeGatedConv
from cgcnn.nn.gated_conv import GatedConv
from cgcnn.nn.model import CGCNN, CGCNNConfig
from cgcnn.nn.pooling import Pooling
from cgcnn.nn.shared_conv import SharedConv
from cgcnn.nn.three_body import ThreeBodyConv

__all__ = [
    "CGCNN",
    "CGCNNConfig",
    "EdgeGatedConv",
    "GatedConv",
    "Pooling",
    "SharedConv",
    "ThreeBodyConv",
]
