"""Small statistics for comparing training runs over seeds.

A configuration trained with ``n`` seeds gives ``n`` numbers (test MAEs, say).  Their
mean is the estimate, the sample standard deviation (``ddof=1``) their spread, and the
95 % confidence interval of the mean is ``mean ± t(0.975, n - 1) · std / sqrt(n)``: the
t distribution, not the normal one, because ``std`` is itself estimated from few runs.

Two configurations run with the same seeds are compared with a *paired* t-test on the
per-seed differences: seed ``k`` fixes the same initial weights (when the model shapes
match), the same batch order and, without a split file, the same random split, so the
differences cancel the part of the noise that both runs share.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats as _st


def _finite(values: Sequence[float] | np.ndarray) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).ravel()
    return array[np.isfinite(array)]


def t_quantile(p: float, dof: int) -> float:
    """The ``p`` quantile of Student's t distribution with ``dof`` degrees of freedom."""
    if dof < 1:
        return math.nan
    return float(_st.t.ppf(p, dof))


def ci_halfwidth(values: Sequence[float] | np.ndarray, confidence: float = 0.95) -> float:
    """Half-width of the ``confidence`` interval of the mean of ``values`` (t distribution).

    NaN with fewer than two finite values (no spread to estimate).
    """
    x = _finite(values)
    n = x.size
    if n < 2:
        return math.nan
    quantile = t_quantile(0.5 + confidence / 2, n - 1)
    return float(quantile * x.std(ddof=1) / math.sqrt(n))


def paired_t_test(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Two-sided paired t-test of ``a`` against ``b`` (the same seeds, in the same order).

    Returns:
        ``(t, p)``: the t statistic of the mean difference ``a - b`` and its two-sided
        p-value.  Pairs with a non-finite value are dropped; with fewer than two pairs
        both are NaN.  When every difference is the same the test is degenerate: ``p`` is
        1 if they are all zero (identical results) and 0 otherwise (a constant shift).
    """
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"paired samples differ in length: {x.size} vs {y.size}")
    keep = np.isfinite(x) & np.isfinite(y)
    d = x[keep] - y[keep]
    if d.size < 2:
        return math.nan, math.nan
    spread = d.std(ddof=1)
    if spread == 0 or not math.isfinite(spread):
        mean = float(d.mean())
        return (0.0, 1.0) if mean == 0 else (math.copysign(math.inf, mean), 0.0)
    result = _st.ttest_rel(x[keep], y[keep])
    return float(result.statistic), float(result.pvalue)
