"""Peers on the same folds, the same test crystals and the same wall-clock budget.

Trains other crystal-graph tools on exactly the cross-validation folds and splits of
``bench_accuracy.py`` (its ``fold_splits``, data paths and labels, imported) and scores them
with the same metric on the same test crystals:

- ``alignn``: ALIGNN (Choudhary & DeCost 2021), PyPI ``alignn==2026.8.11``, its example
  property configuration through its own ``train_alignn`` entry point
  (``peers/alignn_runner.py`` says what is set and why);
- ``megnet`` and ``m3gnet``: MEGNet (Chen et al. 2019) and M3GNet (Chen & Ong 2022) property
  models from PyPI ``matgl==4.1.2`` (PyTorch Geometric), trained the way matgl's tutorials
  train them, with its ``ModelLightningModule`` and a Lightning trainer
  (``peers/matgl_runner.py``);
- ``cgcnn2``: the original CGCNN algorithm (Xie & Grossman 2018), PyPI ``cgcnn2``, its
  ``cgcnn-tr`` training command (``peers/cgcnn2_runner.py``);
- ``ours``: ``cgcnn train`` with its defaults, run exactly as ``bench_accuracy.py`` runs it
  (the same output layout, so a finished fold is reused).

Each peer is installed into its own virtual environment under ``--envs`` (default
``~/.cache/cgcnn-peers/``; ``torch==2.13.0`` first, the CPU build, then the pinned peer),
never beside ``cgcnn``; an environment that holds the pins already is reused.  For each fold
the script writes the data in the peer's format into a work folder (POSCAR files and
``id_prop.csv`` for ALIGNN, CIF folders for cgcnn2, pymatgen structures as JSON for matgl),
copies the peer's runner beside it, runs it with the peer's Python, and reads back the test
predictions, training seconds, parameter count, epochs and the settings it had to change.

**Equal budget.**  Each peer gets the wall-clock training time of our default model on the
same fold (``--budget S`` gives a fixed one instead): ``wall_seconds`` of ``cgcnn train``'s
``metrics.json`` (the ensemble's wall time: its members train side by side on the two
cores).  ALIGNN and cgcnn2 time probe epochs first and set their epochs to fit (ALIGNN's
one-cycle schedule needs its length up front); matgl's trainers stop on the wall clock
(Lightning's ``max_time``).  Only what the budget forces (or what does not run here) is
changed from a peer's defaults, and every change is listed per fold (``changes``).

Tasks (units and labels as in ``bench_accuracy.py``): ``perov5`` (``heat_ref``, MAE
eV/cell), ``metal`` (``ind_gap > 0``, ROC-AUC), ``homework`` (total energy, the original
split, MAE eV/cell; the peers train on energy per atom and their predictions are multiplied
by the atom count, as the original CGCNN code does for an extensive target; ours uses
``--extensive``), ``carbon24`` (``energy_per_atom``, MAE eV/atom).  Where a peer cannot run
a task the table says why.

    python benchmarks/bench_peers.py perov5                    # 5 folds x 5 tools: hours
    python benchmarks/bench_peers.py perov5 --only 0 --tools alignn,ours
    python benchmarks/bench_peers.py metal --tools alignn,megnet,m3gnet --budget 300
    python benchmarks/bench_peers.py carbon24 --only 0 --budget 20 --limit 600   # smoke test
    python benchmarks/bench_peers.py homework --tools megnet,ours
    python benchmarks/bench_peers.py perov5 --report --ours bench-accuracy   # the table so far

Results stay in ``--out`` (default ``bench-peers/``): ``OUT/TASK/TOOL/foldK/result.json``
and ``test_predictions.csv`` per fold (a finished fold is reused when the budget is the
same, so a long run can be resumed), and ``OUT/TASK-peers.json``; one markdown table is
printed.  ``--limit N`` keeps only the first N crystals of the data file (each keeps its
role in the fold), for smoke tests.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_accuracy import (
    CARBON24,
    HOMEWORK,
    HOMEWORK_SPLIT,
    METAL_OPTIONS,
    PEROV5,
    SHARED,
    fold_splits,
    metal_csv,
    perov5_rows,
    train,
    wall_seconds,
)

RUNNERS = Path(__file__).resolve().parent / "peers"

#: torch first (the CPU build; a bare ``torch`` requirement would pull the CUDA one)
TORCH = "torch==2.13.0"

#: tool: (environment, pinned requirements, runner)
PEERS = {
    "alignn": ("alignn", ["alignn==2026.8.11"], "alignn_runner.py"),
    "megnet": ("matgl", ["matgl==4.1.2"], "matgl_runner.py"),
    "m3gnet": ("matgl", ["matgl==4.1.2"], "matgl_runner.py"),
    "cgcnn2": ("cgcnn2", ["cgcnn2==0.6.0"], "cgcnn2_runner.py"),
}
TOOLS = ["alignn", "megnet", "m3gnet", "cgcnn2", "ours"]

#: what a tool cannot do, per task
CANNOT = {
    ("cgcnn2", "metal"): "no working classification in cgcnn-tr: its loop fits the two "
    "log-probabilities with MSE against the 0/1 label and its test file flattens both "
    "columns into one, so there is no class probability to rank",
}

TASKS = {
    "perov5": {"kind": "regression", "metric": "test MAE", "unit": "eV/cell"},
    "metal": {"kind": "classification", "metric": "test ROC-AUC", "unit": ""},
    "homework": {"kind": "regression", "metric": "test MAE", "unit": "eV/cell"},
    "carbon24": {"kind": "regression", "metric": "test MAE", "unit": "eV/atom"},
}


# --------------------------------------------------------------------------------------
# Data: the rows, our training command, the folds


def task_data(task: str, out: Path) -> tuple[list[dict], Path, list[str]]:
    """(rows {id, cif, y}, the data ``cgcnn train`` reads, its options) of a task."""
    if task in ("perov5", "metal"):
        raw = perov5_rows()
        if task == "perov5":
            rows = [
                {"id": r["material_id"], "cif": r["cif"], "y": float(r["heat_ref"])} for r in raw
            ]
            return rows, PEROV5, ["--target", "heat_ref"]
        rows = [
            {"id": r["material_id"], "cif": r["cif"], "y": float(float(r["ind_gap"]) > 0)}
            for r in raw
        ]
        return rows, metal_csv(raw, out), list(METAL_OPTIONS)
    if task == "carbon24":
        with CARBON24.open(newline="") as handle:
            rows = [
                {"id": r["material_id"], "cif": r["cif"], "y": float(r["energy_per_atom"])}
                for r in csv.DictReader(handle)
            ]
        return rows, CARBON24, ["--target", "energy_per_atom"]
    with (HOMEWORK / "id_prop.csv").open(newline="") as handle:
        rows = [
            {"id": r[0], "cif": (HOMEWORK / f"{r[0]}.cif").read_text(), "y": float(r[1])}
            for r in csv.reader(handle)
            if r
        ]
    return rows, HOMEWORK, ["--extensive"]


def task_splits(task: str, ids: list[str], folds: int, out: Path) -> list[Path]:
    """The split files (``id,split``) of bench_accuracy.py: its K folds, or the homework's."""
    if task == "homework":
        return [HOMEWORK_SPLIT]
    folder = out / "splits"
    folder.mkdir(parents=True, exist_ok=True)
    return fold_splits(ids, folds, folder)


