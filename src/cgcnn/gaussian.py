"""Gaussian expansion of bond lengths, applied at batch time (cheap, so never cached).

Each distance d becomes a vector u with

    u_k = exp(-(d - mu_k)^2 / sigma^2),   mu_k = k * step,  k = 0 .. radius / step,

the original CGCNN's formula (its ``GaussianDistance`` with dmin = 0, dmax = radius,
var = sigma = step).  With the defaults, radius 8 Å and step 0.2 Å, that is 41 features.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class GaussianExpansion(nn.Module):
    """Expand distances (E,) on Gaussians centred every ``step`` Å from 0 to ``radius``.

    Args:
        radius: the last centre, Å (normally the graph's cutoff).
        step: spacing of the centres, Å.
        sigma: width, Å; defaults to ``step``.

    Shapes:
        input: (E,) distances, Å.
        output: (E, K) with K = round(radius / step) + 1.
    """

    def __init__(self, radius: float = 8.0, step: float = 0.2, sigma: float | None = None) -> None:
        super().__init__()
        if not (radius > 0 and step > 0):
            raise ValueError(f"radius and step must be positive, got radius={radius}, step={step}")
        n_centres = math.floor(radius / step + 1e-9) + 1
        self.radius = float(radius)
        self.step = float(step)
        self.sigma = float(step if sigma is None else sigma)
        self.register_buffer(
            "centres", torch.arange(n_centres, dtype=torch.float64).mul(step).float()
        )

    @property
    def num_features(self) -> int:
        return int(self.centres.shape[0])

    def forward(self, distances: torch.Tensor) -> torch.Tensor:
        diff = distances.unsqueeze(-1) - self.centres  # (E, K)
        return torch.exp(-(diff * diff) / (self.sigma * self.sigma))

    def extra_repr(self) -> str:
        return f"radius={self.radius}, step={self.step}, sigma={self.sigma}, K={self.num_features}"
