"""Screening throughput and memory: ``cgcnn predict`` on 10,000 and 100,000 structures.

The structures are the Castelli perovskites of ``../shared/data/perov5-dev.csv`` (3,787
cells), each copied with its atoms displaced at random by up to 0.05 Å, so that every
structure is distinct (the graph cache cannot reuse a graph) and all are realistic.  For
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

    python benchmarks/bench_predict.py                      # 10k and 100k, ~15 min on 2 cores
    python benchmarks/bench_predict.py --sizes 2000         # a quick look
    python benchmarks/bench_predict.py --reference-max 10000   # the original on 10k only
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
PEROV5 = SHARED / "perov5-dev.csv"
ORIGINAL = SHARED / "pretrained-cgcnn" / "formation-energy-per-atom.pth.tar"
ATOM_INIT = SHARED / "atom_init.json"

#: a P1 CIF; written from a template rather than by pymatgen's CifWriter, which takes ~2 ms
#: a structure (200 s for 100,000 copies) against ~20 µs here
CIF = """data_{name}
_symmetry_space_group_name_H-M   'P 1'
_cell_length_a   {a:.8f}
_cell_length_b   {b:.8f}
_cell_length_c   {c:.8f}
_cell_angle_alpha   {alpha:.8f}
_cell_angle_beta   {beta:.8f}
_cell_angle_gamma   {gamma:.8f}
_symmetry_Int_Tables_number   1
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
{sites}
"""


def base_structures() -> list:
    from pymatgen.core import Structure

    with PEROV5.open(newline="") as handle:
        return [Structure.from_str(row["cif"], fmt="cif") for row in csv.DictReader(handle)]


def write_copies(bases: list, n: int, path: Path, seed: int = 0) -> None:
    """``path``: CSV ``material_id,cif`` of ``n`` displaced copies of ``bases``."""
    rng = np.random.default_rng(seed)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["material_id", "cif"])
        for k in range(n):
            structure = bases[k % len(bases)]
            lattice = structure.lattice
            shift = rng.uniform(-0.05, 0.05, size=(len(structure), 3))  # Å
            frac = structure.frac_coords + lattice.get_fractional_coords(shift)
            sites = "\n".join(
                f"  {site.specie}  {site.specie}{i}  1  {x:.8f}  {y:.8f}  {z:.8f}  1"
                for i, (site, (x, y, z)) in enumerate(zip(structure, frac, strict=True))
            )
            a, b, c = lattice.abc
            alpha, beta, gamma = lattice.angles
            name = f"copy{k}"
            writer.writerow([name, CIF.format(name=name, a=a, b=b, c=c, alpha=alpha,
                                              beta=beta, gamma=gamma, sites=sites)])  # fmt: skip


def measured(command: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS of the largest process in MiB) of ``command``."""
    probe = (
        "import resource, subprocess, sys; "
        "code = subprocess.run(sys.argv[1:]).returncode; "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(code)"
    )
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", probe, *command], stdout=subprocess.PIPE, text=True, check=False
    )
    seconds = time.perf_counter() - began
    if done.returncode:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(command)}\n{done.stdout}")
    return seconds, int(done.stdout.strip().splitlines()[-1]) / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument(
        "--reference-max",
        type=int,
        default=100_000,
        help="run the original algorithm only on sizes up to this (it is the slow one)",
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
    bases = base_structures()
    rows = []
    for n in args.sizes:
        data = root / f"copies-{n}.csv"
        if not data.exists():
            write_copies(bases, n, data)
        ours = [*cgcnn, "predict", str(run / "best.ckpt"), str(data), "--out",
                str(root / f"ours-{n}.csv"), "--cache", str(root / f"cache-{n}")]  # fmt: skip
        for stale in (root / f"cache-{n}").glob("*"):
            stale.unlink()
        seconds, rss = measured(ours)
        rows.append(("ours", n, seconds, rss))
        print(f"ours      {n:>7}: {seconds:7.1f} s, {n / seconds:6.0f}/s, {rss:6.0f} MiB",
              flush=True)  # fmt: skip
        if n <= args.reference_max:
            original = [*cgcnn, "predict", str(ORIGINAL), str(data), "--atom-init",
                        str(ATOM_INIT), "--out", str(root / f"original-{n}.csv")]  # fmt: skip
            seconds, rss = measured(original)
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