def limited(split: Path, keep: set[str], out: Path) -> Path:
    """A copy of ``split`` with only the ids in ``keep`` (cgcnn train leaves the rest out)."""
    with split.open(newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["id"] in keep]
    with out.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "split"])
        writer.writerows((r["id"], r["split"]) for r in rows)
    return out


class Structures:
    """pymatgen structures of the rows, parsed once when first needed."""

    def __init__(self, rows: list[dict]) -> None:
        self.rows = rows
        self.parsed: dict[int, object] = {}

    def __getitem__(self, index: int):
        if index not in self.parsed:
            from pymatgen.core import Structure

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.parsed[index] = Structure.from_str(self.rows[index]["cif"], fmt="cif")
        return self.parsed[index]


# --------------------------------------------------------------------------------------
# Environments and runs


def ensure_env(tool: str, envs: Path) -> Path:
    """The Python of the tool's own virtual environment, created and filled when needed."""
    name, pins, _runner = PEERS[tool]
    env = envs / name
    python = env / "bin" / "python"
    marker = env / ".bench-peers-requirements"
    wanted = "\n".join([TORCH, *pins]) + "\n"
    if python.is_file() and marker.is_file() and marker.read_text() == wanted:
        return python
    print(f"installing {' '.join(pins)} into {env} ...", flush=True)
    if not python.is_file():
        subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, TORCH], check=True)
    subprocess.run([*pip, *pins], check=True)
    marker.write_text(wanted)
    return python


