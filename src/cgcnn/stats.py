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


#: metrics that are never negative (their interval is computed on a log scale)
POSITIVE = ("mae", "rmse", "loss", "seconds", "mse")
#: metrics that lie between 0 and 1 (their interval is computed on a logit scale)
UNIT_INTERVAL = ("accuracy", "auc", "f1", "precision", "recall")


def confidence_interval(
    values: Sequence[float] | np.ndarray, metric: str = "", confidence: float = 0.95
) -> tuple[float, float]:
    """The ``confidence`` interval ``(low, high)`` of the mean of ``values``, within the
    metric's range.

    A t-interval on the values themselves can leave the metric's range: two seeds of MAE 1
    and 8 give 4.5 ± 44, down to -40 for a number that cannot be negative.  So the interval
    is computed where the metric is unbounded and mapped back: on ``log x`` for metrics that
    are positive (MAE, RMSE, losses, times: ``exp(mean log x ± t s / sqrt n)``, around the
    geometric mean), on ``logit x`` for those in (0, 1) (accuracy, ROC-AUC, F1); other
    metrics (R², ...) get the plain t-interval ``mean ± t s / sqrt n``.  Values on the
    edge of the range (0, or 1 for a proportion) fall back to the plain interval, clipped to
    the range.  NaNs with fewer than two finite values.
    """
    x = _finite(values)
    if x.size < 2:
        return math.nan, math.nan
    name = metric.lower()
    quantile = t_quantile(0.5 + confidence / 2, x.size - 1)

    def around(v: np.ndarray) -> tuple[float, float]:
        half = quantile * v.std(ddof=1) / math.sqrt(v.size)
        return float(v.mean() - half), float(v.mean() + half)

    if any(token in name for token in POSITIVE):
        if (x > 0).all():
            low, high = around(np.log(x))
            return math.exp(low), math.exp(high)
        low, high = around(x)
        return max(low, 0.0), high
    if any(token in name for token in UNIT_INTERVAL):
        if ((x > 0) & (x < 1)).all():
            low, high = around(np.log(x / (1 - x)))
            return 1 / (1 + math.exp(-low)), 1 / (1 + math.exp(-high))
        low, high = around(x)
        return max(low, 0.0), min(high, 1.0)
    return around(x)
