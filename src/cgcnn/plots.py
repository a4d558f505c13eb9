"""Figures of a training run and of its predictions (the metrics are :mod:`cgcnn.metrics`).

Plots (each writes a PNG, creating its folder, and returns the path):

* :func:`learning_curve` - loss and a validation metric per epoch from a CSV log such as
  PyTorch Lightning's ``CSVLogger`` writes (``metrics.csv``), with the best epoch marked;
* :func:`parity_plot` - predicted against true values of a regression target;
* :func:`roc_plot` - the ROC curve of a binary classifier;
* :func:`confusion_matrix_plot` - counts of true against predicted classes.

Samples holding a NaN (in the target, the prediction or a probability) are left out of
every plot, as of every metric: a missing target is not an error.  The metric functions are
re-exported here, where the figures print them.

matplotlib is imported only when a plot is drawn, and only through its object-oriented
API on the Agg canvas (no pyplot state), so plotting works headless and from threads.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cgcnn.errors import InputError
from cgcnn.metrics import (
    _as_1d,
    _binary_labels,
    _class_indices,
    _paired,
    classification_metrics,
    confusion_matrix,
    higher_is_better,
    metric_label,
    regression_metrics,
    roc_auc,
    roc_curve,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "classification_metrics",
    "confusion_matrix",
    "confusion_matrix_plot",
    "learning_curve",
    "parity_plot",
    "read_epoch_log",
    "regression_metrics",
    "roc_auc",
    "roc_curve",
    "roc_plot",
]

DPI = 120

#: a confusion matrix with more classes leaves its empty cells blank (drawing ~10^4 zeros
#: is slow and unreadable)
_ALL_CELLS_UP_TO = 30

#: validation metrics tried, in this order, when ``learning_curve`` is given no metric
DEFAULT_METRICS = ("val_mae", "val_accuracy", "val_roc_auc")

_NOTE_STYLE = {
    "ha": "center",
    "va": "center",
    "fontsize": 11,
    "color": "0.35",
    "bbox": {"facecolor": "white", "edgecolor": "none", "alpha": 0.9},
}


# --------------------------------------------------------------------------- figures


def _new_figure(figsize: tuple[float, float]) -> Figure:
    """A figure on its own Agg canvas (no pyplot, no global state)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("plotting needs matplotlib: pip install matplotlib") from exc
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, out_png: str | Path) -> Path:
    path = Path(out_png)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=DPI, bbox_inches="tight")
    return path


def _note(ax: Axes, text: str, *, keep_ticks: bool = False) -> None:
    """Write ``text`` in the middle of an axes left without data."""
    ax.text(0.5, 0.5, text, transform=ax.transAxes, **_NOTE_STYLE)
    if not keep_ticks:
        ax.set_xticks([])
        ax.set_yticks([])


def _text_box(ax: Axes, text: str) -> None:
    ax.text(
        0.04,
        0.96,
        text,
        transform=ax.transAxes,
        ha="left",
        va="top",
        fontsize=9,
        family="monospace",
        bbox={"boxstyle": "round,pad=0.4", "facecolor": "white", "edgecolor": "0.7", "alpha": 0.9},
    )


def _fmt(value: float) -> str:
    return "nan" if not math.isfinite(value) else f"{value:.4g}"


# ----------------------------------------------------------------- learning curve


def _parse_float(text: Any) -> float | None:
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        return float(text)
    except ValueError:
        return None


