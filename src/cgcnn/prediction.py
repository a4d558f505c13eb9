"""Load checkpoints (ours and the original CGCNN's) and predict.

A checkpoint of ours holds the model's config, its weights, the atom feature table, the
target transforms and the graph settings, so :func:`predict` needs nothing but the
checkpoint and the structures.
"""

from __future__ import annotations

import csv
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch_geometric.loader import DataLoader

from cgcnn.batching import GraphBatcher, GraphSubset
from cgcnn.errors import InputError, first_line
from cgcnn.nn.model import CGCNN, CGCNNConfig


def load(
    checkpoint: str | os.PathLike, atom_init: str | os.PathLike | None = None
) -> tuple[CGCNN, dict[str, Any]]:
    """The model of a checkpoint, in eval mode, and its metadata.

    Args:
        checkpoint: ``best.ckpt`` / ``last.ckpt`` of ``cgcnn train``, or an original CGCNN
            ``.pth.tar`` (then ``atom_init``, the ``atom_init.json`` it was trained with, is
            required, and the model must be fed :func:`cgcnn.compat.featurize_original` graphs
            to reproduce the original's predictions).

    Returns:
        (model, info) where ``info`` has ``graph_settings`` (radius, max_neighbors, ...),
        ``train_config`` and ``meta``.

    Raises:
        InputError: a missing file or a file that is not a checkpoint.
    """
    from cgcnn.trained import open_checkpoint

    opened = open_checkpoint(checkpoint)
    if opened.kind == "ensemble":
        raise InputError(str(checkpoint), "is an ensemble: load one of its members")
    return opened.model(atom_init), opened.info()


#: crystals packed at a time when predicting (a multiple of the batch sizes used): memory
#: holds one chunk's graphs, whatever the size of the data set (100,000 perovskites packed
#: at once took ~0.5 GB; see docs/benchmarks.md, "Screening")
PREDICT_CHUNK = 8192


def iter_batches(
    dataset: Any,
    batch_size: int = 256,
    progress: bool = False,
    on_chunk: Callable[[GraphBatcher], None] | None = None,
    bond_vectors: bool = False,
) -> Iterator[Any]:
    """Batches of ``dataset`` in order, ``batch_size`` crystals each.

    ``dataset`` is a :class:`~cgcnn.dataset.CrystalGraphDataset`, a ``Subset`` of one, or
    any sequence of PyG ``Data`` items.  The first two are packed and batched by
    :class:`~cgcnn.batching.GraphBatcher`, as in training, :data:`PREDICT_CHUNK` crystals at
    a time: no ``Data`` object per crystal, and identical periodic-image edges merged (3,787
    perovskites: 0.34 s instead of 1.0 s with PyG's ``DataLoader``, one thread).  Anything
    else goes through the ``DataLoader``.  ``progress`` shows a bar (on a terminal);
    ``on_chunk`` is called with each chunk's batcher before its first batch (to check the
    chunk's elements, say, without reading its graphs a second time).  ``bond_vectors``:
    batches carry them, and no edges are merged (for a model that sees bond angles).
    """
    from cgcnn.progress import progress_bar

    base = getattr(dataset, "dataset", dataset)
    bar = progress_bar(len(dataset), "predict", "crystal", enabled=progress)
    try:
        if not hasattr(base, "graph"):
            for batch in DataLoader(dataset, batch_size=batch_size):
                bar.update(int(batch.num_graphs))
                yield batch
            return
        indices = getattr(dataset, "indices", None)
        order = np.arange(len(base)) if indices is None else np.asarray(indices, np.int64)
        for first in range(0, len(order), PREDICT_CHUNK):
            chunk = GraphSubset(base, order[first : first + PREDICT_CHUNK])
            batcher = GraphBatcher(chunk, bond_vectors=bond_vectors)
            if on_chunk is not None:
                on_chunk(batcher)
            n = len(batcher.dataset)
            for start in range(0, n, batch_size):
                stop = min(start + batch_size, n)
                yield batcher(np.arange(start, stop))
                bar.update(stop - start)
    finally:
        bar.close()


@dataclass
class PredictionPass:
    """What one pass of :func:`predict_pass` over a data set gives, in its order.

    Attributes:
        members: each model's (n, T) physical predictions, or (n, C) class probabilities.
        n_atoms: (n,) atoms per crystal.
    """

    members: list[np.ndarray]
    n_atoms: np.ndarray


