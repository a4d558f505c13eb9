"""Target transforms fitted on the training split: standardisation and per-element references.

Intensive targets are standardised, ``(y - mean) / std``.

Extensive targets (``--extensive``: a total energy per cell, say) are modelled as

    y = sum_atoms ref(Z_i) + std * sum_atoms h_i,     ref(Z) = f(Z) · a + b

where f(Z) is the element's atom feature vector (the same table the network reads) and
(a, b) are fitted by ridge least squares on the training crystals' summed features.  A
freely fitted value per element cannot say anything about an element the training split
never saw; a reference that is linear in the atom features can (an unseen element shares
group, period, electronegativity bins ... with seen ones), so unseen elements still get a
sensible baseline.  The network then learns the remaining per-atom contributions h_i.
"""

from __future__ import annotations

import numpy as np

#: Ridge strength, relative to the mean diagonal of the normal matrix.
RIDGE = 1e-6


def standardization(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation per target of (n, T) training targets (std >= 1e-8)."""
    mean = np.nanmean(y, axis=0)
    std = np.nanstd(y, axis=0)
    std = np.where(std > 1e-8, std, 1.0)
    return mean.astype(np.float32), std.astype(np.float32)


def fit_references(
    feature_sums: np.ndarray, n_atoms: np.ndarray, y: np.ndarray, ridge: float = RIDGE
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit ``y ≈ feature_sums @ a + n_atoms * b`` by ridge least squares.

    Args:
        feature_sums: (n, A) sum over each crystal's atoms of their feature vectors.
        n_atoms: (n,) atoms per crystal.
        y: (n, T) targets.

    Returns:
        a (A, T), b (T,), and the residual standard deviation per target (T,), the scale
        of the per-atom contributions the network learns.
    """
    design = np.concatenate([feature_sums, n_atoms[:, None]], axis=1).astype(np.float64)
    gram = design.T @ design
    lam = ridge * float(np.mean(np.diag(gram)))
    solution = np.linalg.solve(gram + lam * np.eye(gram.shape[0]), design.T @ y.astype(np.float64))
    coef, bias = solution[:-1], solution[-1]
    residual = y - design @ solution
    scale = np.std(residual, axis=0)
    scale = np.where(scale > 1e-8, scale, 1.0)
    return coef.astype(np.float32), bias.astype(np.float32), scale.astype(np.float32)
