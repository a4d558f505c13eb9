"""Learning curves of ``cgcnn train`` with its defaults on the Castelli perovskites.

The accuracy targets and anchors come from different training-set sizes.  For ``heat_ref``,
the original CGCNN's 0.110 / 0.069 eV per cell were trained on the 3,787 crystals of
``perov5-dev.csv``, while Matbench's (CGCNN 0.045, ALIGNN 0.029, coGN 0.027) were trained on
4/5 of its 18,928 crystals, 15,142.  To place our defaults against both, this script trains
them on growing fractions of each cross-validation fold's training part (the validation and
test parts stay as they are) and fits the usual power law to the test error,

    error(n) = c * n ** slope        (a straight line in log-log; slope < 0)

with error the MAE (``perov5``) or 1 - ROC-AUC (``metal``).  It prints the fit's value at
Matbench's training-set size and the training-set size at which the fit meets the target
(MAE 0.045 eV per cell; ROC-AUC 0.95).  The folds are those of ``bench_accuracy.py`` (same
seed), so a full-size run is the same as that script's fold.

    python benchmarks/bench_learning_curve.py perov5           # folds 0 and 1, ~15 min
    python benchmarks/bench_learning_curve.py metal --folds 0,1,2,3,4
    python benchmarks/bench_learning_curve.py perov5 --fractions 0.125,0.25,0.5,1
    python benchmarks/bench_learning_curve.py perov5 -- --ensemble 1   # extra train options

An extrapolation is an estimate, not a measurement: the printed table gives each fold's slope
and the spread of the extrapolated values over the folds.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_accuracy import (
    METAL_OPTIONS,
    PEROV5,
    SHARED,
    fold_splits,
    metal_csv,
    perov5_rows,
    split_train_options,
    train,
    wall_seconds,
)

#: Matbench v0.1 ``matbench_perovskites``: 18,928 crystals, 5-fold, so 15,142 per training set.
MATBENCH_TRAIN = 15_142
MATBENCH_ANCHORS = {"CGCNN": 0.045, "ALIGNN": 0.029, "coGN": 0.027}

#: per task: the metrics.json key, the error fitted (a function of that key), the target error
TASKS = {
    "perov5": {"metric": "test_mae", "error": lambda v: v, "target": 0.045, "unit": "eV/cell"},
    "metal": {"metric": "test_roc_auc", "error": lambda v: 1.0 - v, "target": 1 - 0.95, "unit": ""},
}


def subsample(split: Path, fraction: float, out: Path, seed: int = 0) -> Path:
    """A copy of ``split`` keeping ``fraction`` of its training ids (val and test kept)."""
    with split.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    train_rows = [i for i, r in enumerate(rows) if r["split"] == "train"]
    keep = round(fraction * len(train_rows))
    chosen = set(np.random.default_rng(seed).permutation(train_rows)[:keep].tolist())
    with out.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "split"])
        for i, r in enumerate(rows):
            if r["split"] != "train" or i in chosen:
                writer.writerow([r["id"], r["split"]])
    return out


def power_law(n_train: list[int], error: list[float]) -> tuple[float, float]:
    """Least-squares fit of log(error) = log(c) + slope * log(n); returns (c, slope)."""
    slope, intercept = np.polyfit(np.log(n_train), np.log(error), 1)
    return float(np.exp(intercept)), float(slope)


def parse_list(text: str, kind: type) -> list:
    try:
        values = [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values:
        raise SystemExit(f"expected a comma-separated list of {kind.__name__}, got {text!r}")
    return values


def main(argv: list[str] | None = None) -> int:
    argv, extra = split_train_options(argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("task", choices=sorted(TASKS))
    parser.add_argument("--folds", default="0,1", help="which of the 5 folds to run (0,1)")
    parser.add_argument(
        "--fractions", default="0.125,0.25,0.5,1", help="fractions of the training part"
    )
    parser.add_argument("--out", default="bench-learning-curve", help="run folder")
    args = parser.parse_args(argv)
    folds = parse_list(args.folds, int)
    fractions = parse_list(args.fractions, float)
    if any(not 0 <= k < 5 for k in folds):
        raise SystemExit(f"--folds must lie in 0..4, got {args.folds}")
    if len(fractions) < 2 or any(not 0 < f <= 1 for f in fractions):
        raise SystemExit(f"--fractions needs two or more values in (0, 1], got {args.fractions}")
    if not SHARED.is_dir():
        print(f"skipped: {SHARED} is absent (the shared data sets are not beside the repo)")
        return 0
    task = TASKS[args.task]
    root = Path(args.out) / args.task
    root.mkdir(parents=True, exist_ok=True)
    rows = perov5_rows()
    if args.task == "perov5":
        data, options = PEROV5, ["--target", "heat_ref", *extra]
    else:
        data, options = metal_csv(rows, root), [*METAL_OPTIONS, *extra]
    splits = fold_splits([r["material_id"] for r in rows], 5, root)
    curves: dict[int, list[tuple[int, float]]] = {}
    for k in folds:
        for fraction in fractions:
            split = subsample(splits[k], fraction, root / f"fold{k}-f{fraction:g}-split.csv")
            run = root / f"fold{k}-f{fraction:g}"
            metrics = train(data, run, ["--split", str(split), *options])
            value = metrics[task["metric"]]
            curves.setdefault(k, []).append((metrics["n_train"], value))
            print(
                f"fold {k}, fraction {fraction:g}: {metrics['n_train']} training crystals, "
                f"{task['metric']} {value:.4f}, training {wall_seconds(metrics):.0f} s",
                flush=True,
            )
    fits = {}
    for k, points in curves.items():
        c, slope = power_law([n for n, _ in points], [task["error"](v) for _, v in points])
        fits[k] = {
            "points": points,
            "c": c,
            "slope": slope,
            "error_at_matbench_size": c * MATBENCH_TRAIN**slope,
            "n_train_for_target": (task["target"] / c) ** (1 / slope),
        }
    summary = {
        "task": args.task,
        "error": "test MAE" if args.task == "perov5" else "1 - test ROC-AUC",
        "folds": fits,
        "slope_mean": statistics.fmean(f["slope"] for f in fits.values()),
        "matbench_train": MATBENCH_TRAIN,
        "error_at_matbench_size_mean": statistics.fmean(
            f["error_at_matbench_size"] for f in fits.values()
        ),
        "target_error": task["target"],
        "n_train_for_target_median": statistics.median(
            f["n_train_for_target"] for f in fits.values()
        ),
        "train_options": extra,
    }
    (root / "learning-curve-summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\n{summary['error']} = c * n_train ** slope, fitted per fold")
    print(f"fold   slope   at {MATBENCH_TRAIN:,} crystals   crystals for the target")
    for k, f in fits.items():
        print(
            f"{k:>4}  {f['slope']:+.3f}   {f['error_at_matbench_size']:.4f}"
            f"{'':>17}{f['n_train_for_target']:,.0f}"
        )
    print(
        f"mean  {summary['slope_mean']:+.3f}   {summary['error_at_matbench_size_mean']:.4f}"
        f"{'':>17}{summary['n_train_for_target_median']:,.0f} (median)"
    )
    if args.task == "perov5":
        anchors = ", ".join(f"{name} {mae}" for name, mae in MATBENCH_ANCHORS.items())
        print(f"Matbench at {MATBENCH_TRAIN:,} training crystals: {anchors} eV/cell")
    print(
        f"target: {summary['error']} <= {task['target']:.3f}; these are extrapolations "
        "of a fit, not measurements"
    )
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