def read_epoch_log(log_csv: str | Path) -> dict[str, np.ndarray]:
    """Read a per-epoch CSV log into one value per epoch and column.

    Rows are grouped by their ``epoch`` cell (rows without one, such as a learning-rate
    monitor's, are skipped) and each column keeps its last non-empty value in the epoch,
    so the training and validation rows Lightning writes separately merge into one.

    Returns:
        ``{"epoch": (E,) int array sorted ascending, column: (E,) float array}`` with NaN
        where a column has no value in an epoch.

    Raises:
        InputError: (a ValueError) when the file has no ``epoch`` column or no epochs.
    """
    path = Path(log_csv)
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        fields = [f.strip() for f in (reader.fieldnames or [])]
        reader.fieldnames = fields
        if "epoch" not in fields:
            reason = "empty file" if not fields else f"no 'epoch' column (columns: {fields})"
            raise InputError(str(path), f"no epochs in the log: {reason}")
        per_epoch: dict[int, dict[str, float]] = {}
        for row in reader:
            epoch = _parse_float(row.get("epoch"))
            if epoch is None or not math.isfinite(epoch):
                continue
            values = per_epoch.setdefault(round(epoch), {})
            for key, text in row.items():
                if key is None or key == "epoch":
                    continue
                value = _parse_float(text)
                if value is not None:
                    values[key] = value
    if not per_epoch:
        raise InputError(str(path), "no epochs in the log: no row holds an epoch number")
    epochs = sorted(per_epoch)
    log = {"epoch": np.asarray(epochs, dtype=np.int64)}
    for column in fields:
        if column != "epoch":
            log[column] = np.asarray([per_epoch[e].get(column, math.nan) for e in epochs])
    return log


def _series(log: dict[str, np.ndarray], *names: str) -> tuple[str, np.ndarray] | None:
    """The first of ``names`` with at least one finite value in ``log``."""
    for name in names:
        values = log.get(name)
        if values is not None and np.isfinite(values).any():
            return name, values
    return None


def _plot_series(ax: Axes, epochs: np.ndarray, values: np.ndarray, **kwargs: Any) -> None:
    finite = np.isfinite(values)
    marker = "o" if finite.sum() <= 40 else None
    ax.plot(epochs[finite], values[finite], marker=marker, markersize=3, **kwargs)


def _best(epochs: np.ndarray, values: np.ndarray, higher: bool) -> tuple[int, float]:
    finite = np.where(np.isfinite(values), values, np.nan)
    index = int(np.nanargmax(finite) if higher else np.nanargmin(finite))
    return int(epochs[index]), float(values[index])


#: the losses, as the axis says them
LOSS_NAMES = {
    "l1": "L1 loss (standardised targets)",
    "huber": "Huber loss (standardised targets)",
    "mse": "MSE loss (standardised targets)",
    "cross_entropy": "cross-entropy",
}

#: an axis spanning more than this ratio is drawn on a log scale
LOG_SPAN = 10.0


def log_if_wide(ax: Axes, values: np.ndarray) -> None:
    """A log y axis when the positive ``values`` span more than :data:`LOG_SPAN`."""
    values = values[np.isfinite(values)]
    if values.size and values.min() > 0 and values.max() / values.min() > LOG_SPAN:
        ax.set_yscale("log")