def write_peer_data(
    tool: str,
    work: Path,
    parts: dict[str, list[int]],
    targets: np.ndarray,
    structures: Structures,
    rows: list[dict],
) -> dict:
    """Write a fold in the tool's format into ``work``; return the job's extra fields.
    Each crystal is named ``c<row number>`` (ids may hold any character)."""
    key = "c{}".format
    if tool == "alignn":
        data = work / "data"
        data.mkdir(parents=True)
        with (data / "id_prop.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            for part in ("train", "val", "test"):  # keep_data_order: this order is the split
                for i in parts[part]:
                    (data / f"{key(i)}.vasp").write_text(structures[i].to(fmt="poscar"))
                    writer.writerow([f"{key(i)}.vasp", repr(float(targets[i]))])
        return {f"n_{p}": len(parts[p]) for p in ("train", "val", "test")}
    if tool == "cgcnn2":
        for part, folder in (("train", "train"), ("val", "valid"), ("test", "test")):
            (work / folder).mkdir(parents=True)
            with (work / folder / "id_prop.csv").open("w", newline="") as handle:
                writer = csv.writer(handle)
                for i in parts[part]:
                    (work / folder / f"{key(i)}.cif").write_text(rows[i]["cif"])
                    writer.writerow([key(i), repr(float(targets[i]))])
        return {}
    work.mkdir(parents=True)
    payload = {
        part: [
            {"id": key(i), "structure": structures[i].as_dict(), "y": float(targets[i])}
            for i in parts[part]
        ]
        for part in ("train", "val", "test")
    }
    (work / "structures.json").write_text(json.dumps(payload))
    return {}


def run_peer(
    tool: str,
    task: str,
    python: Path,
    fold_dir: Path,
    parts: dict[str, list[int]],
    targets: np.ndarray,
    structures: Structures,
    rows: list[dict],
    budget: float,
) -> dict:
    """Train the tool on one fold in its own environment; its result JSON (keys ``c<row>``)."""
    work = fold_dir / "work"
    shutil.rmtree(work, ignore_errors=True)
    extra = write_peer_data(tool, work, parts, targets, structures, rows)
    runner = work / PEERS[tool][2]
    shutil.copy(RUNNERS / PEERS[tool][2], runner)
    job = {
        "tool": tool,
        "task": TASKS[task]["kind"],
        "budget": budget,
        "work": str(work.resolve()),
        "result": str((work / "result.json").resolve()),
        **extra,
    }
    (work / "job.json").write_text(json.dumps(job, indent=1))
    log = work / "log.txt"
    started = time.perf_counter()
    with log.open("w") as handle:
        code = subprocess.run(
            [str(python), str(runner), str(work / "job.json")],
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=work,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "MPLBACKEND": "Agg"},
            timeout=max(3600.0, 8 * budget + 1800),
            check=False,
        ).returncode
    if code != 0:
        tail = log.read_text().strip().splitlines()[-12:]
        raise RuntimeError(f"{tool} failed (exit {code}); the end of {log}:\n" + "\n".join(tail))
    result = json.loads((work / "result.json").read_text())
    result["run_seconds"] = round(time.perf_counter() - started, 1)
    return result


