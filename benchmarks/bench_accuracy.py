"""Accuracy of ``cgcnn train`` with its default settings, against published anchors.

Four tasks, each trained exactly as a user would (``cgcnn train DATA --target T``, nothing
else but the split and, for classification, ``--task``), with a fixed seed:

- ``perov5``: Castelli perovskites, heat of formation ``heat_ref`` (eV per 5-atom cell),
  ``../shared/data/perov5-dev.csv`` (3,787 crystals).  The held-out Castelli set is not
  available here, so the error is estimated by K-fold cross-validation on the dev file:
  each fold is the test set once, the other folds are split 90/10 into train and
  validation (early stopping).  Anchors (same data, same held-out set): original CGCNN
  0.110 (its defaults), 0.069 (Adam, 200 epochs); Matbench v0.1 with 4x more training data:
  CGCNN 0.045, ALIGNN 0.029, coGN 0.027.  The mean predictor is measured per fold.
- ``homework``: the homework's Materials Project perovskites (total energy, eV per cell),
  the original split, ``--extensive``.  Anchor: original CGCNN 50.6.
- ``metal``: metal vs non-metal on the Castelli perovskites, label ``ind_gap > 0``
  (3.8 % positive), ``--task classification``, ROC-AUC by K-fold cross-validation.  The
  original code aborts on this task ("Exit due to NaN" when a validation batch holds one
  class).
- ``carbon24``: carbon allotropes (``../shared/data/carbon24-dev.csv``, 2,032 crystals of one
  element: every bit of signal is geometry), ``energy_per_atom`` (eV/atom), K-fold as for
  perov5.  The baseline, computed in the same run on the same folds: a gradient-boosted
  regressor on eight numbers per crystal (volume per atom, mean coordination within 2 Å,
  the fractions of 2-, 3- and 4-coordinated atoms, mean and spread of the nearest-neighbour
  distance, atom count); needs scikit-learn.

    python benchmarks/bench_accuracy.py perov5              # 5 folds, ~22 min on 2 cores
    python benchmarks/bench_accuracy.py perov5 --folds 10   # ~45 min
    python benchmarks/bench_accuracy.py homework            # ~3 min
    python benchmarks/bench_accuracy.py metal --folds 5
    python benchmarks/bench_accuracy.py carbon24            # 5 folds, ~25 min
    python benchmarks/bench_accuracy.py perov5 -- --ensemble 3   # extra train options
    python benchmarks/bench_accuracy.py perov5 --no-validation   # OUT/perov5-no-validation
                                       # (the scale of each fold's ensemble in OUT/perov5)

Each run's outputs stay in ``--out`` (default ``bench-accuracy/``); a summary is printed
and written to ``OUT/TASK-summary.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
PEROV5 = SHARED / "perov5-dev.csv"
HOMEWORK = SHARED / "perovskite-energy"
HOMEWORK_SPLIT = SHARED / "perovskite-energy-split.csv"
CARBON24 = SHARED / "carbon24-dev.csv"

ANCHORS = {
    "perov5": "original CGCNN 0.110 (defaults), 0.069 (Adam, 200 epochs); Matbench (4x data): "
    "CGCNN 0.045, ALIGNN 0.029, coGN 0.027; target <= 0.045",
    "homework": "original CGCNN 50.6; target <= 1.0",
    "metal": "original CGCNN: aborts; target ROC-AUC >= 0.95",
    "carbon24": "eight-feature gradient boosting: printed above, same folds, same run; "
    "target: well below it",
}


def train(data: Path | str, out: Path, options: list[str]) -> dict:
    """Run ``cgcnn train`` in its own process; return its metrics.json."""
    if (out / "metrics.json").is_file():  # finished earlier: reuse
        return json.loads((out / "metrics.json").read_text())
    command = [sys.executable, "-m", "cgcnn.cli", "train", str(data), "--out", str(out)]
    started = time.perf_counter()
    subprocess.run([*command, *options], check=True, stdout=subprocess.DEVNULL)
    metrics = json.loads((out / "metrics.json").read_text())
    metrics["wall_seconds"] = round(time.perf_counter() - started, 1)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


#: the share of each fold's non-test crystals that validates (``--no-validation``: 0)
VALIDATION_SHARE = 0.1


def fold_splits(ids: list[str], folds: int, out: Path, seed: int = 0) -> list[Path]:
    """K split files (id,split): fold k is the test set, the rest 90 % train / 10 % val
    (with ``--no-validation``, all train; the draw is the same, so the folds are too)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(ids))
    chunks = np.array_split(order, folds)
    files = []
    for k, test in enumerate(chunks):
        rest = rng.permutation(np.concatenate([c for m, c in enumerate(chunks) if m != k]))
        n_val = round(VALIDATION_SHARE * len(rest))
        role = {}
        role.update({int(i): "val" for i in rest[:n_val]})
        role.update({int(i): "train" for i in rest[n_val:]})
        role.update({int(i): "test" for i in test})
        path = out / f"fold{k}-split.csv"
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["id", "split"])
            writer.writerows((ids[i], role[i]) for i in range(len(ids)))
        files.append(path)
    return files