def learning_curve(
    log_csv: str | Path,
    out_png: str | Path,
    metric: str | None = None,
    *,
    unit: str = "",
    loss: str = "",
) -> Path:
    """Plot loss (train and validation) and a validation metric per epoch.

    Args:
        log_csv: a CSV log with an ``epoch`` column (Lightning's ``metrics.csv``); see
            :func:`read_epoch_log` for how rows are merged.  Loss columns used:
            ``train_loss_epoch`` or ``train_loss``, ``val_loss_epoch`` or ``val_loss``.
        out_png: the PNG to write.
        unit: the target's unit, for the MAE / RMSE axis.
        loss: the loss's name (``l1``, ``huber``, ``mse``, ``cross_entropy``) for its axis.
        metric: the validation metric of the right panel; by default the first of
            ``val_mae``, ``val_accuracy``, ``val_roc_auc`` in the log.  Its ``train_``
            counterpart is drawn too when logged.  The best epoch (lowest value, or highest
            for accuracy / AUC / R² / F1-like names) is marked on both panels; without a
            metric, the epoch of lowest validation loss is.

    Returns:
        The path written.  Missing columns leave a note in their panel instead of failing.

    Raises:
        InputError: (a ValueError) when the file has no epochs.
    """
    log = read_epoch_log(log_csv)
    epochs = log["epoch"] + 1  # counted from 1, as the training's lines count them
    fig = _new_figure((10.0, 4.0))
    ax_loss, ax_metric = fig.subplots(1, 2)

    # left: loss
    train = _series(log, "train_loss_epoch", "train_loss")
    val = _series(log, "val_loss_epoch", "val_loss")
    for found, colour, label in ((train, "tab:blue", "train"), (val, "tab:orange", "validation")):
        if found is not None:
            _plot_series(ax_loss, epochs, found[1], color=colour, label=label)
    if train is None and val is None:
        _note(ax_loss, "no loss in the log")
    else:
        ax_loss.legend(loc="upper right")
        log_if_wide(ax_loss, np.concatenate([f[1] for f in (train, val) if f is not None]))
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel(LOSS_NAMES.get(loss, "loss"))
    ax_loss.set_title("loss")

    # right: validation metric
    if metric is None:
        chosen = next((m for m in DEFAULT_METRICS if _series(log, m, f"{m}_epoch")), None)
    else:
        chosen = metric
    found = _series(log, chosen, f"{chosen}_epoch") if chosen else None
    best: tuple[int, float] | None = None
    best_name = ""
    if found is not None:
        name, values = found
        if name.startswith("val_"):
            base = name.removeprefix("val_").removesuffix("_epoch")
            partner = _series(log, f"train_{base}_epoch", f"train_{base}")
            if partner is not None:
                _plot_series(ax_metric, epochs, partner[1], color="tab:blue", label="train")
        _plot_series(ax_metric, epochs, values, color="tab:orange", label="validation")
        best = _best(epochs, values, higher_is_better(name))
        best_name = name
        ax_metric.plot(
            [best[0]],
            [best[1]],
            marker="*",
            markersize=14,
            color="tab:red",
            linestyle="none",
            label=f"best: epoch {best[0]}, {_fmt(best[1])}"
            + (f" {unit}" if unit and metric_label(name, unit) != metric_label(name) else ""),
        )
        ax_metric.legend(loc="best")
        log_if_wide(ax_metric, values)
        ax_metric.set_ylabel(metric_label(name, unit))
        ax_metric.set_title(metric_label(name))
    else:
        why = f"'{chosen}' not in the log" if chosen else "no validation metric in the log"
        _note(ax_metric, why)
        ax_metric.set_title(chosen or "validation metric")
        if val is not None:
            best = _best(epochs, val[1], higher=False)
            best_name = val[0]
    ax_metric.set_xlabel("epoch")

    with_data = [ax for ax, ok in ((ax_loss, train or val), (ax_metric, found)) if ok]
    if best is not None:
        for ax in with_data:
            ax.axvline(best[0], color="tab:red", linestyle=":", linewidth=1)
        if found is None:
            ax_loss.plot([best[0]], [best[1]], marker="*", markersize=14, color="tab:red")
        fig.suptitle(f"best epoch {best[0]} (by {metric_label(best_name)})", fontsize=10)
    for ax in with_data:
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    return _save(fig, out_png)


# ----------------------------------------------------------------------- parity


#: parity plots of more points draw their density (hexagonal cells) instead of the points
HEXBIN_ABOVE = 2000


def _marker_style(n: int) -> dict[str, float]:
    if n <= 300:
        return {"s": 18.0, "alpha": 0.8}
    if n <= 3000:
        return {"s": 8.0, "alpha": 0.5}
    return {"s": 3.0, "alpha": 0.25}


