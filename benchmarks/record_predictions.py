"""Record what the commands predict on every shared data set, to prove a change changes nothing.

Runs, through the command line, a fixed-seed training of each task (a few epochs: the point
is the numbers, not their accuracy) and the original CGCNN checkpoints, predicts every
crystal of each data set, and writes a manifest of SHA-256 digests of the predictions, the
test results and the metrics (timings left out).  Run it before and after a change:

    python benchmarks/record_predictions.py --out /tmp/before
    ... change the code ...
    python benchmarks/record_predictions.py --out /tmp/after --compare /tmp/before

``--compare`` prints one line per output, ``same`` or ``DIFFERENT``, and exits with 1 when
anything differs.  Needs ``../shared/data``; takes a few minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
#: metrics that measure time, not results
TIMINGS = {"train_seconds", "ensemble_seconds", "jobs", "checkpoint", "total_seconds"}
FEW = ["--ensemble", "1", "--epochs"]

#: name -> (data, `cgcnn train` options)
TRAININGS: dict[str, tuple[str, list[str]]] = {
    "sample-regression": ("sample-regression", [*FEW, "5"]),
    "sample-classification": (
        "sample-classification",
        [*FEW, "5", "--task", "classification"],
    ),
    "perovskite-energy": (
        "perovskite-energy",
        [*FEW, "3", "--extensive", "--split", str(SHARED / "perovskite-energy-split.csv")],
    ),
    "perovskite-energy-original": (
        "perovskite-energy",
        ["--preset", "original", "--epochs", "3", "--extensive"],
    ),
    "perov5-heat_ref": ("perov5-dev.csv", [*FEW, "2", "--target", "heat_ref"]),
    "carbon24": ("carbon24-dev.csv", [*FEW, "2", "--target", "energy_per_atom"]),
    "sample-regression-ensemble": ("sample-regression", ["--ensemble", "2", "--epochs", "3"]),
}
#: name -> (checkpoint, data, extra `cgcnn predict` options)
ORIGINALS: dict[str, tuple[str, str, list[str]]] = {
    "original-formation-energy": (
        "pretrained-cgcnn/formation-energy-per-atom.pth.tar",
        "perovskite-energy",
        [],
    ),
    "original-band-gap": ("pretrained-cgcnn/band-gap.pth.tar", "perovskite-energy", []),
    "original-semi-metal": (
        "pretrained-cgcnn/semi-metal-classification.pth.tar",
        "sample-classification",
        ["--atom-init", str(SHARED / "atom_init.json")],
    ),
}


def cgcnn(*args: str) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "cgcnn", *args], check=True, env=env)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def metrics_digest(path: Path) -> str:
    metrics = json.loads(path.read_text())
    kept = {k: v for k, v in sorted(metrics.items()) if k not in TIMINGS}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()


def record(out: Path, cache: Path) -> dict[str, str]:
    manifest: dict[str, str] = {}
    for name, (data, options) in TRAININGS.items():
        run = out / name
        target = options[options.index("--target") + 1] if "--target" in options else None
        extra = ["--target", target] if target else []
        cgcnn("train", str(SHARED / data), "--out", str(run), "--cache", str(cache), *options)
        checkpoint = run / ("ensemble.json" if (run / "ensemble.json").is_file() else "best.ckpt")
        predictions = out / f"{name}.predictions.csv"
        cgcnn("predict", str(checkpoint), str(SHARED / data), "--out", str(predictions), "--cache",
              str(cache), *extra)  # fmt: skip
        manifest[f"{name}/predictions.csv"] = digest(predictions)
        manifest[f"{name}/test_results.csv"] = digest(run / "test_results.csv")
        manifest[f"{name}/metrics.json"] = metrics_digest(run / "metrics.json")
    for name, (checkpoint, data, options) in ORIGINALS.items():
        predictions = out / f"{name}.predictions.csv"
        cgcnn("predict", str(SHARED / checkpoint), str(SHARED / data), "--out", str(predictions),
              *options)  # fmt: skip
        manifest[f"{name}/predictions.csv"] = digest(predictions)
    return manifest


def rows(path: Path) -> int:
    with path.open(newline="") as handle:
        return sum(1 for _ in csv.reader(handle)) - 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for runs and manifest")
    parser.add_argument("--compare", type=Path, help="a folder recorded earlier")
    args = parser.parse_args()
    if not SHARED.is_dir():
        print(f"skipped: {SHARED} is absent", file=sys.stderr)
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    manifest = record(args.out, args.out / "cache")
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"{len(manifest)} outputs recorded in {args.out / 'manifest.json'}")
    if args.compare is None:
        return 0
    before = json.loads((args.compare / "manifest.json").read_text())
    differ = 0
    for key in sorted(set(before) | set(manifest)):
        same = before.get(key) == manifest.get(key)
        differ += not same
        print(f"{'same' if same else 'DIFFERENT':9s} {key}")
    print(f"{len(manifest) - differ} of {len(manifest)} outputs identical")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