def without_validation(split: Path, out: Path) -> Path:
    """``OUT/split-no-validation.csv``: ``split`` with its validation crystals trained on."""
    with split.open(newline="") as handle:
        rows = [(i, "train" if role == "val" else role) for i, role in csv.reader(handle)]
    path = out / "split-no-validation.csv"
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


def perov5_rows() -> list[dict]:
    with PEROV5.open(newline="") as handle:
        return list(csv.DictReader(handle))


#: ``cgcnn train`` options of the metal / non-metal task (on the file :func:`metal_csv` writes).
METAL_OPTIONS = ["--target", "gap", "--task", "classification"]


def metal_csv(rows: list[dict], out: Path) -> Path:
    """Write ``OUT/perov5-metal.csv``: each crystal with its label ``gap`` = (ind_gap > 0)."""
    labelled = out / "perov5-metal.csv"
    with labelled.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["material_id", "cif", "gap"])
        for r in rows:
            writer.writerow([r["material_id"], r["cif"], int(float(r["ind_gap"]) > 0)])
    return labelled


def wall_seconds(metrics: dict) -> float:
    """Training time as the user waits for it: an ensemble's members may train side by side
    (``ensemble_seconds``); a single model's training loop otherwise."""
    return float(metrics.get("ensemble_seconds", metrics["train_seconds"]))


#: folds to run (``--only``); None: all of them
ONLY: set[int] | None = None


def scale_source(validated: Path | None) -> list[str]:
    """``--uncertainty-from`` the validated ensemble in ``validated`` (the same task and fold
    trained with a validation split), when there is one with a scale; else nothing."""
    listing = None if validated is None else validated / "ensemble.json"
    if listing is None or not listing.is_file():
        return []
    if "uncertainty_scale" not in json.loads(listing.read_text()):
        return []
    return ["--uncertainty-from", str(validated)]


def cross_validate(
    data: Path,
    ids: list[str],
    values: np.ndarray,
    folds: int,
    out: Path,
    options: list[str],
    validated: Path | None = None,
) -> list[dict]:
    """Train and test each fold; ``validated``: the folder of the same cross-validation with
    a validation split, whose ensembles give their uncertainty scales to these folds."""
    results = []
    for k, split in enumerate(fold_splits(ids, folds, out)):
        if ONLY is not None and k not in ONLY:
            continue
        borrowed = scale_source(None if validated is None else validated / f"fold{k}")
        metrics = train(data, out / f"fold{k}", ["--split", str(split), *options, *borrowed])
        roles = dict(csv.reader(split.open()))
        train_mask = np.array([roles[i] == "train" for i in ids])
        test_mask = np.array([roles[i] == "test" for i in ids])
        metrics["mean_predictor_mae"] = float(
            np.abs(values[test_mask] - values[train_mask].mean()).mean()
        )
        results.append(metrics)
        line = ", ".join(
            f"{key} {metrics[key]:.4f}"
            for key in ("test_mae", "test_roc_auc", "mean_predictor_mae")
            if key in metrics
        )
        print(f"fold {k}: {line}, training {wall_seconds(metrics):.0f} s", flush=True)
    return results


def worst_validation_jump(out: Path) -> float:
    """The largest ``val_mae[e] / min(val_mae[:e])`` over the epochs of every model trained
    under ``out`` (each ``metrics.csv``): how far a validation curve ever jumped above the
    best value before it (1: never above it).  NaN without regression curves."""
    worst = math.nan
    for log in out.rglob("metrics.csv"):
        with log.open(newline="") as handle:
            values = [float(r["val_mae"]) for r in csv.DictReader(handle) if r.get("val_mae")]
        for e in range(1, len(values)):
            ratio = values[e] / min(values[:e])
            worst = ratio if math.isnan(worst) else max(worst, ratio)
    return worst