def parity_plot(
    targets: Any,
    predictions: Any,
    out_png: str | Path,
    *,
    label: str = "target",
    unit: str = "",
    title: str | None = None,
) -> Path:
    """Scatter predictions against true values around the line y = x, on equal axes.

    Args:
        targets: (n,) true values; pairs holding a NaN are dropped.
        predictions: (n,) predicted values.
        out_png: the PNG to write.
        label: the quantity's name for the axes.
        unit: its unit (axes and the MAE / RMSE in the text box).
        title: a title; by default none.

    Returns:
        The path written.
    """
    true, pred = _paired(targets, predictions, ("targets", "predictions"))
    finite = np.isfinite(true) & np.isfinite(pred)
    true, pred = true[finite], pred[finite]
    fig = _new_figure((5.0, 5.0))
    ax = fig.subplots()
    suffix = f" ({unit})" if unit else ""
    ax.set_xlabel(f"true {label}{suffix}")
    ax.set_ylabel(f"predicted {label}{suffix}")
    if title:
        ax.set_title(title)
    if true.size == 0:
        _note(ax, "no finite points")
        return _save(fig, out_png)

    lo = float(min(true.min(), pred.min()))
    hi = float(max(true.max(), pred.max()))
    pad = 0.05 * (hi - lo) if hi > lo else max(abs(lo) * 0.05, 1.0)
    lo, hi = lo - pad, hi + pad
    ax.plot([lo, hi], [lo, hi], color="0.4", linestyle="--", linewidth=1, zorder=1)
    if true.size > HEXBIN_ABOVE:  # points pile up: how many fall in each cell
        cells = ax.hexbin(
            true, pred, gridsize=60, bins="log", mincnt=1, cmap="viridis",
            extent=(lo, hi, lo, hi), zorder=2,
        )  # fmt: skip
        fig.colorbar(cells, ax=ax, shrink=0.8, label="crystals per hexagon")
    else:
        ax.scatter(true, pred, color="tab:blue", linewidths=0, zorder=2, **_marker_style(true.size))
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal", adjustable="box")
    ax.grid(alpha=0.3)

    m = regression_metrics(true, pred)
    unit_text = f" {unit}" if unit else ""
    _text_box(
        ax,
        f"MAE  = {_fmt(m['mae'])}{unit_text}\n"
        f"RMSE = {_fmt(m['rmse'])}{unit_text}\n"
        f"R²   = {_fmt(m['r2'])}\n"
        f"n    = {true.size}",
    )
    return _save(fig, out_png)


# -------------------------------------------------------------------------- ROC


def roc_plot(
    labels: Any, probabilities: Any, out_png: str | Path, *, positive_label: str = "1"
) -> Path:
    """Plot the ROC curve of a binary classifier, with its AUC in the legend.

    Args:
        labels: (n,) 0/1 true classes (1 = positive).
        probabilities: (n,) probabilities (or scores) of the positive class; pairs holding
            a NaN are dropped.
        out_png: the PNG to write.
        positive_label: the positive class's name, for the title.

    Returns:
        The path written.  With a single class present the curve is undefined and the
        figure says so instead.
    """
    y, s = _paired(labels, probabilities, ("labels", "probabilities"))
    positive = _binary_labels(y)
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    fig = _new_figure((5.0, 5.0))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1, label="chance")
    if n_pos == 0 or n_neg == 0:
        why = "one class only" if positive.size else "no samples"
        _note(ax, f"ROC undefined: {why}", keep_ticks=True)
    else:
        fpr, tpr, _ = roc_curve(positive, s)
        auc = roc_auc(positive, s)
        ax.plot(fpr, tpr, color="tab:blue", linewidth=2, label=f"ROC (AUC = {auc:.3f})")
        ax.legend(loc="lower right")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(f"ROC, positive class '{positive_label}' ({n_pos} positive, {n_neg} negative)")
    ax.title.set_fontsize(10)
    ax.grid(alpha=0.3)
    return _save(fig, out_png)


# ----------------------------------------------------------------- confusion


