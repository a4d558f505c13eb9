"""Figures and the Markdown report of ``cgcnn compare`` (see :mod:`cgcnn.comparison`).

- :func:`plot_comparison`: mean ± 95 % confidence interval of the metric per configuration,
  every seed as a dot (``comparison.png``);
- :func:`plot_learning_curves`: each configuration's validation curve, mean over its seeds
  (``learning_curves.png``);
- ``write_report``: ``report.md`` with the command, the settings, the table and the verdicts.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cgcnn.errors import InputError
from cgcnn.grid import NOT_IDENTITY, grid_options, jsonable, value_label
from cgcnn.metrics import higher_is_better, metric_label

if typing.TYPE_CHECKING:
    import pandas as pd


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def plot_comparison(
    results: pd.DataFrame, summary: pd.DataFrame, metric: str, out_png: str | Path
) -> Path:
    """Mean ± 95 % CI of ``metric`` per configuration, with every seed's value as a dot."""
    names = list(summary["config"])
    fig = _figure(max(5.0, 1.1 * len(names) + 2), 4.2)
    ax = fig.add_subplot()
    colours = [f"C{k % 10}" for k in range(len(names))]
    for k, name in enumerate(names):
        row = summary[summary["config"] == name].iloc[0]
        values = results.loc[results["config"] == name, metric].astype(float).to_numpy()
        jitter = np.linspace(-0.12, 0.12, len(values)) if len(values) > 1 else np.zeros(1)
        ax.scatter(k + jitter, values, s=14, color=colours[k], alpha=0.55, zorder=2)
        low, high = row.get("ci_low", math.nan), row.get("ci_high", math.nan)
        if not (math.isfinite(low) and math.isfinite(high)):
            low = high = row["mean"]
        # within the metric's range (an MAE's interval never goes below 0): asymmetric
        below, above = max(row["mean"] - low, 0.0), max(high - row["mean"], 0.0)
        ax.errorbar(
            k, row["mean"], yerr=[[below], [above]], fmt="o", color="black", capsize=6,
            markersize=6, zorder=3,
        )  # fmt: skip
        tag = "best" if row["significant"] == "best" else f"p={row['p_vs_best']:.2g}"
        ax.annotate(
            f"#{row['rank']}  {tag}",
            (k, row["mean"]),
            textcoords="offset points",
            xytext=(10, 0),
            fontsize=8,
            va="center",
        )
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([n.replace(", ", "\n") for n in names], fontsize=8)
    ax.set_xlim(-0.5, len(names) - 0.3)
    direction = "higher is better" if higher_is_better(metric) else "lower is better"
    n = int(summary["n"].max()) if len(summary) else 0
    ax.set_ylabel(metric_label(metric))
    ax.set_title(
        f"{metric} ({direction})\nmean and 95 % interval over {n} seeds; dots: single seeds",
        fontsize=10,
    )
    ax.grid(axis="y", alpha=0.3)
    path = Path(out_png)
    fig.savefig(path, dpi=120)
    return path


def _curve_column(log: Mapping[str, np.ndarray], metric: str) -> str | None:
    preferred = ["val_mae", "val_loss"]
    if higher_is_better(metric):
        preferred = ["val_roc_auc", "val_accuracy", "val_loss"]
    for column in preferred:
        if column in log and np.isfinite(log[column]).any():
            return column
    return None


def plot_learning_curves(results: pd.DataFrame, metric: str, out_png: str | Path) -> Path:
    """The validation curve of every configuration, averaged over its seeds."""
    from cgcnn.plots import log_if_wide, read_epoch_log

    fig = _figure(7.0, 4.5)
    ax = fig.add_subplot()
    names = list(dict.fromkeys(results["config"]))
    column_used = None
    positive = True
    for k, name in enumerate(names):
        curves = []
        for run in results.loc[results["config"] == name, "run_dir"]:
            try:
                log = read_epoch_log(Path(run) / "metrics.csv")
            except (InputError, OSError):
                continue
            column = _curve_column(log, metric)
            if column is None:
                continue
            column_used = column
            curves.append((log["epoch"], log[column]))
        if not curves:
            continue
        length = int(max(int(e.max()) for e, _ in curves)) + 1
        table = np.full((len(curves), length), np.nan)
        for row, (epochs, values) in enumerate(curves):
            table[row, epochs] = values
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                mean = np.nanmean(table, axis=0)
                low, high = np.nanmin(table, axis=0), np.nanmax(table, axis=0)
        epochs = np.arange(length) + 1  # counted from 1, as the progress lines count them
        keep = np.isfinite(mean)
        positive = positive and bool((mean[keep] > 0).all())
        colour = f"C{k % 10}"
        ax.plot(epochs[keep], mean[keep], color=colour, label=f"{name} ({len(curves)} seeds)")
        ax.fill_between(epochs[keep], low[keep], high[keep], color=colour, alpha=0.12)
    if column_used is None:
        ax.text(0.5, 0.5, "no validation curves", transform=ax.transAxes, ha="center")
    else:
        if positive:  # the learning curves' rule (cgcnn.plots.LOG_SPAN)
            log_if_wide(ax, np.concatenate([line.get_ydata() for line in ax.get_lines()]))
        ax.set_ylabel(f"{metric_label(column_used)} (mean over seeds; band: min to max)")
        ax.legend(fontsize=8)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_title("validation curves per configuration", fontsize=10)
    ax.grid(alpha=0.3)
    path = Path(out_png)
    fig.savefig(path, dpi=120)
    return path


