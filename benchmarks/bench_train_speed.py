"""Training speed: ``cgcnn train --preset original`` against the original algorithm, same run.

The reference is a re-implementation of the original CGCNN's training as its code runs it
(Xie & Grossman 2018, github.com/txie-93/cgcnn, ``main.py`` / ``model.py`` / ``data.py``):

- crystals as padded neighbour tables: atom features (N, 92), Gaussian-expanded distances
  (N, M, 41), neighbour indices (N, M), batched by concatenation with an offset
  (``collate_pool``) and a list of per-crystal atom-index tensors;
- each convolution gathers (N, M, F) neighbour features, concatenates (N, M, 2F + 41), applies
  one linear layer, batch norms over the N·M edges, gates, sums over M, batch norm, residual;
- mean pooling by a Python loop over the crystals of the batch;
- SGD (lr 0.01, momentum 0.9), MSE on targets normalised by the training mean and std,
  MultiStepLR milestone 100, batch 256, 30 epochs, validation every epoch with the MAE
  accumulated per batch, and the checkpoint written every epoch.

It is given every advantage: its featurized crystals are built once, in memory, before the
clock starts (the original rebuilds them in the first epoch and caches them).

Ours: :func:`cgcnn.train` with the ``original`` preset on the same data, same split sizes,
same thread count; ``train_seconds`` is the training loop with validation, the same span.

    python benchmarks/bench_train_speed.py                  # perov5-dev heat_ref, 3 repeats
    python benchmarks/bench_train_speed.py --repeats 1 --epochs 5

``--reference cgcnn2`` takes the reference's model and collate from the ``cgcnn2`` package on
PyPI (a maintained copy of the original code) instead of the re-implementation above; the
training loop stays the one described.  Install it in a separate environment, never beside a
user's cgcnn:

    python3 -m venv bench-env && bench-env/bin/pip install torch==2.13.0
    bench-env/bin/pip install . cgcnn2
    bench-env/bin/python benchmarks/bench_train_speed.py --reference cgcnn2

Prints the median seconds of each and the ratio ours / reference (target ≤ 1/3).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


# --------------------------------------------------------------------------------------
# The reference: the original CGCNN's model, collate and training loop


class OriginalConv(nn.Module):
    """The original gated convolution on padded (N, M) neighbour tables."""

    def __init__(self, atom_fea_len: int, nbr_fea_len: int) -> None:
        super().__init__()
        self.fc_full = nn.Linear(2 * atom_fea_len + nbr_fea_len, 2 * atom_fea_len)
        self.bn1 = nn.BatchNorm1d(2 * atom_fea_len)
        self.bn2 = nn.BatchNorm1d(atom_fea_len)
        self.sigmoid, self.softplus1, self.softplus2 = nn.Sigmoid(), nn.Softplus(), nn.Softplus()
        self.atom_fea_len = atom_fea_len

    def forward(self, atom: torch.Tensor, nbr_fea: torch.Tensor, nbr_idx: torch.Tensor):
        n, m = nbr_idx.shape
        f = self.atom_fea_len
        neighbours = atom[nbr_idx, :]  # (N, M, F)
        z = torch.cat([atom.unsqueeze(1).expand(n, m, f), neighbours, nbr_fea], dim=2)
        gated = self.fc_full(z)  # (N, M, 2F)
        gated = self.bn1(gated.view(-1, 2 * f)).view(n, m, 2 * f)
        filt, core = gated.chunk(2, dim=2)
        summed = torch.sum(self.sigmoid(filt) * self.softplus1(core), dim=1)  # (N, F)
        return self.softplus2(atom + self.bn2(summed))


class OriginalNet(nn.Module):
    """Embedding, n_conv convolutions, per-crystal mean pooling loop, one hidden layer."""

    def __init__(self, orig_len: int, nbr_len: int, f: int = 64, n_conv: int = 3, h: int = 128):
        super().__init__()
        self.embedding = nn.Linear(orig_len, f)
        self.convs = nn.ModuleList([OriginalConv(f, nbr_len) for _ in range(n_conv)])
        self.conv_to_fc = nn.Linear(f, h)
        self.conv_to_fc_softplus = nn.Softplus()
        self.fc_out = nn.Linear(h, 1)

    def forward(self, atom_fea, nbr_fea, nbr_idx, crystal_atom_idx):
        atom = self.embedding(atom_fea)
        for conv in self.convs:
            atom = conv(atom, nbr_fea, nbr_idx)
        pooled = torch.cat(
            [torch.mean(atom[idx], dim=0, keepdim=True) for idx in crystal_atom_idx], dim=0
        )
        hidden = self.conv_to_fc_softplus(self.conv_to_fc(self.conv_to_fc_softplus(pooled)))
        return self.fc_out(hidden)


def collate_pool(items):
    """Concatenate crystals, offsetting neighbour indices; list the atoms of each crystal."""
    atoms, nbrs, idxs, crystal_atom_idx, targets = [], [], [], [], []
    base = 0
    for (atom_fea, nbr_fea, nbr_idx), target in items:
        n = atom_fea.shape[0]
        atoms.append(atom_fea)
        nbrs.append(nbr_fea)
        idxs.append(nbr_idx + base)
        crystal_atom_idx.append(torch.LongTensor(np.arange(n) + base))
        targets.append(target)
        base += n
    return (
        (torch.cat(atoms), torch.cat(nbrs), torch.cat(idxs), crystal_atom_idx),
        torch.stack(targets),
    )


def original_items(dataset, atom_table: np.ndarray) -> list:
    """Each crystal as the original's ((atom_fea, nbr_fea, nbr_idx), target) tensors."""
    centres = np.arange(0.0, 8.0 + 0.2, 0.2)  # the original GaussianDistance(0, 8, 0.2)
    items = []
    for index in range(len(dataset)):
        graph = dataset.graph(index)
        n, m = graph.num_atoms, 12
        order = np.lexsort((graph.distances, graph.edge_index[1]))
        neighbours = graph.edge_index[0][order].reshape(n, m)
        distances = graph.distances[order].reshape(n, m)
        expanded = np.exp(-((distances[..., None] - centres) ** 2) / 0.2**2)
        items.append(
            (
                (
                    torch.Tensor(atom_table[graph.atomic_numbers]),
                    torch.Tensor(expanded),
                    torch.LongTensor(neighbours),
                ),
                torch.Tensor([float(dataset.targets[index][0])]),
            )
        )
    return items