def _encode_classes(
    labels: np.ndarray, predicted: np.ndarray, class_names: list[str] | None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Class indices of both arrays and the names of all classes."""
    numeric = all(a.dtype == bool or np.issubdtype(a.dtype, np.number) for a in (labels, predicted))
    if numeric:
        keep = np.ones(labels.shape, dtype=bool)
        for array in (labels, predicted):
            if np.issubdtype(array.dtype, np.floating):
                keep &= ~np.isnan(array)
        labels, predicted = labels[keep], predicted[keep]
        n = len(class_names) if class_names is not None else None
        true = _class_indices(labels, n, "labels")
        pred = _class_indices(predicted, n, "predicted")
        if n is None:
            n = int(max(true.max(initial=-1), pred.max(initial=-1))) + 1
            class_names = [str(c) for c in range(n)]
        return true, pred, list(class_names or [])
    # names (strings): classes are class_names, or the sorted names seen
    if class_names is None:
        class_names = sorted({str(v) for v in np.concatenate([labels, predicted])})
    index = {name: i for i, name in enumerate(class_names)}
    unknown = sorted({str(v) for v in np.concatenate([labels, predicted])} - set(index))
    if unknown:
        raise ValueError(f"classes not in class_names: {unknown[:5]}")
    true = np.asarray([index[str(v)] for v in labels], dtype=np.int64)
    pred = np.asarray([index[str(v)] for v in predicted], dtype=np.int64)
    return true, pred, list(class_names)


def confusion_matrix_plot(
    labels: Any, predicted: Any, out_png: str | Path, *, class_names: list[str] | None = None
) -> Path:
    """Plot the confusion matrix (rows true, columns predicted) with the count in each cell.

    Args:
        labels: (n,) true classes: indices 0..C-1, or names.
        predicted: (n,) predicted classes, the same way.
        out_png: the PNG to write.
        class_names: names of the C classes, in index order; by default the indices (or
            the sorted names seen).  Sets C when longer than the largest index seen.

    Returns:
        The path written.  Every cell shows its count, except that with more than 30
        classes the empty cells are left blank.
    """
    true_in = _as_1d(labels, "labels")
    pred_in = _as_1d(predicted, "predicted")
    if true_in.shape != pred_in.shape:
        raise ValueError(f"labels and predicted differ in length: {true_in.size} != {pred_in.size}")
    true, pred, names = _encode_classes(true_in, pred_in, class_names)
    k = max(len(names), 1)
    names = names or ["-"]
    counts = confusion_matrix(true, pred, k)

    side = min(max(4.0, 0.45 * k + 2.0), 24.0)
    fig = _new_figure((side + 1.0, side))
    ax = fig.subplots()
    image = ax.imshow(counts, cmap="Blues", vmin=0, vmax=max(int(counts.max()), 1))
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="count")
    cell = 72.0 * side / k  # points per cell, roughly
    fontsize = float(np.clip(0.3 * cell, 4.0, 11.0))
    threshold = counts.max() / 2.0
    for i, j in zip(
        *np.nonzero(counts if k > _ALL_CELLS_UP_TO else np.ones_like(counts)), strict=True
    ):
        text = ax.text(
            j,
            i,
            str(counts[i, j]),
            ha="center",
            va="center",
            fontsize=fontsize,
            color="white" if counts[i, j] > threshold else "black",
        )
        text.set_in_layout(False)  # thousands of cells: keep them out of the layout passes
    ticks = np.arange(k)
    long_names = k > 8 or max(len(n) for n in names) > 6
    ax.set_xticks(
        ticks, names, rotation=45 if long_names else 0, ha="right" if long_names else "center"
    )
    ax.set_yticks(ticks, names)
    ax.tick_params(labelsize=float(np.clip(0.35 * cell, 5.0, 10.0)))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    n = int(counts.sum())
    accuracy = _fmt(float(np.trace(counts)) / n) if n else "nan"
    ax.set_title(f"confusion matrix (n = {n}, accuracy = {accuracy})", fontsize=10)
    return _save(fig, out_png)