@torch.no_grad()
def predict_pass(
    models: list[CGCNN],
    dataset: Any,
    batch_size: int = 256,
    progress: bool = False,
    on_chunk: Callable[[GraphBatcher], None] | None = None,
) -> PredictionPass:
    """Every model's predictions of ``dataset`` from one pass over it (:func:`iter_batches`),
    holding one chunk of graphs at a time."""
    for model in models:
        model.eval()
    device = next(models[0].parameters()).device  # where the models are, the batches go
    n, width = len(dataset), models[0].config.n_outputs
    # Filled in place.  Keeping one small tensor per batch instead (and concatenating them at
    # the end) leaves a live block above each batch's freed work space, so glibc's heap
    # cannot reuse or return it: measured on 100,000 perovskites, the resident memory then
    # grew by ~3.7 kB per crystal (+370 MiB); filled in place it stays flat.
    members: list[np.ndarray] = []
    n_atoms = np.zeros(n, dtype=np.int64)
    done = 0
    angles = any(model.needs_bond_vectors for model in models)
    for batch in iter_batches(dataset, batch_size, progress, on_chunk, angles):
        batch = batch.to(device)
        size = int(batch.num_graphs)
        for k, model in enumerate(models):
            values = model.predict(batch).cpu().numpy()
            if k == len(members):
                members.append(np.zeros((n, width), dtype=values.dtype))
            members[k][done : done + size] = values
        n_atoms[done : done + size] = np.diff(batch.ptr.cpu().numpy())
        done += size
    if not members:
        members = [np.zeros((n, width), dtype=np.float32) for _ in models]
    return PredictionPass(members, n_atoms)


def predict_members(
    models: list[CGCNN], dataset: Any, batch_size: int = 256, progress: bool = False
) -> list[np.ndarray]:
    """Each model's (n, T) physical predictions, or (n, C) class probabilities, in dataset
    order, from one pass over the data (:func:`predict_pass`)."""
    return predict_pass(models, dataset, batch_size, progress).members


def predict_dataset(model: CGCNN, dataset: Any, batch_size: int = 256) -> np.ndarray:
    """(n, T) physical predictions, or (n, C) class probabilities, in dataset order (see
    :func:`iter_batches`)."""
    return predict_members([model], dataset, batch_size)[0]


def ensemble_mean(
    member_predictions: list[np.ndarray],
    classification: bool,
    scale: list[float] | None = None,
):
    """Mean of an ensemble's predictions and their spread.

    Args:
        member_predictions: K arrays (n, T) of physical predictions or (n, C) probabilities.
        scale: regression only: one factor per target multiplying the spread (see
            :func:`cgcnn.training.uncertainty_scale`).

    Returns:
        (mean (n, T|C), spread): regression: (n, T) standard deviations over the members;
        classification: (n,) standard deviation of the probability of the predicted class.
        With one member the spread is ``None``.
    """
    stacked = np.stack(member_predictions)  # (K, n, T|C)
    mean = stacked.mean(axis=0)
    if len(member_predictions) < 2:
        return mean, None
    spread = stacked.std(axis=0, ddof=1)
    if classification:
        spread = np.take_along_axis(spread, mean.argmax(axis=1)[:, None], axis=1)[:, 0]
    elif scale is not None:
        spread = spread * np.asarray(scale)
    return mean, spread


def evaluate(
    model: CGCNN | list[CGCNN],
    dataset: Any,
    results_csv: str | os.PathLike,
    plots_dir: str | os.PathLike | None = None,
    uncertainty_scale: list[float] | None = None,
    progress: bool = False,
    on_chunk: Callable[[GraphBatcher], None] | None = None,
    check_per_atom: bool = False,
) -> dict[str, float]:
    """Predict ``dataset``, write ``results_csv`` and return metrics (when targets exist).

    ``model`` may be a list of models (an ensemble): the prediction is their mean, and an
    ``uncertainty`` column holds their spread (see :func:`ensemble_mean`), times
    ``uncertainty_scale`` (one factor per target, see
    :func:`cgcnn.training.uncertainty_scale`) when given.  ``on_chunk`` goes to
    :func:`iter_batches`.  ``check_per_atom`` prints one warning line when the targets and
    the predictions look one per atom and the other per cell
    (:func:`cgcnn.metrics.per_atom_mismatch`; one regression target only).
    """
    models = model if isinstance(model, list) else [model]
    config = models[0].config
    done = predict_pass(models, dataset, progress=progress, on_chunk=on_chunk)
    predictions, spread = ensemble_mean(
        done.members, config.task == "classification", uncertainty_scale
    )
    ids = [str(rid) for rid in _column_of(dataset, "ids")]
    targets = _column_of(dataset, "targets")
    write_results(results_csv, config, ids, predictions, targets, spread)
    if targets is None:
        return {}
    if check_per_atom and config.task == "regression" and targets.shape[1] == 1:
        from cgcnn.metrics import per_atom_mismatch

        said = per_atom_mismatch(targets[:, 0], predictions[:, 0], done.n_atoms)
        if said:
            print(f"cgcnn: warning: {said}", file=sys.stderr, flush=True)
    return _metrics(config, predictions, targets, plots_dir)