class Cgcnn2Net(nn.Module):
    """``cgcnn2.model.CrystalGraphConvNet`` (PyPI ``cgcnn2``, the original's code kept up to
    date) with the original's defaults; returns its prediction only, like :class:`OriginalNet`."""

    def __init__(self, orig_len: int, nbr_len: int) -> None:
        super().__init__()
        from cgcnn2.model import CrystalGraphConvNet

        self.net = CrystalGraphConvNet(orig_len, nbr_len)

    def forward(self, atom_fea, nbr_fea, nbr_idx, crystal_atom_idx):
        return self.net(atom_fea, nbr_fea, nbr_idx, crystal_atom_idx)[0]


def cgcnn2_collate(items):
    """``cgcnn2.data.collate_pool`` on our items (it also wants an id per crystal)."""
    from cgcnn2.data import collate_pool as cgcnn2_collate_pool

    inputs, targets, _ids = cgcnn2_collate_pool(
        [(crystal, target, k) for k, (crystal, target) in enumerate(items)]
    )
    return inputs, targets


def reference_parts(reference: str):
    """The reference's model class and collate function: ``reimplementation`` (the classes
    above) or ``cgcnn2`` (the PyPI package's, imported; install it in this environment only)."""
    if reference == "reimplementation":
        return OriginalNet, collate_pool
    try:
        import cgcnn2  # noqa: F401
    except ImportError as error:
        raise SystemExit(
            "--reference cgcnn2 needs the cgcnn2 package in this environment "
            "(pip install cgcnn2; it is never a dependency of cgcnn)"
        ) from error
    return Cgcnn2Net, cgcnn2_collate


def run_reference(
    items, train_idx, val_idx, epochs: int, out: Path, reference: str = "reimplementation"
) -> float:
    """The original training loop; returns its wall time in seconds."""
    torch.manual_seed(0)
    from torch.utils.data import DataLoader, Subset

    net_class, collate = reference_parts(reference)
    train_loader = DataLoader(
        Subset(items, train_idx), batch_size=256, shuffle=True, collate_fn=collate
    )
    val_loader = DataLoader(Subset(items, val_idx), batch_size=256, collate_fn=collate)
    sample = torch.stack([items[i][1] for i in train_idx[:500]])
    mean, std = sample.mean(), sample.std()
    model = net_class(items[0][0][0].shape[1], items[0][0][1].shape[2])
    optimizer = torch.optim.SGD(model.parameters(), 0.01, momentum=0.9, weight_decay=0)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[100], gamma=0.1)
    criterion = nn.MSELoss()
    start = time.perf_counter()
    for _epoch in range(epochs):
        model.train()
        for (atom_fea, nbr_fea, nbr_idx, crystal_idx), target in train_loader:
            output = model(atom_fea, nbr_fea, nbr_idx, crystal_idx)
            loss = criterion(output, (target - mean) / std)
            _mae = torch.mean(torch.abs(output.data.cpu() * std + mean - target))
            _ = loss.data.cpu().item(), _mae.item()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        total, count = 0.0, 0
        with torch.no_grad():
            for (atom_fea, nbr_fea, nbr_idx, crystal_idx), target in val_loader:
                output = model(atom_fea, nbr_fea, nbr_idx, crystal_idx)
                criterion(output, (target - mean) / std).item()
                total += torch.sum(torch.abs(output * std + mean - target)).item()
                count += target.shape[0]
        scheduler.step()
        torch.save({"state_dict": model.state_dict(), "mae": total / count}, out / "ckpt.pth")
    return time.perf_counter() - start


