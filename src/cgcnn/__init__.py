"""cgcnn: Crystal Graph Convolutional Neural Networks.

Xie & Grossman, Phys. Rev. Lett. 120, 145301 (2018).  A crystal becomes a graph (atoms
are nodes, edges join each atom to its nearest neighbours across periodic images, each
edge carries its bond length), graph convolutions update the atoms, pooling makes one
vector per crystal and a small network predicts a property.

Importing this package is cheap: torch and pymatgen load only when a function that needs
them is first used.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it (loaded on first access)
_LAZY = {
    "InputError": "cgcnn.errors",
    "Crystal": "cgcnn.crystal",
    "featurize": "cgcnn.graph",
    "CrystalGraph": "cgcnn.graph",
    "GraphSettings": "cgcnn.graph",
    "GaussianExpansion": "cgcnn.gaussian",
    "CrystalGraphDataset": "cgcnn.dataset",
    "AtomFeatures": "cgcnn.elements",
    "resolve_atom_features": "cgcnn.elements",
    "read_structures": "cgcnn.io",
    "train": "cgcnn.training",
    "predict": "cgcnn.prediction",
    "load": "cgcnn.inference",
    "TrainedModel": "cgcnn.inference",
    "compare": "cgcnn.comparison",
    "CGCNN": "cgcnn.nn.model",
    "CGCNNConfig": "cgcnn.nn.model",
}

__all__ = [
    "CGCNN",
    "AtomFeatures",
    "CGCNNConfig",
    "Crystal",
    "CrystalGraph",
    "CrystalGraphDataset",
    "GaussianExpansion",
    "GraphSettings",
    "InputError",
    "TrainedModel",
    "__version__",
    "compare",
    "featurize",
    "load",
    "predict",
    "read_structures",
    "resolve_atom_features",
    "train",
]

if TYPE_CHECKING:
    from cgcnn.comparison import compare
    from cgcnn.crystal import Crystal
    from cgcnn.dataset import CrystalGraphDataset
    from cgcnn.elements import AtomFeatures, resolve_atom_features
    from cgcnn.errors import InputError
    from cgcnn.gaussian import GaussianExpansion
    from cgcnn.graph import CrystalGraph, GraphSettings, featurize
    from cgcnn.inference import TrainedModel, load
    from cgcnn.io import read_structures
    from cgcnn.nn.model import CGCNN, CGCNNConfig
    from cgcnn.prediction import predict
    from cgcnn.training import train


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cgcnn' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