def _metrics(config, predictions, targets, plots_dir) -> dict[str, float]:
    from cgcnn.plots import classification_metrics, regression_metrics

    if config.task == "classification":
        labels = targets[:, 0].astype(int)
        metrics = classification_metrics(labels, predictions)
        if plots_dir is not None:
            _classification_plots(Path(plots_dir), labels, predictions, config)
        return {k: float(v) for k, v in metrics.items()}
    metrics: dict[str, float] = {}
    names = config.target_names or [f"target{k}" for k in range(config.n_targets)]
    for k, name in enumerate(names):
        values = regression_metrics(targets[:, k], predictions[:, k])
        suffix = "" if len(names) == 1 else f"_{name}"
        metrics.update({f"{m}{suffix}": float(v) for m, v in values.items()})
        if plots_dir is not None:
            from cgcnn.plots import parity_plot

            png = "parity.png" if len(names) == 1 else f"parity_{name}.png"
            units = list(config.target_units)
            unit = units[k] if k < len(units) else ""
            parity_plot(
                targets[:, k], predictions[:, k], Path(plots_dir) / png, label=name, unit=unit
            )
    return metrics


def write_results(
    path: str | os.PathLike,
    config: CGCNNConfig,
    ids: list[str],
    predictions: np.ndarray,
    targets: np.ndarray | None,
    uncertainty: np.ndarray | None = None,
) -> None:
    """Write ``id,target,prediction`` (per target with suffixes; classes with probabilities).

    ``uncertainty`` (an ensemble's spread: (n, T) standard deviations of the members'
    predictions, or (n,) for classification, the standard deviation of the predicted class's
    probability) adds an ``uncertainty`` column after each prediction.
    """
    header = ["id"]
    classification = config.task == "classification"
    names = config.target_names or ["target"]
    if classification:
        classes = config.class_names or [str(k) for k in range(config.n_classes)]
        header += (["target"] if targets is not None else []) + ["prediction"]
        header += ["uncertainty"] if uncertainty is not None else []
        header += [f"prob_{c}" for c in classes]
    elif len(names) == 1:
        header += (["target"] if targets is not None else []) + ["prediction"]
        header += ["uncertainty"] if uncertainty is not None else []
    else:
        for name in names:
            header += ([f"target_{name}"] if targets is not None else []) + [f"prediction_{name}"]
            header += [f"uncertainty_{name}"] if uncertainty is not None else []
    from cgcnn.files import atomic_write

    with atomic_write(path, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for row, rid in enumerate(ids):
            cells: list[Any] = [rid]
            if classification:
                if targets is not None:
                    cells.append(int(targets[row, 0]))
                cells.append(int(np.argmax(predictions[row])))
                if uncertainty is not None:
                    cells.append(_num(uncertainty[row]))
                cells += [_num(p) for p in predictions[row]]
            else:
                for k in range(len(names)):
                    if targets is not None:
                        cells.append(_num(targets[row, k]))
                    cells.append(_num(predictions[row, k]))
                    if uncertainty is not None:
                        cells.append(_num(uncertainty[row, k]))
            writer.writerow(cells)


def _num(value: float) -> str:
    return repr(float(value))


def _column_of(dataset: Any, name: str) -> np.ndarray | None:
    """``ids`` or ``targets`` of a CrystalGraphDataset or of a Subset of one, in order."""
    base = getattr(dataset, "dataset", dataset)
    values = getattr(base, name, None)
    if values is None:
        return None
    indices = getattr(dataset, "indices", None)
    return values[np.asarray(indices, dtype=np.int64)] if indices is not None else values


def _classification_plots(out: Path, labels: np.ndarray, probs: np.ndarray, config) -> None:
    from cgcnn.plots import confusion_matrix_plot, roc_plot

    classes = config.class_names or [str(k) for k in range(config.n_classes)]
    if probs.shape[1] == 2:
        roc_plot(labels, probs[:, 1], out / "roc.png", positive_label=classes[1])
    confusion_matrix_plot(labels, probs.argmax(axis=1), out / "confusion.png", class_names=classes)


def predict(
    checkpoint: str | os.PathLike,
    data: Any,
    out: str | os.PathLike = "predictions.csv",
    *,
    atom_init: str | os.PathLike | None = None,
    target: str | None = None,
    id_column: str | None = None,
    structure_column: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    workers: int | None = None,
    skip_invalid: bool = False,
    skipped: str | os.PathLike | None = None,
    progress: bool = True,
    device: str | None = None,
) -> dict[str, float]:
    """Predict ``data`` with ``checkpoint`` and write ``out`` (CSV, ``test_results.csv``'s columns).

    Works with checkpoints of ``cgcnn train`` and with the original CGCNN's ``.pth.tar``
    files (then ``atom_init`` defaults to ``DATA/atom_init.json``).  Returns the metrics
    when ``data`` has targets, else ``{}``.  With ``skip_invalid``, bad structures are left
    out, listed with their reasons in ``skipped`` (default: ``out``'s name with
    ``.skipped.csv``, beside it) and counted in a line on stderr.  ``device`` (``cuda``,
    ``cuda:1``, ...; default the CPU) is where the models run.
    """
    out = Path(out)
    if out.is_dir():
        raise InputError(str(out), "is a folder; --out names the predictions' CSV file")
    from cgcnn.trained import open_checkpoint

    opened = open_checkpoint(checkpoint)  # read once, whatever its kind
    if opened.kind == "original":
        return _predict_original(opened.state, data, out, atom_init)
    from cgcnn.dataset import CrystalGraphDataset

    started = time.perf_counter()
    models, scale = opened.models(), opened.uncertainty_scale
    if device is not None:
        models = [m.to(torch_device(device)) for m in models]
    model = models[0]
    expected = 1 if model.config.task == "classification" else model.config.n_targets
    if scale is not None and (model.config.task != "regression" or len(scale) != expected):
        raise InputError(
            str(checkpoint),
            f"has {len(scale)} uncertainty scale(s), but its members predict {expected} "
            f"{model.config.task} target(s)",
        )
    dataset = CrystalGraphDataset(
        data,
        target=target,
        settings=opened.graph_settings(),
        cache_dir=cache_dir,
        workers=workers,
        skip_invalid=skip_invalid,
        id_column=id_column,
        structure_column=structure_column,
        progress=progress,
    )
    said = dataset.report.list_skipped(skipped_list(out, skipped))
    if said:
        print(said, file=sys.stderr, flush=True)
    if dataset.targets is not None and dataset.targets.shape[1] != expected:
        raise InputError(
            str(data),
            f"has {dataset.targets.shape[1]} target column(s) but the model predicts {expected}; "
            "choose them with --target",
        )
    from cgcnn.elements import require_elements

    known, table = model.atom_known.numpy(), f"{checkpoint} (its atom feature table)"
    metrics = evaluate(
        models,
        dataset,
        out,
        uncertainty_scale=scale,
        progress=progress,
        # chunk by chunk, from the packed arrays: no separate pass over every graph
        on_chunk=lambda batcher: require_elements(batcher.elements(), known, table),
        check_per_atom=True,
    )
    if progress:
        seconds = time.perf_counter() - started
        print(
            f"{len(dataset)} structures predicted in {seconds:.1f} s "
            f"({len(dataset) / max(seconds, 1e-9):.0f} per second, graphs included)",
            file=sys.stderr,
            flush=True,
        )
    return metrics


def torch_device(name: str) -> torch.device:
    """A torch device by name; an unknown or absent one is one line."""
    try:
        device = torch.device(name)
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError) as exc:
        raise InputError("--device", f"cannot use {name!r} ({first_line(exc, None)})") from None
    return device