def summarise(
    task: str, results: list[dict], key: str, out: Path, extra: dict | None = None
) -> dict:
    values = [r[key] for r in results]
    seconds = [wall_seconds(r) for r in results]
    summary = {
        "task": task,
        "metric": key,
        "per_run": values,
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "train_seconds_median": statistics.median(seconds),
        "train_seconds_max": max(seconds),
        # an ensemble's members' training loops added up (the CPU time, roughly)
        "member_seconds_total": [r["train_seconds"] for r in results],
        "anchors": ANCHORS[task],
    }
    if "mean_predictor_mae" in results[0]:
        summary["mean_predictor_mae"] = statistics.fmean(r["mean_predictor_mae"] for r in results)
    summary["worst_validation_jump"] = worst_validation_jump(out)
    summary.update(extra or {})
    (out / f"{task}-summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    spread = f" ± {summary['std']:.4f} (std over {len(values)})" if len(values) > 1 else ""
    median, longest = summary["train_seconds_median"], summary["train_seconds_max"]
    print(
        f"{task}: {key} {summary['mean']:.4f}{spread}; training {median:.0f} s median, "
        f"{longest:.0f} s max per model; worst validation jump "
        f"{summary['worst_validation_jump']:.2f}x the best before it.  {ANCHORS[task]}"
    )
    return summary


def spread_calibration(out: Path, folds: int) -> dict | None:
    """How the ensemble's ``uncertainty`` column (the members' spread, scaled on each fold's
    validation split, or with ``--no-validation`` by the validated ensemble's scale) relates
    to the error, over the out-of-fold test predictions of a regression cross-validation
    (None with one member): the mean |error| / mean
    uncertainty, the share of errors within 1, 2 and 3 uncertainties (a normal error: 68 %,
    95 %, 99.7 %), the MAE of the fifth of crystals with the smallest and the largest
    uncertainty, and the Spearman rank correlation of uncertainty and |error|."""
    tables = [
        np.genfromtxt(out / f"fold{k}" / "test_results.csv", delimiter=",", names=True)
        for k in range(folds)
        if ONLY is None or k in ONLY
    ]
    if "uncertainty" not in (tables[0].dtype.names or ()):
        return None
    error = np.concatenate([np.abs(t["target"] - t["prediction"]) for t in tables])
    spread = np.concatenate([t["uncertainty"] for t in tables])
    order = np.argsort(spread)
    fifth = len(order) // 5
    ranks = [np.argsort(np.argsort(v)) for v in (spread, error)]
    result = {
        "error_over_spread": float(error.mean() / spread.mean()),
        "within_1": float(np.mean(error <= spread)),
        "within_2": float(np.mean(error <= 2 * spread)),
        "within_3": float(np.mean(error <= 3 * spread)),
        "mae_smallest_fifth": float(error[order[:fifth]].mean()),
        "mae_largest_fifth": float(error[order[-fifth:]].mean()),
        "spearman": float(np.corrcoef(*ranks)[0, 1]),
    }
    print(
        "uncertainty column against the error, out of fold: mean |error| = "
        f"{result['error_over_spread']:.2f} x mean uncertainty; {result['within_1']:.0%} "
        f"within 1, {result['within_2']:.0%} within 2, {result['within_3']:.0%} within 3 "
        f"(normal: 68 %, 95 %, 99.7 %); MAE {result['mae_smallest_fifth']:.4f} for the fifth "
        f"with the smallest uncertainty, {result['mae_largest_fifth']:.4f} for the largest; "
        f"Spearman {result['spearman']:.2f}"
    )
    return result


def carbon_features(cif: str) -> list[float]:
    """Eight numbers of a carbon allotrope: volume per atom, mean coordination within 2 Å,
    the fractions of 2-, 3- and 4-coordinated atoms, mean and spread of the nearest-neighbour
    distance, and the atom count (the baseline a model of geometry has to beat)."""
    import warnings

    from pymatgen.core import Structure

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        structure = Structure.from_str(cif, fmt="cif")
    n = len(structure)
    within = structure.get_all_neighbors(2.0)
    coordination = np.array([len(found) for found in within])
    nearest = np.array(
        [min(x.nn_distance for x in found) if found else 2.0 for found in within], dtype=float
    )
    return [
        structure.volume / n,
        float(coordination.mean()),
        *(float(np.mean(coordination == k)) for k in (2, 3, 4)),
        float(nearest.mean()),
        float(nearest.std()),
        float(n),
    ]


def carbon_baseline(rows: list[dict], ids: list[str], folds: int, out: Path) -> list[float]:
    """Test MAE per fold of a gradient-boosted regressor on :func:`carbon_features`, on the
    folds the models use (trained on their train + validation crystals)."""
    from sklearn.ensemble import GradientBoostingRegressor

    features = np.array([carbon_features(r["cif"]) for r in rows])
    values = np.array([float(r["energy_per_atom"]) for r in rows])
    maes = []
    for split in fold_splits(ids, folds, out):
        roles = dict(csv.reader(split.open()))
        test = np.array([roles[i] == "test" for i in ids])
        model = GradientBoostingRegressor(random_state=0).fit(features[~test], values[~test])
        maes.append(float(np.abs(model.predict(features[test]) - values[test]).mean()))
    return maes


def split_train_options(argv: list[str] | None) -> tuple[list[str], list[str]]:
    """(this script's arguments, extra ``cgcnn train`` options after a ``--``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" not in argv:
        return argv, []
    return argv[: argv.index("--")], argv[argv.index("--") + 1 :]


def main(argv: list[str] | None = None) -> int:
    argv, extra = split_train_options(argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("task", choices=["perov5", "homework", "metal", "carbon24", "all"])
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds (5)")
    parser.add_argument("--out", default="bench-accuracy", help="run folder")
    parser.add_argument(
        "--only",
        type=int,
        nargs="+",
        metavar="FOLD",
        help="run only these folds of the --folds partition (a quicker look; the summary "
        "then averages these)",
    )
    parser.add_argument(
        "--no-validation",
        action="store_true",
        help="train on every non-test crystal of each fold (the homework: its validation "
        "crystals too), for the whole schedule, keeping the last epoch: no early stopping "
        "(cgcnn train --val-ratio 0); the uncertainty takes the scale of the same fold's "
        "validated ensemble in OUT/TASK when it is there (--uncertainty-from), else it is "
        "the raw spread",
    )
    args = parser.parse_args(argv)
    global ONLY, VALIDATION_SHARE
    ONLY = set(args.only) if args.only else None
    VALIDATION_SHARE = 0.0 if args.no_validation else VALIDATION_SHARE
    if not SHARED.is_dir():
        print(f"skipped: {SHARED} is absent (the shared data sets are not beside the repo)")
        return 0
    root = Path(args.out)
    tasks = ["perov5", "homework", "metal"] if args.task == "all" else [args.task]
    for task in tasks:
        # its own folder: finished folds are reused, and these are other runs
        out = root / (task if VALIDATION_SHARE else f"{task}-no-validation")
        out.mkdir(parents=True, exist_ok=True)
        # without validation a regression ensemble borrows the scale of the validated run
        validated = None if VALIDATION_SHARE else root / task
        if task == "perov5":
            rows = perov5_rows()
            ids = [r["material_id"] for r in rows]
            values = np.array([float(r["heat_ref"]) for r in rows])
            options = ["--target", "heat_ref", *extra]
            results = cross_validate(PEROV5, ids, values, args.folds, out, options, validated)
            calibration = spread_calibration(out, args.folds)
            extra = {"uncertainty": calibration} if calibration is not None else None
            summarise(task, results, "test_mae", out, extra)
        elif task == "carbon24":
            with CARBON24.open(newline="") as handle:
                rows = list(csv.DictReader(handle))
            ids = [r["material_id"] for r in rows]
            values = np.array([float(r["energy_per_atom"]) for r in rows])
            baseline = carbon_baseline(rows, ids, args.folds, out)
            print(
                "eight-feature gradient boosting, test MAE per fold: "
                + ", ".join(f"{v:.4f}" for v in baseline)
                + f"; mean {np.mean(baseline):.4f}",
                flush=True,
            )
            options = ["--target", "energy_per_atom", *extra]
            results = cross_validate(CARBON24, ids, values, args.folds, out, options, validated)
            summarise(task, results, "test_mae", out, {"gradient_boosting_mae": baseline})
        elif task == "homework":
            split = HOMEWORK_SPLIT if VALIDATION_SHARE else without_validation(HOMEWORK_SPLIT, out)
            options = ["--split", str(split), "--extensive", *extra]
            borrowed = scale_source(None if validated is None else validated / "run")
            metrics = train(HOMEWORK, out / "run", [*options, *borrowed])
            print(f"homework: test MAE {metrics['test_mae']:.3f} eV/cell")
            summarise(task, [metrics], "test_mae", out)
        else:
            rows = perov5_rows()
            labelled = metal_csv(rows, out)
            ids = [r["material_id"] for r in rows]
            labels = np.array([float(r["ind_gap"]) > 0 for r in rows], dtype=float)
            options = [*METAL_OPTIONS, *extra]
            results = cross_validate(labelled, ids, labels, args.folds, out, options)
            summarise(task, results, "test_roc_auc", out)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
