"""Train the original CGCNN algorithm (PyPI ``cgcnn2``) on one fold with its ``cgcnn-tr``.

Runs in cgcnn2's own environment: ``python cgcnn2_runner.py JOB.json``.  The job names
``train/``, ``valid/`` and ``test/`` folders of CIF files with an ``id_prop.csv`` each (the
package's own ``atom_init.json`` is copied beside them), the task and the wall-clock budget.
``cgcnn-tr`` runs with its defaults (Adam lr 1e-2, batch 256, MSE, the 64/3/128/1 network,
the best validation epoch kept for the test set) but for the number of epochs (1000), which
has no wall-clock option: a probe run of two epochs times the first (it featurizes the
crystals on the fly and caches them) and the second, and the real run gets the epochs that
fit the budget.  Writes the job's ``result`` JSON.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import shutil
import sys
import time
from importlib import resources
from pathlib import Path


class EpochClock(logging.Handler):
    """Notes the time of each of cgcnn-tr's log messages that end an epoch or the loop."""

    def __init__(self) -> None:
        super().__init__()
        self.epochs: list[float] = []
        self.done: float | None = None

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Epoch ["):
            self.epochs.append(time.perf_counter())
        elif message.startswith("Training complete"):
            self.done = time.perf_counter()


def run(work: Path, job_id: str, epochs: int, task: str) -> tuple[EpochClock, float]:
    """One ``cgcnn-tr`` run in ``work``; returns its epoch clock and its start time."""
    from cgcnn2.cli import cgcnn_tr
    from cgcnn2.utils import setup_logging

    setup_logging()  # what cgcnn-tr does first (a later call is a no-op): INFO to stdout
    clock = EpochClock()
    logging.getLogger().addHandler(clock)
    sys.argv = [
        "cgcnn-tr",
        "--train-set", str(work / "train"),
        "--valid-set", str(work / "valid"),
        "--test-set", str(work / "test"),
        "--epoch", str(epochs),
        "--task", task,
        "--job-id", job_id,
        "--disable-cuda",
    ]  # fmt: skip
    cwd = Path.cwd()
    os.chdir(work)
    started = time.perf_counter()
    try:
        cgcnn_tr.main()
    finally:
        os.chdir(cwd)
        logging.getLogger().removeHandler(clock)
    return clock, started


def main() -> int:
    job = json.loads(Path(sys.argv[1]).read_text())
    import cgcnn2
    import torch

    work = Path(job["work"])
    embedding = resources.files("cgcnn2") / "asset" / "atom_init.json"
    for part in ("train", "valid", "test"):
        with resources.as_file(embedding) as source:
            shutil.copy(source, work / part / "atom_init.json")
    budget = float(job["budget"])
    probe, started = run(work, "probe", 2, job["task"])
    first = probe.epochs[0] - started
    steady = probe.epochs[1] - probe.epochs[0]
    epochs = max(1, 1 + math.floor((budget - first) / steady))
    changes = [
        f"--epoch 1000 -> {epochs} to fit the {budget:.0f} s budget (probe: first epoch "
        f"{first:.1f} s with featurization, then {steady:.1f} s an epoch)"
    ]
    shutil.rmtree(work / "output_probe", ignore_errors=True)
    clock, started = run(work, "run", epochs, job["task"])
    out = work / "output_run"
    predictions = {}
    with (out / "test_results.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            predictions[row["cif_id"]] = float(row["pred"])
    checkpoint = torch.load(out / "best_model.ckpt", map_location="cpu", weights_only=False)
    parameters = sum(
        v.numel()
        for k, v in checkpoint["state_dict"].items()
        if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))
    )
    result = {
        "predictions": predictions,
        "train_seconds": round(clock.done - started, 1),
        "probe_seconds": round(probe.done - (probe.epochs[0] - first), 1),
        "epoch_seconds": round(steady, 2),
        "parameters": parameters,
        "epochs": len(clock.epochs),
        "best_epoch": checkpoint["epoch"],
        "changes": changes,
        "version": getattr(cgcnn2, "__version__", "?"),
        "torch": torch.__version__,
    }
    Path(job["result"]).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
