"""``cgcnn demo``: the whole pipeline on an embedded default dataset, offline, in minutes.

Builds (or reuses) the synthetic Ewald-energy crystals of :mod:`cgcnn.demo_data`, featurizes
them, trains a CGCNN, evaluates it on a held-out test split, predicts with the saved
checkpoint, and writes ``metrics.json``, ``test_results.csv``, ``predictions.csv``, a learning
curve and a parity plot to ``out``.  ``dataset=NAME`` runs the same pipeline on a registered
real dataset instead (fetched on first use).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

#: Settings of the embedded demo: small enough to train in a couple of minutes on a laptop.
DEMO_CRYSTALS = 1200
DEMO_SEED = 0
DEMO_TRAIN = {"epochs": 60, "patience": 20}

#: Extra training options for registered datasets whose target needs them.
DATASET_OPTIONS: dict[str, dict[str, Any]] = {
    "perovskite-energy": {"extensive": True, "split_file": "split.csv"},
    "perov5": {"target": "heat_ref", "split_file": "split.csv"},
    "carbon24": {"target": "energy_per_atom"},
}


def run_demo(
    out: str | os.PathLike = "cgcnn-demo",
    *,
    dataset: str | None = None,
    root: str | os.PathLike | None = None,
    epochs: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the demo pipeline and return its metrics (also in ``out/metrics.json``)."""
    from cgcnn.files import make_folder, write_json
    from cgcnn.prediction import predict
    from cgcnn.training import train

    out = make_folder(out)
    started = time.perf_counter()
    options: dict[str, Any] = dict(DEMO_TRAIN)
    if dataset is None:
        from cgcnn.demo_data import write_demo_dataset

        data = write_demo_dataset(out / "data", n=DEMO_CRYSTALS, seed=DEMO_SEED)
        options["unit"] = "eV/atom"  # the progress lines and the figures say it
        label = (
            f"{DEMO_CRYSTALS} synthetic ionic crystals made by cgcnn; target: Ewald "
            "(Madelung) electrostatic energy per atom of formal point charges, eV/atom, "
            "from pymatgen's EwaldSummation (a physical model, not DFT)"
        )
    else:
        from cgcnn.datasets import resolve_data

        data = Path(resolve_data(dataset, root))  # the folder or file the readers take
        extra = dict(DATASET_OPTIONS.get(dataset, {}))
        split_file = extra.pop("split_file", None)
        folder = data if data.is_dir() else data.parent
        if split_file and (folder / split_file).is_file():
            options["split"] = folder / split_file
        options.update(extra)
        label = f"registered dataset {dataset}"
    if epochs is not None:
        options["epochs"] = epochs
    # the demo is rerun as it is: it replaces its own earlier outputs
    result = train(data, out, progress=progress, overwrite=True, **options)
    predictions = out / "predictions.csv"
    predict(result.checkpoint, data, predictions, target=options.get("target"), progress=False)
    metrics = dict(result.metrics)
    metrics["dataset"] = label
    baseline = _mean_baseline_mae(out / "test_results.csv")
    if baseline is not None:
        metrics["test_mae_of_predicting_the_mean"] = baseline
    metrics["total_seconds"] = round(time.perf_counter() - started, 1)
    write_json(out / "metrics.json", metrics)
    return metrics


def _mean_baseline_mae(results_csv: Path) -> float | None:
    """MAE of predicting the test targets' mean: the number a model has to beat."""
    import csv

    if not results_csv.is_file():
        return None
    with open(results_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or "target" not in rows[0]:
        return None
    targets = [float(r["target"]) for r in rows]
    mean = sum(targets) / len(targets)
    return round(sum(abs(t - mean) for t in targets) / len(targets), 6)


def summary(metrics: dict[str, Any], out: str | os.PathLike) -> str:
    """A few lines for the terminal: what was trained, how well, and where to look."""
    out = Path(out)
    lines = [f"data: {metrics['dataset']}"]
    lines.append(
        f"crystals: {metrics['n_train']} train, {metrics['n_val']} validation, "
        f"{metrics['n_test']} test; training loop {metrics['train_seconds']:.0f} s, "
        f"whole demo {metrics['total_seconds']:.0f} s"
    )
    scores = {k: v for k, v in metrics.items() if k.startswith("test_") and "predicting" not in k}
    lines.append("test: " + ", ".join(f"{k[5:]} {v:.4g}" for k, v in scores.items()))
    if "test_mae_of_predicting_the_mean" in metrics:
        lines.append(
            f"(predicting the mean would give MAE {metrics['test_mae_of_predicting_the_mean']:.4g})"
        )
    files = [
        name
        for name in (
            "metrics.json",
            "test_results.csv",
            "predictions.csv",
            "learning_curve.png",
            "parity.png",
            "best.ckpt",
        )
        if (out / name).exists()
    ]
    lines.append(f"outputs in {out}/: " + ", ".join(files))
    return "\n".join(lines)
