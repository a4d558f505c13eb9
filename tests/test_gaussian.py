"""The Gaussian expansion of bond lengths."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cgcnn import GaussianExpansion


def test_centres_match_the_original_formula():
    expansion = GaussianExpansion(radius=8.0, step=0.2)
    reference = np.arange(0.0, 8.0 + 0.2, 0.2)  # the original CGCNN's GaussianDistance centres
    assert expansion.num_features == reference.shape[0] == 41
    np.testing.assert_allclose(expansion.centres.numpy(), reference, atol=1e-6)


def test_values_and_shape():
    expansion = GaussianExpansion(radius=4.0, step=0.5, sigma=0.4)
    d = torch.tensor([0.0, 1.3, 3.99, 2.5])
    u = expansion(d)
    assert u.shape == (4, 9)
    mu = np.arange(9) * 0.5
    expected = np.exp(-((d.numpy()[:, None] - mu) ** 2) / 0.4**2)
    np.testing.assert_allclose(u.numpy(), expected, rtol=1e-5, atol=1e-7)
    # the Gaussian centred on a distance equals 1 there
    assert u[3, 5].item() == pytest.approx(1.0)


def test_bad_arguments():
    with pytest.raises(ValueError, match="must be positive"):
        GaussianExpansion(radius=0.0)
    with pytest.raises(ValueError, match="must be positive"):
        GaussianExpansion(step=-0.1)
