"""Start-up time: ``cgcnn --help`` against ``python -c "import torch"``, medians of 7 runs.

    python benchmarks/bench_startup.py

The target: ``cgcnn --help`` answers in well under half the time of importing torch.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time


def median_seconds(cmd: list[str], runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    help_s = median_seconds([sys.executable, "-m", "cgcnn", "--help"])
    torch_s = median_seconds([sys.executable, "-c", "import torch"])
    print(f"cgcnn --help:             {help_s * 1e3:7.1f} ms (median of 7)")
    print(f'python -c "import torch": {torch_s * 1e3:7.1f} ms (median of 7)')
    print(f"ratio: {help_s / torch_s:.2f}  (target: well under 0.5)")


if __name__ == "__main__":
    main()