# --------------------------------------------------------------------------------------
# Metrics


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties counted half)."""
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    start = 0
    for end in range(1, len(scores) + 1):
        if end == len(scores) or sorted_scores[end] != sorted_scores[start]:
            ranks[order[start:end]] = (start + end + 1) / 2  # average rank, 1-based
            start = end
    positive = labels > 0.5
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan  # one class only: undefined
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def score(task: str, truth: np.ndarray, predicted: np.ndarray) -> float:
    if TASKS[task]["kind"] == "classification":
        return roc_auc(truth, predicted)
    return float(np.abs(truth - predicted).mean())


def our_parameters(out: Path) -> str | None:
    """Trainable parameters of our trained model(s): ``K x N`` for an ensemble of K."""
    try:
        from cgcnn.prediction import load
    except ImportError:
        return None
    counts = []
    for checkpoint in sorted(out.rglob("best.ckpt")):
        model, _ = load(checkpoint)
        counts.append(sum(p.numel() for p in model.parameters()))
    if not counts:
        return None
    return f"{len(counts)} x {counts[0]}" if len(counts) > 1 else str(counts[0])


def our_epochs(out: Path) -> list[int]:
    epochs = []
    for path in sorted(out.rglob("metrics.json")):
        metrics = json.loads(path.read_text())
        if "epochs_run" in metrics and "ensemble_seconds" not in metrics:
            epochs.append(int(metrics["epochs_run"]))
    return epochs


# --------------------------------------------------------------------------------------
# The benchmark


def our_result(task: str, ours_dir: Path) -> dict | None:
    """Our finished fold in ``ours_dir`` as a result row, or None if it has not run."""
    path = ours_dir / "metrics.json"
    if not path.is_file():
        return None
    ours = json.loads(path.read_text())
    key = "test_roc_auc" if TASKS[task]["kind"] == "classification" else "test_mae"
    seconds = wall_seconds(ours)
    return {
        "metric": float(ours[key]),
        "train_seconds": seconds,
        "budget": seconds,
        "parameters": our_parameters(ours_dir),
        "epochs": our_epochs(ours_dir) or ours.get("epochs_run"),
        "changes": [],
    }


def report_fold(
    task: str, tools: list[str], k: int, ours_dir: Path, out: Path, fold: str, results: dict
) -> None:
    """Collect fold k's finished results (``--report``): nothing is trained."""
    for tool in tools:
        if tool == "ours":
            row = our_result(task, ours_dir)
        elif (tool, task) in CANNOT:
            continue
        else:
            saved = out / tool / fold / "result.json"
            row = json.loads(saved.read_text()) if saved.is_file() else None
        if row is not None:
            results[tool][k] = row


def fmt(value: float, task: str) -> str:
    if math.isnan(value):
        return "n/a"
    if TASKS[task]["kind"] == "classification":
        return f"{value:.3f}"
    return f"{value:.4f}" if abs(value) < 1 else f"{value:.3f}"


