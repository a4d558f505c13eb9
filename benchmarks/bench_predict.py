"""Screening throughput and memory: ``cgcnn predict`` on 10,000 and 100,000 structures.

The structures are the Castelli perovskites of ``../shared/data/perov5-dev.csv`` (3,787
cells), each copied with its atoms displaced at random (0.03 Å standard deviation, as in
``bench_scaling.py``), so that every structure is distinct (the graph cache cannot reuse a
graph) and all are realistic.  For
each size, in one run and under the same load:

- **ours**: ``cgcnn predict CKPT data.csv`` with a model trained here for one epoch with the
  default settings (the number of epochs does not change the cost of a prediction), into a
  fresh graph cache: reading, graphs, batching and the model, end to end;
- **the original algorithm**: ``cgcnn predict formation-energy-per-atom.pth.tar data.csv``,
  the original CGCNN's pretrained model with the original's own featurization
  (:mod:`cgcnn.compat`: per-structure pymatgen neighbour lists padded to 12 neighbours, the
  original's Gaussian expansion and model), on the same structures.

Each command runs in its own process; the benchmark prints its wall time, structures per
second, the peak resident memory of its largest process (``getrusage``'s ``ru_maxrss``), and
the throughput ratio ours / original.

    python benchmarks/bench_predict.py                 # 10k and 100k (the original: 10k)
    python benchmarks/bench_predict.py --sizes 2000    # a quick look
    python benchmarks/bench_predict.py --reference-max 100000   # the original on 100k too
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
PEROV5 = SHARED / "perov5-dev.csv"
ORIGINAL = SHARED / "pretrained-cgcnn" / "formation-energy-per-atom.pth.tar"
ATOM_INIT = SHARED / "atom_init.json"

# the data and the measurement of bench_scaling.py: displaced perov5 copies written as P1 CIF
# strings, and a child process's wall time and peak resident memory
from bench_scaling import run as measured  # noqa: E402
from bench_scaling import write_displaced_set  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument(
        "--reference-max",
        type=int,
        default=10_000,
        help="run the original algorithm only on sizes up to this (it is the slow one; "
        "default 10000)",
    )
    parser.add_argument("--out", help="work folder (default: a temporary one)")
    args = parser.parse_args(argv)
    for needed in (PEROV5, ORIGINAL, ATOM_INIT):
        if not needed.exists():
            print(f"skipped: {needed} is absent (the shared data sets)")
            return 0
    root = Path(args.out or tempfile.mkdtemp(prefix="bench-predict-"))
    root.mkdir(parents=True, exist_ok=True)
    cgcnn = [sys.executable, "-m", "cgcnn"]
    run = root / "model"
    if not (run / "best.ckpt").exists():
        print("training a model for one epoch (the checkpoint to predict with) ...", flush=True)
        subprocess.run(
            [*cgcnn, "train", str(PEROV5), "--target", "heat_ref", "--epochs", "1",
             "--ensemble", "1", "--out", str(run), "--cache", str(root / "train-cache"),
             "--overwrite"],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    rows = []
    for n in args.sizes:
        data = root / f"copies-{n}.csv"
        if not data.exists():
            write_displaced_set(n, data)
        ours = [*cgcnn, "predict", str(run / "best.ckpt"), str(data), "--out",
                str(root / f"ours-{n}.csv"), "--cache", str(root / f"cache-{n}")]  # fmt: skip
        for stale in (root / f"cache-{n}").glob("*"):
            stale.unlink()
        seconds, rss = measured(ours)
        rss *= 1024  # GB -> MiB
        rows.append(("ours", n, seconds, rss))
        print(f"ours      {n:>7}: {seconds:7.1f} s, {n / seconds:6.0f}/s, {rss:6.0f} MiB",
              flush=True)  # fmt: skip
        if n <= args.reference_max:
            original = [*cgcnn, "predict", str(ORIGINAL), str(data), "--atom-init",
                        str(ATOM_INIT), "--out", str(root / f"original-{n}.csv")]  # fmt: skip
            seconds, rss = measured(original)
            rss *= 1024
            rows.append(("original", n, seconds, rss))
            print(f"original  {n:>7}: {seconds:7.1f} s, {n / seconds:6.0f}/s, {rss:6.0f} MiB",
                  flush=True)  # fmt: skip
    print("\n| tool | structures | seconds | structures/s | peak RSS (MiB) | ratio |")
    print("|---|---|---|---|---|---|")
    by_size = {(tool, n): s for tool, n, s, _ in rows}
    for tool, n, seconds, rss in rows:
        ratio = ""
        if tool == "ours" and ("original", n) in by_size:
            ratio = f"{by_size['original', n] / seconds:.1f}x the original's throughput"
        print(f"| {tool} | {n} | {seconds:.1f} | {n / seconds:.0f} | {rss:.0f} | {ratio} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
