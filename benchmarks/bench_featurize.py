"""Featurization speed: ``cgcnn featurize`` against the reference algorithm, same run.

Reference (what the original CGCNN does per crystal, in one process): parse with pymatgen
(``Structure.from_file`` / ``Structure.from_str``), ``get_all_neighbors(radius)``, sort each
atom's neighbours by distance and keep the first ``max_neighbors``.

Ours: the ``cgcnn featurize`` command on the same sources into an empty cache (wall time of
the whole command, start-up included), then once more to show that every graph is reused.

    python benchmarks/bench_featurize.py                 # the four shared sets, ~6,500 crystals
    python benchmarks/bench_featurize.py --every 5       # time the reference on every 5th crystal
                                                         # and scale it (quicker, noisier)

Prints the times and the ratio ours / reference (the target is <= 1/20).
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SOURCES = ["perovskite-energy", "sample-regression", "perov5-dev.csv", "carbon24-dev.csv"]


def reference_inputs(every: int) -> list[tuple[str, str]]:
    """(kind, file path or CIF text) of every ``every``-th crystal of the four sets."""
    items: list[tuple[str, str]] = []
    for name in SOURCES:
        path = SHARED / name
        if path.is_dir():
            ids = [
                line.split(",")[0].strip()
                for line in path.joinpath("id_prop.csv").read_text().splitlines()
                if line.strip()
            ]
            items += [("file", str(path / f"{rid}.cif")) for rid in ids]
        else:
            with open(path, newline="") as handle:
                reader = csv.DictReader(handle)
                items += [("text", row["cif"]) for row in reader]
    return items[::every], len(items)


def reference(items: list[tuple[str, str]], radius: float, max_neighbors: int) -> float:
    from pymatgen.core import Structure

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for kind, value in items:
            structure = (
                Structure.from_file(value)
                if kind == "file"
                else Structure.from_str(value, fmt="cif")
            )
            for neighbors in structure.get_all_neighbors(radius):
                sorted(neighbors, key=lambda n: n.nn_distance)[:max_neighbors]
    return time.perf_counter() - start


def ours(cache: Path, extra: list[str]) -> tuple[float, str]:
    cmd = [
        sys.executable,
        "-m",
        "cgcnn",
        "featurize",
        *(str(SHARED / s) for s in SOURCES),
        "--cache",
        str(cache),
        *extra,
    ]
    start = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, result.stdout.strip().splitlines()[0]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--every", type=int, default=1, help="time the reference on every k-th crystal"
    )
    parser.add_argument("--workers", type=int, help="passed to cgcnn featurize")
    args = parser.parse_args()
    missing = [s for s in SOURCES if not (SHARED / s).exists()]
    if missing:
        sys.exit(f"shared data missing under {SHARED}: {missing}")
    extra = ["--workers", str(args.workers)] if args.workers else []

    items, total = reference_inputs(args.every)
    with tempfile.TemporaryDirectory() as tmp:
        cold, cold_line = ours(Path(tmp), extra)
        warm, warm_line = ours(Path(tmp), extra)
    ref = reference(items, 8.0, 12) * (total / len(items))
    scaled = "" if args.every == 1 else f" (timed on {len(items)}, scaled to {total})"
    print(f"crystals: {total}")
    print(f"reference (pymatgen parse + get_all_neighbors + sort, 1 process): {ref:8.2f} s{scaled}")
    print(f"cgcnn featurize, cold cache (whole command): {cold:8.2f} s   [{cold_line}]")
    print(f"cgcnn featurize, second run (whole command): {warm:8.2f} s   [{warm_line}]")
    print(f"ratio cold / reference: 1/{ref / cold:.1f}  (target: at most 1/20)")
    print(f"per crystal: reference {1e3 * ref / total:.2f} ms, cgcnn {1e3 * cold / total:.3f} ms")


if __name__ == "__main__":
    main()
