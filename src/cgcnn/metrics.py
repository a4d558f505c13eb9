"""Metrics of predictions: plain numpy, defined (NaN rather than an exception) when a split
holds a single class or nothing at all.

* :func:`regression_metrics` - MAE, RMSE and R²;
* :func:`roc_auc` and :func:`roc_curve` - the area under the ROC curve from average ranks
  (ties count one half) and the curve itself;
* :func:`classification_metrics` - accuracy, ROC AUC and F1 from class probabilities;
* :func:`confusion_matrix` - the count matrix;
* :func:`higher_is_better` - which way a metric's name improves, for every caller.

Samples holding a NaN (in the target, the prediction or a probability) are left out of
every metric: a missing target is not an error.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

#: metric names holding one of these are better when higher (anything else: lower)
HIGHER_IS_BETTER = ("acc", "auc", "r2", "f1", "precision", "recall", "pearson", "spearman")


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of ``metric`` (``test_roc_auc``, ``val_mae``, ...) is better."""
    lowered = metric.lower()
    return any(token in lowered for token in HIGHER_IS_BETTER)


def _as_1d(values: Any, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim == 0:
        raise ValueError(f"{name} must be a 1-d array, got a scalar")
    if array.ndim > 1:
        if array.size != array.shape[0]:
            raise ValueError(f"{name} must be a 1-d array, got shape {array.shape}")
        array = array.reshape(-1)
    return array


def _paired(a: Any, b: Any, names: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """Two (n,) float arrays of the same length with the pairs holding a NaN removed."""
    x = _as_1d(a, names[0]).astype(np.float64)
    y = _as_1d(b, names[1]).astype(np.float64)
    if x.shape != y.shape:
        raise ValueError(f"{names[0]} and {names[1]} differ in length: {x.size} != {y.size}")
    keep = ~(np.isnan(x) | np.isnan(y))
    return x[keep], y[keep]


def regression_metrics(y: Any, yhat: Any) -> dict[str, float]:
    """Mean absolute error, root mean square error and coefficient of determination.

    Args:
        y: (n,) true values.
        yhat: (n,) predictions.

    Returns:
        ``{"mae", "rmse", "r2"}`` as floats.  Pairs holding a NaN are ignored; all three
        are NaN when no pair is left, and ``r2`` is NaN when the true values do not vary.
    """
    true, pred = _paired(y, yhat, ("y", "yhat"))
    if true.size == 0:
        return {"mae": math.nan, "rmse": math.nan, "r2": math.nan}
    error = pred - true
    mae = float(np.mean(np.abs(error)))
    rmse = float(np.sqrt(np.mean(error * error)))
    ss_tot = float(np.sum((true - true.mean()) ** 2))
    r2 = 1.0 - float(np.sum(error * error)) / ss_tot if ss_tot > 0 else math.nan
    return {"mae": mae, "rmse": rmse, "r2": r2}


def _binary_labels(labels: np.ndarray) -> np.ndarray:
    """Boolean positives from labels of 0/1 (or booleans); ValueError for anything else."""
    if labels.dtype == bool:
        return labels
    bad = (labels != 0) & (labels != 1)
    if np.any(bad):
        raise ValueError(f"binary labels must be 0 or 1, got {np.unique(labels[bad])[:5].tolist()}")
    return labels == 1


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``values``; tied values share the mean of their ranks."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts).astype(np.float64)
    return ((ends - counts + 1 + ends) / 2.0)[inverse.reshape(-1)]


def roc_auc(labels: Any, scores: Any) -> float:
    """Area under the ROC curve of a binary classifier (the Mann-Whitney U statistic).

    Equals the probability that a random positive scores above a random negative, ties
    counting one half (average ranks), and so the area under :func:`roc_curve`.

    Args:
        labels: (n,) 0/1 or booleans, 1 = positive.
        scores: (n,) scores or probabilities of the positive class.

    Returns:
        The AUC in [0, 1]; NaN when only one class is present (or nothing is left once the
        pairs holding a NaN are removed).
    """
    y, s = _paired(labels, scores, ("labels", "scores"))
    positive = _binary_labels(y)
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = _average_ranks(s)
    u = float(ranks[positive].sum()) - n_pos * (n_pos + 1) / 2.0
    return u / (n_pos * n_neg)


def roc_curve(labels: Any, scores: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points of the ROC curve, one per distinct score (ties make one diagonal step).

    Args:
        labels: (n,) 0/1 or booleans, 1 = positive.
        scores: (n,) scores of the positive class.

    Returns:
        ``(fpr, tpr, thresholds)``: the false and true positive rates when the samples
        scoring at least ``threshold`` are called positive, from (0, 0) (threshold +inf)
        to (1, 1).  The rates are NaN where a class is absent.
    """
    y, s = _paired(labels, scores, ("labels", "scores"))
    positive = _binary_labels(y)
    order = np.argsort(-s, kind="mergesort")
    s_sorted = s[order]
    hits = positive[order]
    # the last index of each run of equal scores
    if s.size:
        last = np.r_[np.flatnonzero(s_sorted[1:] != s_sorted[:-1]), s.size - 1]
    else:
        last = np.zeros(0, dtype=np.int64)
    tp = np.r_[0, np.cumsum(hits)[last]].astype(np.float64)
    fp = np.r_[0, np.cumsum(~hits)[last]].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        tpr = tp / tp[-1] if tp[-1] > 0 else np.full_like(tp, math.nan)
        fpr = fp / fp[-1] if fp[-1] > 0 else np.full_like(fp, math.nan)
    thresholds = np.r_[np.inf, s_sorted[last]]
    return fpr, tpr, thresholds


def _class_indices(labels: np.ndarray, n_classes: int | None, name: str) -> np.ndarray:
    """Integer class indices from integer-valued labels; ValueError when not indices."""
    if labels.dtype == bool:
        return labels.astype(np.int64)
    if not np.issubdtype(labels.dtype, np.number):
        raise ValueError(f"{name} must be integer class indices, got dtype {labels.dtype}")
    as_int = labels.astype(np.int64)
    if labels.size and (np.any(as_int != labels) or as_int.min() < 0):
        raise ValueError(f"{name} must be integer class indices >= 0")
    if n_classes is not None and labels.size and as_int.max() >= n_classes:
        raise ValueError(f"{name} holds class {as_int.max()} but there are {n_classes} classes")
    return as_int


def _f1_per_class(true: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """F1 of each class one-vs-rest; NaN for a class neither present nor predicted."""
    scores = np.full(n_classes, math.nan)
    for c in range(n_classes):
        tp = np.sum((pred == c) & (true == c))
        wrong = np.sum((pred == c) != (true == c))  # false positives + false negatives
        if 2 * tp + wrong > 0:
            scores[c] = 2.0 * tp / (2.0 * tp + wrong)
    return scores


def _nanmean(values: Sequence[float] | np.ndarray) -> float:
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[~np.isnan(finite)]
    return float(finite.mean()) if finite.size else math.nan


def classification_metrics(labels: Any, probabilities: Any) -> dict[str, float]:
    """Accuracy, ROC AUC and F1 of a classifier from its class probabilities.

    Args:
        labels: (n,) true class indices 0..C-1.
        probabilities: (n, C) class probabilities (or scores); for two classes an (n,)
            array of the probability of class 1 also works.  The prediction is the argmax.

    Returns:
        ``{"accuracy", "roc_auc", "f1"}``.  With two classes ``roc_auc`` and ``f1`` are
        those of class 1; with more, their macro means one-vs-rest: the AUC over the classes
        present (a class absent from ``labels`` has no AUC and is skipped), the F1 over the
        classes present or predicted.  A value that is undefined (a single class in the
        split, no samples) is NaN.  Samples holding a NaN are ignored.
    """
    probs = np.asarray(probabilities, dtype=np.float64)
    if probs.ndim == 1 or (probs.ndim == 2 and probs.shape[1] == 1):
        p1 = probs.reshape(-1)
        probs = np.stack([1.0 - p1, p1], axis=1)
    if probs.ndim != 2:
        raise ValueError(f"probabilities must be (n, C), got shape {probs.shape}")
    y = _as_1d(labels, "labels")
    if y.shape[0] != probs.shape[0]:
        raise ValueError(f"labels and probabilities differ in length: {y.size} != {len(probs)}")
    n_classes = probs.shape[1]
    keep = ~np.isnan(probs).any(axis=1)
    if np.issubdtype(y.dtype, np.floating):
        keep &= ~np.isnan(y)
    true = _class_indices(y[keep], n_classes, "labels")
    probs = probs[keep]
    if true.size == 0:
        return {"accuracy": math.nan, "roc_auc": math.nan, "f1": math.nan}
    pred = np.argmax(probs, axis=1)
    accuracy = float(np.mean(pred == true))
    f1 = _f1_per_class(true, pred, n_classes)
    if n_classes == 2:
        return {"accuracy": accuracy, "roc_auc": roc_auc(true == 1, probs[:, 1]), "f1": f1[1]}
    aucs = [roc_auc(true == c, probs[:, c]) for c in range(n_classes) if np.any(true == c)]
    return {"accuracy": accuracy, "roc_auc": _nanmean(aucs), "f1": _nanmean(f1)}


def confusion_matrix(labels: Any, predicted: Any, n_classes: int | None = None) -> np.ndarray:
    """Counts (C, C): row = true class, column = predicted class.

    Args:
        labels: (n,) true class indices.
        predicted: (n,) predicted class indices.
        n_classes: C; defaults to one more than the largest index seen.
    """
    true = _class_indices(_as_1d(labels, "labels"), n_classes, "labels")
    pred = _class_indices(_as_1d(predicted, "predicted"), n_classes, "predicted")
    if true.shape != pred.shape:
        raise ValueError(f"labels and predicted differ in length: {true.size} != {pred.size}")
    if n_classes is None:
        n_classes = int(max(true.max(initial=-1), pred.max(initial=-1))) + 1
    counts = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(counts, (true, pred), 1)
    return counts


def per_atom_mismatch(targets: Any, predictions: Any, n_atoms: Any) -> str | None:
    """A sentence when the targets and the predictions look one per atom, the other per cell.

    With n the atoms of each crystal, y the targets and p the predictions, the MAE of y - p is
    compared with the MAEs of y / n - p (per-cell targets, a per-atom model) and y - p / n (the
    reverse).  When one of these is under a third of the first, and the crystals do not all
    have the same n (then no scale can be told apart), the sentence names it; else ``None``.
    """
    y, p = _paired(targets, predictions, ("targets", "predictions"))
    n = _as_1d(n_atoms, "n_atoms").astype(np.float64)
    keep = np.isfinite(y) & np.isfinite(p) & (n > 0)
    y, p, n = y[keep], p[keep], n[keep]
    if y.size < 2 or np.all(n == n[0]):
        return None
    as_is = float(np.mean(np.abs(y - p)))
    for what, mae in (
        ("per cell while the model predicts per atom", float(np.mean(np.abs(y / n - p)))),
        ("per atom while the model predicts per cell", float(np.mean(np.abs(y - p / n)))),
    ):
        if mae < as_is / 3:
            return (
                f"the targets look {what}: MAE {as_is:.4g} as they are, {mae:.4g} when divided "
                "by the number of atoms; check the target column and the model's --extensive"
            )
    return None


#: how metrics read on an axis or in a table
METRIC_NAMES = {
    "mae": "MAE",
    "rmse": "RMSE",
    "accuracy": "accuracy",
    "roc_auc": "ROC-AUC",
    "loss": "loss",
    "r2": "R²",
}


def metric_label(name: str, unit: str = "") -> str:
    """``val_mae`` -> ``validation MAE (eV/atom)``; unknown names are kept as they are."""
    stem = name.removesuffix("_epoch")
    where = ""
    for prefix, said in (("val_", "validation "), ("train_", "training "), ("test_", "test ")):
        if stem.startswith(prefix):
            where, stem = said, stem.removeprefix(prefix)
    text = where + METRIC_NAMES.get(stem, stem)
    scaled = stem in ("mae", "rmse")  # the metrics that carry the target's unit
    return f"{text} ({unit})" if unit and scaled else text
