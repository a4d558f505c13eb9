"""Scaling: featurize and train one epoch on 10k, 100k and 500k structures.

The structures are the 3,787 Castelli perovskites of ``../shared/data/perov5-dev.csv``,
replicated with random displacements (Gaussian, 0.03 Å per coordinate) so that every copy is
a new crystal with a new graph; the target is the original's ``heat_ref``.  They are written
as one CSV (``id,cif,heat_ref``, P1 CIF strings) per size.

For each size, two commands run in their own processes, as a user runs them:

1. ``cgcnn featurize DATA.csv --cache CACHE`` (empty cache), and
2. ``cgcnn train DATA.csv --target heat_ref --epochs 1 --ensemble 1 --cache CACHE`` (graphs
   cached; one model with the default settings; ``train_seconds`` is the epoch with its
   validation).

Printed per size: seconds and microseconds per structure for each step, and each process's
peak resident memory (``ru_maxrss`` of the child).

    python benchmarks/bench_scaling.py                       # 10k, 100k, 500k (~30 min)
    python benchmarks/bench_scaling.py --sizes 2000,20000    # quicker
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"

CIF_HEAD = """data_{name}
_symmetry_space_group_name_H-M   'P 1'
_symmetry_Int_Tables_number   1
_cell_length_a   {a:.8f}
_cell_length_b   {b:.8f}
_cell_length_c   {c:.8f}
_cell_angle_alpha   {alpha:.8f}
_cell_angle_beta   {beta:.8f}
_cell_angle_gamma   {gamma:.8f}
loop_
 _symmetry_equiv_pos_site_id
 _symmetry_equiv_pos_as_xyz
  1  'x, y, z'
loop_
 _atom_site_type_symbol
 _atom_site_label
 _atom_site_symmetry_multiplicity
 _atom_site_fract_x
 _atom_site_fract_y
 _atom_site_fract_z
 _atom_site_occupancy
"""


def lattice_parameters(matrix: np.ndarray) -> dict[str, float]:
    a, b, c = (float(np.linalg.norm(v)) for v in matrix)

    def angle(u, v):
        return math.degrees(math.acos(float(np.dot(u, v) / np.linalg.norm(u) / np.linalg.norm(v))))

    return {
        "a": a,
        "b": b,
        "c": c,
        "alpha": angle(matrix[1], matrix[2]),
        "beta": angle(matrix[0], matrix[2]),
        "gamma": angle(matrix[0], matrix[1]),
    }


def write_displaced_set(n: int, path: Path, seed: int = 0) -> None:
    """``n`` displaced copies of the perov5 crystals as a CSV of P1 CIF strings."""
    from cgcnn.elements import element_symbol
    from cgcnn.io import iter_structures, parse_payload

    bases = []
    for record in iter_structures(SHARED / "perov5-dev.csv", target="heat_ref"):
        crystal = parse_payload(record.fmt, record.payload, record.source)
        symbols = [element_symbol(int(z)) for z in crystal.atomic_numbers]
        bases.append((crystal, symbols, float(record.target[0])))
    rng = np.random.default_rng(seed)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "cif", "heat_ref"])
        for k in range(n):
            crystal, symbols, target = bases[k % len(bases)]
            lattice = np.asarray(crystal.lattice, dtype=np.float64)
            cart = np.asarray(crystal.frac_coords) @ lattice
            cart = cart + rng.normal(0.0, 0.03, cart.shape)
            frac = np.linalg.solve(lattice.T, cart.T).T % 1.0
            lines = [CIF_HEAD.format(name=f"x{k}", **lattice_parameters(lattice))]
            for s, (symbol, (x, y, z)) in enumerate(zip(symbols, frac, strict=True)):
                lines.append(f"  {symbol}  {symbol}{s}  1  {x:.8f}  {y:.8f}  {z:.8f}  1\n")
            writer.writerow([f"x{k}", "".join(lines), f"{target:.6f}"])


def run(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (GB) of a child process."""
    code = (
        "import resource, subprocess, sys, json, time;"
        "t = time.perf_counter();"
        "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL);"
        "t = time.perf_counter() - t;"
        "print(json.dumps([t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, *command], check=True, capture_output=True, text=True
    )
    seconds, max_rss_kb = json.loads(out.stdout.strip().splitlines()[-1])
    return seconds, max_rss_kb / 1024**2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,500000")
    parser.add_argument("--workdir", help="where the data and caches go (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)
    if not (SHARED / "perov5-dev.csv").is_file():
        print(f"skipped: {SHARED} is absent (the shared data sets are not beside the repo)")
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    work = Path(args.workdir or tempfile.mkdtemp(prefix="cgcnn-bench-scaling-"))
    work.mkdir(parents=True, exist_ok=True)
    cgcnn = [sys.executable, "-m", "cgcnn.cli"]
    rows = []
    print(f"{os.cpu_count()} cores; work folder {work}", flush=True)
    for n in sizes:
        data = work / f"displaced-{n}.csv"
        started = time.perf_counter()
        write_displaced_set(n, data)
        print(f"{n}: wrote {data.stat().st_size / 1e6:.0f} MB in "
              f"{time.perf_counter() - started:.0f} s", flush=True)  # fmt: skip
        cache = work / f"cache-{n}"
        feat_s, feat_gb = run([*cgcnn, "featurize", str(data), "--cache", str(cache)])
        out = work / f"run-{n}"
        train_wall, train_gb = run(
            [*cgcnn, "train", str(data), "--target", "heat_ref", "--epochs", "1",
             "--ensemble", "1", "--cache", str(cache), "--out", str(out)]
        )  # fmt: skip
        metrics = json.loads((out / "metrics.json").read_text())
        epoch_s = metrics["train_seconds"]
        row = {
            "structures": n,
            "featurize_s": round(feat_s, 1),
            "featurize_us_per_structure": round(feat_s / n * 1e6),
            "featurize_peak_gb": round(feat_gb, 2),
            "epoch_s": round(epoch_s, 1),
            "epoch_us_per_structure": round(
                epoch_s / (metrics["n_train"] + metrics["n_val"]) * 1e6
            ),
            "train_command_s": round(train_wall, 1),
            "train_peak_gb": round(train_gb, 2),
            "cache_mb": round(sum(f.stat().st_size for f in cache.iterdir()) / 1e6),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
        data.unlink()
    print()
    header = list(rows[0])
    print(" | ".join(header))
    for row in rows:
        print(" | ".join(str(row[h]) for h in header))
    for key in ("featurize_us_per_structure", "epoch_us_per_structure"):
        values = [r[key] for r in rows]
        print(f"{key}: max / min = {max(values) / min(values):.2f} (target <= 1.5)")
    print(f"peak memory: {max(max(r['featurize_peak_gb'], r['train_peak_gb']) for r in rows)} GB "
          "(target <= 4)")  # fmt: skip
    (work / "scaling.json").write_text(json.dumps(rows, indent=2) + "\n")
    if not args.keep and not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
