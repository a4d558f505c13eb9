"""What a training epoch costs with each convolution, measured in one process.

For each data set, the graphs are built once with the settings each convolution trains on
(``threebody`` also keeps every neighbour within its angle radius), batched as ``cgcnn
train`` batches them (:class:`cgcnn.batching.GraphBatcher`, 32 crystals, edges merged except
for ``threebody``), and each model (the default architecture, 3 layers of width 64) runs
training steps (forward, L1 loss, backward, AdamW step) over the same batches, the
convolutions taking turns so that the machine's load falls on all of them alike.  The
script prints, per data set and convolution, the median seconds per step, the estimated
seconds per epoch over 80 % of the data, the triplets per crystal, and the ratio to
``edgegated``.

    python benchmarks/bench_conv_cost.py                       # perov5 and carbon24
    python benchmarks/bench_conv_cost.py --angle-radius 3 3.5  # threebody at two radii
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DATA = {
    "perov5": (SHARED / "perov5-dev.csv", "heat_ref"),
    "carbon24": (SHARED / "carbon24-dev.csv", "energy_per_atom"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=list(DATA), choices=list(DATA))
    parser.add_argument("--convs", nargs="+", default=["gated", "edgegated", "threebody"])
    parser.add_argument("--angle-radius", type=float, nargs="+", default=[3.0])
    parser.add_argument("--batches", type=int, default=30, help="timed steps per model")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    missing = [str(DATA[d][0]) for d in args.data if not DATA[d][0].exists()]
    if missing:
        print(f"skipped: {', '.join(missing)} absent (the shared data sets)")
        return 0
    torch.set_num_threads(args.threads)
    from cgcnn.training import _keep_freed_memory

    _keep_freed_memory()  # as cgcnn train does on a CPU
    cache = Path(tempfile.mkdtemp(prefix="bench-conv-cost-"))
    print("| data | convolution | s / step | s / epoch | triplets / crystal | × edgegated |")
    print("|---|---|---|---|---|---|")
    for name in args.data:
        variants = []
        for conv in args.convs:
            radii = args.angle_radius if conv == "threebody" else [None]
            variants += [(conv, radius) for radius in radii]
        rows = measure(name, variants, args.batches, cache)
        base = rows.get(("edgegated", None))
        for (conv, radius), (step, epoch, triplets) in rows.items():
            label = conv if radius is None else f"{conv} ({radius:g} Å)"
            ratio = f"{step / base[0]:.2f}" if base else ""
            print(f"| {name} | {label} | {step:.4f} | {epoch:.1f} | {triplets:.0f} | {ratio} |")
    return 0


def measure(name: str, variants, batches: int, cache: Path) -> dict:
    from cgcnn.batching import GraphBatcher
    from cgcnn.dataset import CrystalGraphDataset
    from cgcnn.elements import resolve_atom_features
    from cgcnn.nn.model import CGCNN, CGCNNConfig
    from cgcnn.nn.three_body import bond_vectors, find_triplets

    path, target = DATA[name]
    features = resolve_atom_features("cgcnn92+onehot")
    rng = np.random.default_rng(0)
    setups = {}
    for conv, radius in variants:
        dataset = CrystalGraphDataset(
            path, target=target, cache_dir=cache, angle_radius=radius, progress=False
        )
        angles = radius is not None
        batcher = GraphBatcher(dataset, bond_vectors=angles)
        config = CGCNNConfig(
            atom_input_len=features.dim, conv=conv, activation="silu", angle_radius=radius or 0.0
        )
        model = CGCNN(config, torch.from_numpy(features.table))
        batcher.expand_edges(model.gaussian)
        optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
        setups[conv, radius] = (dataset, batcher, model, optimizer)
    n = len(next(iter(setups.values()))[0])
    order = [rng.choice(n, 32, replace=False) for _ in range(batches + 3)]
    times: dict = {key: [] for key in setups}
    triplets: dict = {key: 0.0 for key in setups}
    for step, ids in enumerate(order):
        for key, (_, batcher, model, optimizer) in setups.items():
            batch = batcher(ids)
            started = time.perf_counter()
            optimizer.zero_grad()
            loss = torch.nn.functional.l1_loss(model(batch), (batch.y - batch.y.mean()))
            loss.backward()
            optimizer.step()
            if step >= 3:  # the first steps warm up
                times[key].append(time.perf_counter() - started)
                if key[1] is not None:
                    found = find_triplets(
                        batch.edge_index, batch.distances, bond_vectors(batch), key[1]
                    )
                    triplets[key] += found.bond.shape[0] / len(ids) / batches
    steps_per_epoch = 0.8 * n / 32
    return {
        key: (statistics.median(t), statistics.median(t) * steps_per_epoch, triplets[key])
        for key, t in times.items()
    }


if __name__ == "__main__":
    sys.exit(main())