def summarise(task: str, tools: list[str], results: dict, out_root: Path) -> dict:
    """Print the markdown table and write OUT/TASK-peers.json."""
    spec = TASKS[task]
    metric = spec["metric"] + (f" ({spec['unit']})" if spec["unit"] else "")
    lines = [
        f"| task | tool | {metric}, mean ± std | per fold | training s (median) | budget s | "
        "s / epoch | parameters | epochs | changes |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    notes = []
    summary = {"task": task, "metric": metric, "tools": {}}
    for tool in tools:
        folds = results.get(tool, {})
        if (tool, task) in CANNOT:
            lines.append(f"| {task} | {tool} | cannot: {CANNOT[(tool, task)]} |||||||||")
            summary["tools"][tool] = {"cannot": CANNOT[(tool, task)]}
            continue
        done = {k: r for k, r in folds.items() if "metric" in r}
        failed = {k: r["error"] for k, r in folds.items() if "error" in r}
        entry: dict = {"folds": folds}
        if not done:
            reason = "; ".join(f"fold {k}: {e.splitlines()[0]}" for k, e in failed.items())
            lines.append(f"| {task} | {tool} | failed: {reason or 'not run'} |||||||||")
            summary["tools"][tool] = entry
            continue
        values = [r["metric"] for r in done.values()]
        mean = statistics.fmean(values)
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        entry.update(mean=mean, std=std)
        summary["tools"][tool] = entry
        per_fold = ", ".join(f"{k}: {fmt(r['metric'], task)}" for k, r in done.items())
        if failed:
            per_fold += "; failed: " + ", ".join(str(k) for k in failed)
        seconds = statistics.median(r["train_seconds"] for r in done.values())
        budgets = [r.get("budget") for r in done.values() if r.get("budget")]
        budget = f"{statistics.median(budgets):.0f}" if budgets else "-"
        per_epoch = [r["epoch_seconds"] for r in done.values() if r.get("epoch_seconds")]
        epoch_s = f"{statistics.median(per_epoch):.1f}" if per_epoch else "-"
        params = next((r["parameters"] for r in done.values() if r.get("parameters")), None)
        epochs = ", ".join(
            "/".join(map(str, r["epochs"]))
            if isinstance(r.get("epochs"), list)
            else str(r.get("epochs", "-"))
            for r in done.values()
        )
        changes = sorted({c for r in done.values() for c in r.get("changes", [])})
        mark = f"[{len(notes) + 1}]" if changes else "none"
        if changes:
            notes.append((tool, changes))
        spread = f" ± {fmt(std, task)}" if len(values) > 1 else ""
        lines.append(
            f"| {task} | {tool} | {fmt(mean, task)}{spread} | {per_fold} | {seconds:.0f} | "
            f"{budget} | {epoch_s} | {params if params else '-'} | {epochs} | {mark} |"
        )
    print("\n".join(lines))
    for n, (tool, changes) in enumerate(notes, start=1):
        print(f"\n[{n}] {tool}, changed from its defaults:")
        for change in changes:
            print(f"  - {change}")
    path = out_root / f"{task}-peers.json"
    path.write_text(json.dumps(summary, indent=1) + "\n")
    print(f"\nwritten: {path}")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("task", choices=list(TASKS))
    parser.add_argument(
        "--tools", default=",".join(TOOLS), help=f"comma-separated, of {','.join(TOOLS)}"
    )
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds (5)")
    parser.add_argument("--only", type=int, nargs="+", metavar="FOLD", help="only these folds")
    parser.add_argument(
        "--budget",
        type=float,
        help="training seconds per fold for every peer (default: our default model's "
        "training wall time on that fold, measured in this run)",
    )
    parser.add_argument("--out", default="bench-peers", help="run folder (bench-peers)")
    parser.add_argument(
        "--envs",
        default=str(Path.home() / ".cache" / "cgcnn-peers"),
        help="where the peers' virtual environments live (~/.cache/cgcnn-peers)",
    )
    parser.add_argument(
        "--limit", type=int, help="only the first N crystals of the data (smoke tests)"
    )
    parser.add_argument(
        "--report",
        action="store_true",
        help="train nothing: print the table of the folds finished so far (each at the budget "
        "it ran with), so runs made with different --only or --tools are reported together",
    )
    parser.add_argument(
        "--ours",
        metavar="DIR",
        help="our results from a bench_accuracy.py run instead of training ours here: its "
        "--out folder (DIR/TASK/foldK/metrics.json; homework: DIR/homework/run)",
    )
    args = parser.parse_args(argv)
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = set(tools) - set(TOOLS)
    if unknown:
        parser.error(f"unknown tool(s) {', '.join(sorted(unknown))}; choose from {TOOLS}")
    if not SHARED.is_dir():
        print(f"skipped: {SHARED} is absent (the shared data sets are not beside the repo)")
        return 0

    task = args.task
    out_root = Path(args.out)
    out = out_root / task
    out.mkdir(parents=True, exist_ok=True)
    rows, data, options = task_data(task, out)
    ids = [r["id"] for r in rows]
    index = {rid: i for i, rid in enumerate(ids)}
    values = np.array([r["y"] for r in rows], dtype=float)
    structures = Structures(rows)
    per_atom = task == "homework"  # the peers train on energy per atom, then scale back
    suffix = f"-limit{args.limit}" if args.limit else ""
    keep = set(ids[: args.limit]) if args.limit else None
    envs = Path(args.envs).expanduser()
    pythons = {}
    for tool in tools:
        if tool != "ours" and (tool, task) not in CANNOT and not args.report:
            pythons[tool] = ensure_env(tool, envs)

    results: dict[str, dict] = {tool: {} for tool in tools}
    for k, split in enumerate(task_splits(task, ids, args.folds, out)):
        if args.only is not None and k not in args.only:
            continue
        if keep is not None:
            split = limited(split, keep, out / "splits" / f"fold{k}{suffix}-split.csv")
        fold = f"fold{k}{suffix}"
        with split.open(newline="") as handle:
            roles = {r["id"]: r["split"] for r in csv.DictReader(handle)}
        parts = {p: [index[i] for i in ids if roles.get(i) == p] for p in ("train", "val", "test")}
        test = parts["test"]
        budget = args.budget
        ours_dir = out / "ours" / fold
        if args.ours:
            ours_dir = Path(args.ours) / task / ("run" if task == "homework" else fold)
        if args.report:
            report_fold(task, tools, k, ours_dir, out, fold, results)
            continue
        if budget is None or "ours" in tools:
            ours = train(data, ours_dir, ["--split", str(split), *options])
            if budget is None:
                budget = wall_seconds(ours)
            if "ours" in tools:
                results["ours"][k] = row = our_result(task, ours_dir)
                print(f"fold {k}: ours {fmt(row['metric'], task)}, {budget:.0f} s", flush=True)
        for tool in tools:
            if tool == "ours" or (tool, task) in CANNOT:
                continue
            fold_dir = out / tool / fold
            saved = fold_dir / "result.json"
            if saved.is_file():
                previous = json.loads(saved.read_text())
                if abs(previous["budget"] - budget) <= 0.05 * budget:
                    results[tool][k] = previous
                    print(f"fold {k}: {tool} {fmt(previous['metric'], task)} (reused)")
                    continue
            targets = values.copy()
            if per_atom:
                atoms = {i: len(structures[i]) for part in parts.values() for i in part}
                for i, n in atoms.items():
                    targets[i] = values[i] / n
            try:
                result = run_peer(
                    tool, task, pythons[tool], fold_dir, parts, targets, structures, rows, budget
                )
            except (RuntimeError, subprocess.TimeoutExpired) as error:
                print(f"fold {k}: {tool} {error}", flush=True)
                results[tool][k] = {"error": str(error)}
                continue
            predicted = np.array([result["predictions"][f"c{i}"] for i in test])
            if per_atom:
                predicted = predicted * np.array([len(structures[i]) for i in test])
                result["changes"].append(
                    "extensive target: trained on total energy / atoms, test predictions "
                    "multiplied by the atom count"
                )
            result["metric"] = score(task, values[test], predicted)
            result["budget"] = budget
            result["n_train"], result["n_val"], result["n_test"] = map(len, parts.values())
            with (fold_dir / "test_predictions.csv").open("w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(["id", "target", "prediction"])
                writer.writerows(zip([ids[i] for i in test], values[test], predicted, strict=True))
            del result["predictions"]
            saved.write_text(json.dumps(result, indent=1) + "\n")
            results[tool][k] = result
            print(
                f"fold {k}: {tool} {fmt(result['metric'], task)}, {result['train_seconds']:.0f} s "
                f"training ({result['epochs']} epochs, budget {budget:.0f} s)",
                flush=True,
            )
    summarise(task, tools, results, out_root)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