def skipped_list(out: Path, skipped: str | os.PathLike | None) -> Path:
    """Where ``predict`` lists skipped structures: ``skipped``, else beside ``out``."""
    if skipped is not None:
        return Path(skipped)
    return out.with_name(f"{out.stem}.skipped.csv")


def _predict_original(
    checkpoint: dict[str, Any], data: Any, out: str | os.PathLike, atom_init: Any
) -> dict[str, float]:
    """An original CGCNN checkpoint: the original's graphs and model (:mod:`cgcnn.compat`)."""
    from cgcnn.compat import predict_original
    from cgcnn.plots import classification_metrics, regression_metrics

    results = predict_original(checkpoint, data, atom_init)
    classification = bool(results) and results[0].probabilities is not None
    config = CGCNNConfig(
        task="classification" if classification else "regression",
        n_classes=len(results[0].probabilities) if classification else 2,
    )
    ids = [r.id for r in results]
    if classification:
        predictions = np.array([r.probabilities for r in results], dtype=np.float64)
    else:
        predictions = np.array([[r.prediction] for r in results], dtype=np.float64)
    known = [r.target for r in results]
    targets = None
    if known and all(t is not None for t in known):
        targets = np.array([t[:1] for t in known], dtype=np.float64)
    write_results(out, config, ids, predictions, targets)
    if targets is None:
        return {}
    if classification:
        metrics = classification_metrics(targets[:, 0].astype(int), predictions)
    else:
        metrics = regression_metrics(targets[:, 0], predictions[:, 0])
    return {k: float(v) for k, v in metrics.items()}