# --------------------------------------------------------------------------------------


def profile_steps(items, dataset, train_idx, reference: str, rows: int = 12) -> None:
    """Per-operator profile of training steps (batch 256): the reference, then ours."""
    from torch.profiler import profile

    from cgcnn.batching import GraphBatcher
    from cgcnn.nn.model import CGCNN, CGCNNConfig

    batch_ids = list(train_idx[:256])
    net_class, collate = reference_parts(reference)
    (atom_fea, nbr_fea, nbr_idx, crystal_idx), target = collate([items[i] for i in batch_ids])
    original = net_class(atom_fea.shape[1], nbr_fea.shape[2])
    ours = CGCNN(CGCNNConfig(atom_input_len=atom_fea.shape[1]))
    batch = GraphBatcher(dataset)(batch_ids)

    def reference_step():
        out = original(atom_fea, nbr_fea, nbr_idx, crystal_idx)
        nn.functional.mse_loss(out, target).backward()

    def our_step():
        nn.functional.mse_loss(ours(batch), batch.y).backward()

    for name, step in (("reference", reference_step), ("ours", our_step)):
        if name == "ours":  # what cgcnn train does first on a CPU
            from cgcnn.training import _keep_freed_memory

            _keep_freed_memory()
        for _ in range(3):
            step()
        with profile() as prof:
            for _ in range(5):
                step()
        print(f"\n{name}: 5 training steps, forward + backward")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(SHARED / "perov5-dev.csv"))
    parser.add_argument("--target", default="heat_ref")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--profile", action="store_true", help="print per-operator profiles")
    parser.add_argument(
        "--reference",
        choices=["reimplementation", "cgcnn2"],
        default="reimplementation",
        help="the original algorithm as re-implemented here (default), or the cgcnn2 package "
        "from PyPI (install it in the benchmark's environment only)",
    )
    args = parser.parse_args(argv)
    reference_parts(args.reference)  # fail before featurizing when cgcnn2 is missing
    if not Path(args.data).exists():
        print(f"skipped: {args.data} is absent (the shared data sets are not beside the repo)")
        return 0

    import cgcnn
    from cgcnn.elements import AtomFeatures
    from cgcnn.splits import random_split

    torch.set_num_threads(args.threads)
    workdir = Path(tempfile.mkdtemp(prefix="cgcnn-bench-train-"))
    dataset = cgcnn.CrystalGraphDataset(args.data, target=args.target, cache_dir=workdir / "cache")
    table = AtomFeatures.from_json(SHARED / "atom_init.json")
    items = original_items(dataset, table.table)
    split = random_split(len(dataset), val_ratio=0.1, test_ratio=0.1, seed=0)
    train_idx, val_idx = split.train, split.val
    print(
        f"{len(dataset)} crystals ({len(train_idx)} train, {len(val_idx)} val), "
        f"{args.epochs} epochs, {args.threads} thread(s), torch {torch.__version__}, "
        f"reference: {args.reference}"
    )

    if args.profile:
        profile_steps(items, dataset, train_idx, args.reference)
        return 0
    reference, ours = [], []
    for repeat in range(args.repeats):
        seconds = run_reference(
            items, list(train_idx), list(val_idx), args.epochs, workdir, args.reference
        )
        reference.append(seconds)
        # ours in its own process, as a user runs it (its allocator settings stay there)
        out = workdir / f"ours{repeat}"
        command = [
            sys.executable, "-m", "cgcnn.cli", "train", args.data, "--target", args.target,
            "--preset", "original", "--epochs", str(args.epochs), "--seed", "0",
            "--cache", str(workdir / "cache"), "--out", str(out),
        ]  # fmt: skip
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
        subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
        metrics = json.loads((out / "metrics.json").read_text())
        ours.append(metrics["train_seconds"])
        print(
            f"repeat {repeat + 1}: reference {seconds:6.1f} s   ours {ours[-1]:6.1f} s   "
            f"(ours test MAE {metrics['test_mae']:.3f})",
            flush=True,
        )
    ref_median, ours_median = statistics.median(reference), statistics.median(ours)
    print(
        f"median: reference {ref_median:.1f} s ({ref_median / args.epochs:.2f} s/epoch), "
        f"ours {ours_median:.1f} s ({ours_median / args.epochs:.2f} s/epoch)"
    )
    print(f"ratio ours / reference: {ours_median / ref_median:.3f} (target <= 0.333)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