# --------------------------------------------------------------------------- report


def _markdown_table(summary: pd.DataFrame, keys: Sequence[str]) -> str:
    head = [*keys, "n", "mean", "std", "95 % CI ±", "rank", "p vs best", "significant"]
    has_seconds = "seconds" in summary
    if has_seconds:
        head.append("train s")
    if "n_params" in summary:
        head.append("parameters")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in summary.to_dict("records"):
        cells = [value_label(row[k]) for k in keys]
        p = row["p_vs_best"]
        cells += [
            str(row["n"]),
            f"{row['mean']:.4g}",
            f"{row['std']:.3g}" if math.isfinite(row["std"]) else "–",
            f"{row['ci95']:.3g}" if math.isfinite(row["ci95"]) else "–",
            str(row["rank"]),
            f"{p:.3g}" if math.isfinite(p) else "–",
            row["significant"],
        ]
        if has_seconds:
            cells.append(f"{row['seconds']:.1f}")
        if "n_params" in summary:
            cells.append(f"{int(row['n_params']):,}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(
    out: Path,
    *,
    command: str,
    data: Any,
    grid: Mapping[str, list[Any]],
    fixed: Mapping[str, Any],
    seeds: int,
    metric: str,
    summary: pd.DataFrame,
    wall_seconds: float,
    n_new: int,
) -> Path:
    defaults = {k: v[2] for k, v in grid_options().items()}
    defaults["lr_milestones"] = [100]  # what train() uses for None
    changed = {
        k: v for k, v in fixed.items() if k not in NOT_IDENTITY and jsonable(v) != defaults[k]
    }
    direction = "higher is better" if higher_is_better(metric) else "lower is better"
    split = fixed.get("split")
    if split:
        split_note = (
            f"the split is fixed by `{split}`, so a seed changes the initial weights and the "
            "batch order"
        )
    elif fixed.get("split_seed") is not None:
        split_note = (
            f"the random split is fixed by split_seed={fixed['split_seed']}, so a seed "
            "changes the initial weights and the batch order"
        )
    else:
        split_note = (
            "there is no split file, so seed k also draws the random train/validation/test "
            "split (the same split for every configuration with that seed)"
        )
    keys = list(grid)
    best = summary[summary["significant"] == "best"]
    lines = [
        "# Comparison",
        "",
        "```",
        command,
        "```",
        "",
        f"- data: `{data}`",
        f"- grid: {'; '.join(f'{k} = ' + ', '.join(value_label(v) for v in vs) for k, vs in grid.items()) or '(none)'}",  # noqa: E501
        f"- seeds: {'0' if seeds == 1 else f'0 to {seeds - 1}'} for every configuration; "
        f"{split_note}",
        "- other settings (differing from the defaults): "
        + (", ".join(f"{k}={value_label(v)}" for k, v in changed.items()) or "none"),
        f"- metric: `{metric}` ({direction}); the test split's value of each run's best "
        "checkpoint (chosen on the validation split)"
        if metric.startswith("test_")
        else f"- metric: `{metric}` ({direction})",
        f"- runs: {int(summary['n'].sum())} ({n_new} trained now); this call took "
        f"{wall_seconds:.1f} s",
        "",
        _markdown_table(summary, keys),
        "",
        "95 % CI ±: half-width of the 95 % confidence interval of the mean (t distribution, "
        "n − 1 degrees of freedom). p vs best: two-sided paired t-test of the per-seed "
        "differences against the best configuration; significant at 0.05. With few seeds "
        "and several comparisons, treat p-values near 0.05 as a hint, not a verdict.",
        "",
    ]
    if len(best):
        b = best.iloc[0]
        worse = summary[summary["significant"] == "yes"]["config"].tolist()
        same = summary[summary["significant"] == "no"]["config"].tolist()
        lines.append(f"Best: **{b['config']}** ({metric} {b['mean']:.4g} ± {b['ci95']:.3g}).")
        if worse:
            lines.append(f"Significantly worse: {'; '.join(worse)}.")
        if same:
            lines.append(f"Not distinguishable from the best with these seeds: {'; '.join(same)}.")
        lines.append("")
    lines += [
        "![comparison](comparison.png)",
        "",
        "![learning curves](learning_curves.png)",
        "",
        "Files: `results.csv` (one row per run), `summary.csv` (this table), "
        "`runs/<configuration>/seed<k>/` (each run's outputs).",
        "",
    ]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path
