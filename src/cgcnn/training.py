"""Training with PyTorch Lightning: the LightningModule, data loaders and :func:`train`.

:func:`train` is what ``cgcnn train`` and the notebooks call.  It featurizes (through the
cache), splits, fits the target transforms on the training split, trains with early
stopping and checkpoints, evaluates the best checkpoint on the test split and writes
``metrics.json``, ``test_results.csv``, ``metrics.csv`` (per epoch) and the plots to ``out``.
Multi-GPU and multi-node runs go through Lightning's own strategies (``accelerator``,
``devices``, ``strategy``, ``num_nodes``), unchanged.
"""

from __future__ import annotations

import contextlib
import csv
import inspect
import math
import os
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Sampler, Subset

from cgcnn.batching import GraphBatcher, IndexDataset
from cgcnn.checkpoint import SafeCheckpointIO, read_checkpoint
from cgcnn.config import (
    COMPUTED,
    DEFAULT_ANGLE_RADIUS,
    RunSettings,
    TrainConfig,
    train_signature,
)
from cgcnn.dataset import CrystalGraphDataset
from cgcnn.elements import require_elements, resolve_atom_features
from cgcnn.errors import InputError, first_line
from cgcnn.files import atomic_write, make_folder, write_json
from cgcnn.logs import EpochLog
from cgcnn.nn.convs import CONVOLUTION_LAYERS
from cgcnn.nn.model import CGCNN, CGCNNConfig
from cgcnn.resume import (
    ResumePlan,
    fingerprint,
    plan_resume,
    refuse_finished_out,
    resumed_settings,
    same_value,
)
from cgcnn.splits import Split, random_split, split_from_file
from cgcnn.targets import fit_references, standardization


class EpochSeededSampler(Sampler[int]):
    """A shuffling sampler whose order depends only on (seed, epoch).

    Lightning calls :meth:`set_epoch` before each epoch, so a run resumed from a
    checkpoint sees exactly the batches an uninterrupted run would.
    """

    def __init__(self, n: int, seed: int) -> None:
        self.n = n
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=generator).tolist())

    def __len__(self) -> int:
        return self.n


class CGCNNModule(L.LightningModule):
    """The LightningModule: loss in standardised units, metrics in physical units."""

    def __init__(self, model_config: dict, train_config: dict, graph_settings: dict, meta: dict):
        super().__init__()
        self.save_hyperparameters()
        self.model = CGCNN(CGCNNConfig.from_dict(model_config))
        self.train_config = TrainConfig(**train_config)
        self._val_outputs: list[tuple[torch.Tensor, torch.Tensor]] = []

    @property
    def classification(self) -> bool:
        return self.model.config.task == "classification"

    def forward(self, batch: Any) -> torch.Tensor:
        return self.model(batch)

    def _loss(self, out: torch.Tensor, batch: Any) -> torch.Tensor:
        if self.classification:
            weights = self.train_config.class_weights
            return nn.functional.cross_entropy(
                out,
                batch.y[:, 0].long(),
                weight=None if weights is None else out.new_tensor(weights),
            )
        target = self.model.to_standard(batch.y, batch)
        mask = torch.isfinite(target)
        out, target = out[mask], target[mask]
        if self.train_config.loss == "mse":
            return nn.functional.mse_loss(out, target)
        if self.train_config.loss == "l1":
            return nn.functional.l1_loss(out, target)
        return nn.functional.huber_loss(out, target, delta=1.0)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss = self._loss(self(batch), batch)
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=batch.num_graphs)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        out = self(batch)
        loss = self._loss(out, batch)
        self.log(
            "val_loss",
            loss,
            on_epoch=True,
            prog_bar=True,
            batch_size=batch.num_graphs,
            sync_dist=True,
        )
        pred = self.model.to_physical(out, batch)
        if not self.classification:
            mae = torch.nanmean(torch.abs(pred - batch.y))
            self.log(
                "val_mae",
                mae,
                on_epoch=True,
                prog_bar=True,
                batch_size=batch.num_graphs,
                sync_dist=True,
            )
        else:
            self._val_outputs.append((batch.y[:, 0].detach().cpu(), pred.detach().cpu()))

    def on_validation_epoch_end(self) -> None:
        if not self.classification or not self._val_outputs:
            return
        from cgcnn.plots import classification_metrics

        labels = torch.cat([y for y, _ in self._val_outputs]).numpy()
        probs = torch.cat([p for _, p in self._val_outputs]).numpy()
        self._val_outputs.clear()
        metrics = classification_metrics(labels.astype(int), probs)
        self.log("val_accuracy", float(metrics["accuracy"]), prog_bar=True)
        auc = metrics["roc_auc"]
        if math.isfinite(auc):
            self.log("val_roc_auc", float(auc))

    def configure_optimizers(self):
        c = self.train_config
        if c.optim == "sgd":
            optimizer = torch.optim.SGD(
                self.parameters(), lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay
            )
        elif c.optim == "adam":
            optimizer = torch.optim.Adam(self.parameters(), lr=c.lr, weight_decay=c.weight_decay)
        else:
            optimizer = torch.optim.AdamW(self.parameters(), lr=c.lr, weight_decay=c.weight_decay)
        if c.scheduler == "none":
            return optimizer
        if c.scheduler == "multistep":
            scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, c.lr_milestones, gamma=0.1)
        else:
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
                optimizer, T_max=c.epochs, eta_min=c.lr * 1e-2
            )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"},
        }


# --------------------------------------------------------------------------- train()


#: the options of :func:`train` that decide how the data set is read and featurized
_DATASET_OPTIONS = (
    "target",
    "radius",
    "max_neighbors",
    "grow_radius",
    "min_distance",
    "angle_radius",
    "cache_dir",
    "workers",
    "skip_invalid",
    "id_column",
    "structure_column",
)


def _read_dataset(data: Any, options: dict[str, Any]) -> CrystalGraphDataset:
    """The data set as :func:`train`'s options say to read and featurize it."""
    return CrystalGraphDataset(
        data,
        **{name: options[name] for name in _DATASET_OPTIONS},
        progress=options["progress"],
    )


@dataclass
class TrainResult:
    """What :func:`train` returns (also written to ``out/metrics.json``)."""

    out: Path
    metrics: dict[str, Any]
    checkpoint: Path


def train(data: Any, out: str | os.PathLike = "cgcnn-run", **options: Any) -> TrainResult:
    """Train a CGCNN on ``data`` and evaluate it; every output goes to ``out``.

    ``data`` is anything :class:`~cgcnn.CrystalGraphDataset` reads.  See ``cgcnn train
    --help`` for the meaning and default of every option.

    ``ensemble=K`` trains K models on the same split, with seeds ``seed`` ... ``seed + K -
    1``, into ``out/member0`` ... ``out/member{K-1}``; the test predictions are their mean,
    with their spread in an ``uncertainty`` column, and ``out/ensemble.json`` lists the
    members for ``cgcnn predict``.  The default here is one model; the command line's
    ``cgcnn train`` trains 4 unless told ``--ensemble 1``.  ``split_seed`` draws the random
    split (default ``seed``).  ``jobs`` members train at once, each in its own process with
    ``cores // jobs`` threads (default: as many as there are cores and members, on a single
    CPU device; the graphs are featurized once, first).  ``uncertainty_from`` (a run folder
    or ``ensemble.json``) gives an ensemble trained without a validation split, e.g.
    ``val_ratio=0``, the uncertainty scale of a validated one
    (:func:`borrowed_uncertainty_scale`).

    ``ema=d`` (0 < d < 1, default 0.99) validates, keeps and tests an exponential moving
    average of the weights with decay ``d`` per step instead of the weights themselves
    (Lightning's ``EMAWeightAveraging``); 0 turns it off.

    ``init`` starts from a trained model's weights (fine-tuning, :mod:`cgcnn.finetune`): a
    ``best.ckpt`` of ours, or an original CGCNN ``.pth.tar`` with its ``atom_init.json`` as
    ``atom_features``.  The checkpoint decides the architecture, the atom features and the
    graph settings (architecture options left at their defaults take its values; others
    must agree with it); the targets, their scaling and the task are the new run's.

    ``resume`` continues the run of a ``last.ckpt`` (a file or an ``http(s)://`` address,
    read without running pickled code) into ``out``: graph, model and optimisation settings
    not given are the checkpoint's; the data, the split and the settings given must be the
    checkpoint's (only ``epochs`` may grow), else the run is refused with what differs.  A
    run that is already complete is left untouched and its recorded metrics returned.
    Without ``resume``, an ``out`` holding a finished run is refused unless ``overwrite``.

    ``skip_invalid`` leaves bad structures out; they are listed with their reasons in
    ``skipped`` (default ``out/skipped.csv``) and counted in the metrics as ``n_skipped``.

    Returns:
        :class:`TrainResult` with the test metrics and the best checkpoint's path (for an
        ensemble: ``out/ensemble.json``).
    """
    return _train(data, Path(out), RunSettings.from_options(options))


# train()'s signature and annotations come from the settings' fields (cgcnn.config), so
# help(), inspect and `cgcnn compare`'s grid see every option with its one default
train.__signature__ = train_signature(  # type: ignore[attr-defined]
    [
        inspect.Parameter("data", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Any),
        inspect.Parameter(
            "out",
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            default="cgcnn-run",
            annotation=str | os.PathLike,
        ),
    ]
)
train.__annotations__ = {
    **{p.name: p.annotation for p in train.__signature__.parameters.values()},
    "return": "TrainResult",
}


def _train(data: Any, out: Path, settings: RunSettings) -> TrainResult:
    """:func:`train` on checked settings."""
    resume_state = None
    if settings.run.resume is not None:
        resume_state = read_checkpoint(settings.run.resume)  # refused here, before featurizing
        settings = resumed_settings(settings, resume_state)
    data_options, model_options, run = settings.data, settings.model, settings.run
    # the settings as train()'s keywords, for the data set's reader and ensemble members
    options = {k: v for k, v in settings.flat().items() if k not in {"ensemble", "jobs", *COMPUTED}}
    ensemble, jobs, resume, init = run.ensemble, run.jobs, run.resume, model_options.init
    task, target, atom_features = data_options.task, data_options.target, data_options.atom_features
    seed, progress = settings.optim.seed, run.progress
    _quiet_lightning()
    if resume is None:
        refuse_finished_out(out, run.overwrite)
    train_config = settings.optim
    _check_options(options)
    start = None
    if init is not None:
        from cgcnn.finetune import check_architecture, load_start

        start = load_start(init, atom_features)
        check_architecture(start, options, settings.given)
        # the checkpoint's graphs, whatever the defaults say
        options["radius"] = start.model.config.radius
        options["max_neighbors"] = start.max_neighbors
        options["grow_radius"] = start.grow_radius
        if start.model.needs_bond_vectors:
            options["angle_radius"] = start.model.config.angle_radius
    angles = CONVOLUTION_LAYERS[
        model_options.conv if start is None else start.model.config.conv
    ].sees_angles
    if angles and options["angle_radius"] is None:
        options["angle_radius"] = DEFAULT_ANGLE_RADIUS  # the bonds whose angles it sees
    if run.uncertainty_from is not None:
        if ensemble == 1:
            raise InputError(
                "--uncertainty-from", "scales the spread of an ensemble: give --ensemble K (K >= 2)"
            )
        if task == "classification":
            raise InputError(
                "--uncertainty-from", "scales a regression ensemble's spread, not probabilities"
            )
        borrowed_uncertainty_scale(run.uncertainty_from, target=target)  # now, not after
    if ensemble > 1:
        return _train_ensemble(data, out, ensemble, options, jobs)
    if run.accelerator == "cpu":
        _keep_freed_memory()
    make_folder(out)
    L.seed_everything(seed, workers=True, verbose=False)
    dataset = _read_dataset(data, options)
    if dataset.targets is None:
        raise InputError(str(data), "has no targets to train on; name them with --target")
    if np.isnan(dataset.targets).any():
        raise InputError(str(data), "some crystals lack a target value")
    if len(dataset) < 2:
        raise InputError(str(data), f"has {len(dataset)} crystal(s); training needs more")

    features = resolve_atom_features(atom_features) if start is None else start.features
    # reads every graph once, for all epochs; a model that sees angles needs bond vectors
    batcher = GraphBatcher(dataset, bond_vectors=angles)
    said = dataset.report.list_skipped(
        out / "skipped.csv" if data_options.skipped is None else data_options.skipped
    )
    if said and progress:
        print(said, file=sys.stderr, flush=True)
    require_elements(batcher.elements(), features.known, features.source)

    if settings.split.split is not None:
        parts = split_from_file(settings.split.split, dataset.ids)
    else:
        parts = random_split(
            len(dataset),
            train_ratio=settings.split.train_ratio,
            val_ratio=settings.split.val_ratio,
            test_ratio=settings.split.test_ratio,
            train_size=settings.split.train_size,
            val_size=settings.split.val_size,
            test_size=settings.split.test_size,
            seed=seed if settings.split.split_seed is None else settings.split.split_seed,
        )

    targets = dataset.targets
    names = _target_names(target, targets.shape[1])
    classification = task == "classification"
    k = _n_classes(targets, task, model_options.n_classes)
    if classification:
        train_config.class_weights = _class_weights(
            targets[parts.train, 0], k, model_options.class_weight
        )
    # what the new run decides, with or without a checkpoint to start from
    run_config = dict(
        task=task,
        n_targets=1 if classification else targets.shape[1],
        n_classes=k,
        extensive=data_options.extensive,
        dropout=0.0 if model_options.dropout is None else model_options.dropout,
        target_names=names[:1] if classification else names,
        target_units=[] if classification else _target_units(data_options.unit, data, names),
        class_names=[str(c) for c in range(k)] if classification else [],
    )
    if start is None:
        model_config = CGCNNConfig(
            atom_input_len=features.dim,
            atom_fea_len=model_options.atom_fea_len,
            n_conv=model_options.n_conv,
            h_fea_len=model_options.h_fea_len,
            n_h=model_options.n_h,
            conv=model_options.conv,
            pooling=model_options.pooling,
            activation=model_options.activation,
            batchnorm=model_options.batchnorm,
            readout=model_options.readout,
            radius=settings.graph.radius,
            angle_radius=options["angle_radius"] if angles else 0.0,
            **run_config,
        )
    else:
        model_config = CGCNNConfig.from_dict({**start.model.config.to_dict(), **run_config})
    meta = {
        "atom_features": features.source,
        "data": str(data),
        "data_fingerprint": _data_fingerprint(dataset, batcher),
        "split_fingerprint": fingerprint(
            *(dataset.ids[p] for p in (parts.train, parts.val, parts.test))
        ),
    }
    if init is not None:
        meta["init"] = str(init)
    if resume_state is not None:
        plan = plan_resume(
            resume_state,
            str(resume),
            {
                "model_config": model_config.to_dict(),
                "train_config": asdict(train_config),
                "graph_settings": asdict(dataset.settings),
                **meta,
            },
        )
        if plan.complete:
            return _finished_run(out, plan)
    module = CGCNNModule(
        model_config.to_dict(), asdict(train_config), asdict(dataset.settings), meta
    )
    module.model.set_atom_features(
        torch.from_numpy(features.table), torch.from_numpy(features.known)
    )
    if start is not None:
        from cgcnn.finetune import copy_weights

        fresh = copy_weights(module.model, start.model)
        if progress and resume is None:
            print(
                f"starting from {init}"
                + (f"; new weights: {', '.join(fresh)}" if fresh else "; every weight copied"),
                file=sys.stderr,
                flush=True,
            )
    _fit_transforms(module.model, dataset, parts.train)
    settings.write(out / "config.yaml", data)  # every setting, to repeat the run (--config)

    batcher.expand_edges(module.model.gaussian)
    loaders = _loaders(batcher, parts, settings.optim.batch_size, seed, run.num_workers)
    trainer = _trainer(
        out,
        parts,
        batcher,
        seed,
        train_config,
        run.accelerator,
        run.devices,
        run.strategy,
        run.num_nodes,
        progress,
        run.stop_after,
        task,
        {} if resume_state is None else {str(resume): resume_state},
        _common_unit(module.model.config.target_units),
    )
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*number of training batches.*")
        warnings.filterwarnings("ignore", ".*exists and is not empty.*")
        warnings.filterwarnings("ignore", ".*have no `val_dataloader`.*")  # --val-ratio 0
        _fit(trainer, module, loaders, None if resume is None else str(resume))
    train_seconds = time.perf_counter() - started
    if not trainer.is_global_zero:
        return TrainResult(out, {}, out / "best.ckpt")

    best = _best_checkpoint(trainer, out)
    metrics: dict[str, Any] = {
        "checkpoint": str(best.resolve()),
        "n_train": len(parts.train),
        "n_val": len(parts.val),
        "n_test": len(parts.test),
        "train_seconds": round(train_seconds, 3),
        "epochs_run": int(trainer.current_epoch),
    }
    if data_options.skip_invalid:
        metrics["n_skipped"] = len(dataset.report.skipped)
    from cgcnn.prediction import evaluate, load

    model, _ = load(best)
    if len(parts.test):
        test_metrics = evaluate(
            model,
            Subset(dataset, parts.test.tolist()),
            out / "test_results.csv",
            plots_dir=out if run.plots else None,
        )
        metrics.update({f"test_{k}": v for k, v in test_metrics.items()})
    if len(parts.val):
        # the best model's validation predictions: an ensemble scales its spread with them
        val_metrics = evaluate(model, Subset(dataset, parts.val.tolist()), out / "val_results.csv")
        if not classification:
            metrics.update(_against_the_mean(val_metrics, dataset.targets, parts))
    write_json(out / "metrics.json", metrics)
    if run.plots:
        _learning_curve(out, model.config, train_config.loss)
    return TrainResult(out, metrics, best)


def _train_member(task: tuple[Any, Path, int, dict[str, Any]]) -> TrainResult:
    """One ensemble member (module level, so that a worker process can run it)."""
    data, out, seed, options = task
    from cgcnn.progress import use_lines

    use_lines(f"{out.name}: ")  # the members share one terminal: lines, not fighting bars
    return train(data, out, seed=seed, **options)


def _ensemble_jobs(jobs: int | None, k: int, data: Any, options: dict[str, Any]) -> int:
    """Members to train at once: in parallel only on one CPU device, with data given by
    name or path (a worker process must be able to read it again)."""
    single_cpu = (
        options["accelerator"] == "cpu"
        and str(options["devices"]) in ("1", "auto")
        and options["num_nodes"] == 1
        and options["strategy"] == "auto"
    )
    if not single_cpu or not isinstance(data, str | os.PathLike):
        return 1
    from cgcnn.parallel import available_cores

    return max(1, min(k, available_cores() if jobs is None else jobs))


def _train_ensemble(
    data: Any, out: Path, k: int, options: dict[str, Any], jobs: int | None = None
) -> TrainResult:
    """Train ``k`` members on one split and write the ensemble's test results and metrics."""
    if options["resume"] is not None:
        raise InputError("--resume", "resume one member (OUT/memberK/last.ckpt) without --ensemble")
    seed = options.pop("seed")
    if options["split_seed"] is None:
        options["split_seed"] = seed
    make_folder(out)
    RunSettings.from_options({**options, "seed": seed, "ensemble": k, "jobs": jobs}).write(
        out / "config.yaml", data
    )
    borrowed_from = options.pop("uncertainty_from")  # the ensemble's, not its members'
    jobs = _ensemble_jobs(jobs, k, data, options)
    began = time.perf_counter()
    if jobs == 1:
        members = [train(data, out / f"member{m}", seed=seed + m, **options) for m in range(k)]
    else:
        from cgcnn.parallel import run_in_processes

        _read_dataset(data, options)  # featurize here, once: the members only read the cache
        quiet = {**options, "workers": 1}
        tasks = [(data, out / f"member{m}", seed + m, quiet) for m in range(k)]

        def done(finished: int, task: tuple, result: TrainResult, seconds: float) -> None:
            if options["progress"]:
                shown = ", ".join(
                    f"{name} {value:.4g}"
                    for name, value in result.metrics.items()
                    if name in ("test_mae", "test_roc_auc", "test_accuracy")
                )
                print(
                    f"ensemble: {task[1].name} done ({finished}/{k}, {seconds:.0f} s)"
                    + (f": {shown}" if shown else ""),
                    file=sys.stderr,
                    flush=True,
                )

        if options["progress"]:
            print(f"ensemble: {k} members, {jobs} at a time", file=sys.stderr, flush=True)
        members = run_in_processes(_train_member, tasks, jobs, on_done=done)
    wall_seconds = time.perf_counter() - began
    if not members[0].metrics:  # not the main process of a distributed run
        return TrainResult(out, {}, out / "ensemble.json")
    listing: dict[str, Any] = {
        "members": [str(Path(r.metrics["checkpoint"]).relative_to(out.resolve())) for r in members]
    }
    from cgcnn.trained import open_checkpoint

    config = open_checkpoint(members[0].checkpoint).model_config
    scale = None
    n_val = members[0].metrics["n_val"]
    if config.task == "regression" and borrowed_from is not None:
        scale = borrowed_uncertainty_scale(borrowed_from, config)
        listing["uncertainty_scale"] = scale
        listing["uncertainty_scale_from"] = str(borrowed_from)
    elif config.task == "regression" and n_val >= MIN_CALIBRATION:
        scale = uncertainty_scale([_read_results(r.out / "val_results.csv") for r in members])
        listing["uncertainty_scale"] = scale
    elif config.task == "regression" and options["progress"]:
        print(
            f"ensemble: {n_val} validation crystal(s) are too few to calibrate the spread "
            f"(at least {MIN_CALIBRATION}); the 'uncertainty' column is the members' raw "
            "spread, which underestimates the error (--uncertainty-from RUN takes the scale "
            "of a validated ensemble)",
            file=sys.stderr,
            flush=True,
        )
    write_json(out / "ensemble.json", listing)
    metrics: dict[str, Any] = {
        "checkpoint": str((out / "ensemble.json").resolve()),
        "ensemble": k,
        "n_train": members[0].metrics["n_train"],
        "n_val": members[0].metrics["n_val"],
        "n_test": members[0].metrics["n_test"],
        "train_seconds": round(sum(r.metrics["train_seconds"] for r in members), 3),
        # members trained `jobs` at a time: the wall-clock time of all of them
        "ensemble_seconds": round(wall_seconds, 3),
        "jobs": jobs,
    }
    if "n_skipped" in members[0].metrics:
        metrics["n_skipped"] = members[0].metrics["n_skipped"]
    if scale is not None:
        metrics["uncertainty_scale"] = scale
        if borrowed_from is not None:
            metrics["uncertainty_scale_from"] = str(borrowed_from)
    if members[0].metrics["n_test"]:
        results = [_read_results(r.out / "test_results.csv") for r in members]
        metrics.update(_ensemble_results(config, results, out, options["plots"], scale))
        for name in [key for key in members[0].metrics if key.startswith("test_")]:
            metrics[f"member_{name}"] = [r.metrics[name] for r in members]
    write_json(out / "metrics.json", metrics)
    return TrainResult(out, metrics, out / "ensemble.json")


def _read_results(path: Path) -> dict[str, list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    return {name: [row[c] for row in rows[1:]] for c, name in enumerate(rows[0])}


def _member_columns(results: list[dict], classification: bool):
    """(K arrays (n, T|C) of the members' predictions or probabilities, (n, T) targets) from
    the members' ``*_results.csv`` files read by :func:`_read_results`."""
    first = results[0]
    if classification:
        columns = [c for c in first if c.startswith("prob_")]
        target_columns = ["target"]
    else:
        columns = [c for c in first if c.startswith("prediction")]
        target_columns = [c.replace("prediction", "target", 1) for c in columns]
    member_values = [np.array([r[c] for c in columns], dtype=np.float64).T for r in results]
    targets = np.array([first[c] for c in target_columns], dtype=np.float64).T
    return member_values, targets


#: validation crystals needed to fit the ensemble's uncertainty scale (fewer: the raw spread)
MIN_CALIBRATION = 20


def uncertainty_scale(val_results: list[dict]) -> list[float]:
    """Per target, the factor s that makes an ensemble's spread an error estimate.

    On the validation split, with e the ensemble mean's error and u the members' spread
    (standard deviation, ``ddof=1``) of each crystal,

        s = sqrt( mean(e^2) / mean(u^2) ),

    so that s * u has the root-mean-square size of the errors there (variance scaling).
    The members' spread alone is too small: on the Castelli perovskites s is 2.2-2.9 and
    only 34 % of the test errors lie within one unscaled spread, 68 % within one scaled
    (docs/training.md, "Ensembles").  Targets without a finite, non-zero spread get 1.
    """
    from cgcnn.prediction import ensemble_mean

    member_values, targets = _member_columns(val_results, classification=False)
    mean, spread = ensemble_mean(member_values, classification=False)
    scales = []
    for k in range(targets.shape[1]):
        ok = np.isfinite(targets[:, k]) & np.isfinite(spread[:, k])
        square_spread = float(np.mean(spread[ok, k] ** 2)) if ok.any() else 0.0
        if square_spread > 0:
            scales.append(
                float(np.sqrt(np.mean((mean[ok, k] - targets[ok, k]) ** 2) / square_spread))
            )
        else:
            scales.append(1.0)
    return scales


def borrowed_uncertainty_scale(
    source: str | os.PathLike, config: CGCNNConfig | None = None, target: str | None = None
) -> list[float]:
    """The uncertainty scale (:func:`uncertainty_scale`) of ``source``, a validated ensemble
    (its folder or ``ensemble.json``), for an ensemble of ``config`` trained without a
    validation split (``--uncertainty-from``).

    The scale belongs to the settings and the data more than to one training.  On the
    Castelli perovskites' five folds, ensembles trained with ``--val-ratio 0`` and scaled with
    the validated ensemble's factor of the same fold put 63-76 % of their test errors within
    one ``uncertainty``, as the validated ensembles do with their own (62-76 %; the raw
    spread: 31-37 %; docs/benchmarks.md).  Without ``config`` (before training) ``source``
    is checked alone, and against ``target`` when that names the targets.

    Raises:
        InputError: ``source`` is not an ensemble, has no scale, or predicts other targets.
    """
    from cgcnn.trained import open_checkpoint

    opened = open_checkpoint(source)
    name = opened.source
    if opened.kind != "ensemble":
        raise InputError(name, "is not an ensemble (OUT/ensemble.json of cgcnn train --ensemble K)")
    scale = opened.uncertainty_scale
    if scale is None:
        raise InputError(
            name,
            f"has no uncertainty scale: it is a classifier, or was trained without a validation "
            f"split of at least {MIN_CALIBRATION} crystals",
        )
    theirs = opened.model_config
    names = config.target_names if config is not None else _named_targets(target)
    if names is None:  # columns by number, or the data's one target: named once read
        return scale
    if theirs.target_names != names or len(scale) != len(names):
        there, here = ", ".join(theirs.target_names), ", ".join(names)
        raise InputError(name, f"predicts {there}, this run {here}")
    if config is None:
        return scale
    ours, recorded = asdict(config), asdict(theirs)
    differ = [
        f"{key} = {recorded[key]} there, {value} here"
        for key, value in ours.items()
        if key != "target_units" and not same_value(recorded.get(key), value)
    ]
    if differ:
        print(
            f"cgcnn: warning: the uncertainty scale comes from a model with other settings "
            f"({'; '.join(differ)}), so it may not fit this one: {name}",
            file=sys.stderr,
            flush=True,
        )
    return scale


def _ensemble_results(
    config, results: list[dict], out: Path, plots: bool, scale: list[float] | None = None
) -> dict[str, float]:
    """Average the members' test predictions; write test_results.csv (the spread times
    ``scale``, see :func:`uncertainty_scale`); return test metrics."""
    from cgcnn.prediction import _metrics, ensemble_mean, write_results

    classification = config.task == "classification"
    member_values, targets = _member_columns(results, classification)
    mean, spread = ensemble_mean(member_values, classification, scale)
    write_results(out / "test_results.csv", config, results[0]["id"], mean, targets, spread)
    metrics = _metrics(config, mean, targets, out if plots else None)
    return {f"test_{name}": value for name, value in metrics.items()}


# --------------------------------------------------------------------------- helpers


def _named_targets(target: str | None) -> list[str] | None:
    """The names that ``--target`` gives (None: column numbers, or no ``--target``)."""
    if target and not target.replace(",", "").replace(" ", "").isdigit():
        return [t.strip() for t in target.split(",") if t.strip()]
    return None


def _target_names(target: str | None, n: int) -> list[str]:
    names = _named_targets(target)
    if names is not None and len(names) == n:
        return names
    return ["target"] if n == 1 else [f"target{k}" for k in range(n)]


def _common_unit(units: list[str]) -> str:
    """The unit of the validation MAE (the mean over the targets): theirs when they share
    one, else none."""
    return units[0] if units and len(set(units)) == 1 else ""


def _target_units(unit: str | None, data: Any, names: list[str]) -> list[str]:
    """One unit per target: ``--unit``'s, else the registry's (``""`` where unknown)."""
    if unit is None:
        from cgcnn.datasets import registry_units

        return registry_units(data, names)
    units = [u.strip() for u in unit.split(",")]
    if len(units) != len(names):
        raise InputError(
            "--unit", f"gives {len(units)} unit(s) for {len(names)} target(s) ({', '.join(names)})"
        )
    return units


def _n_classes(targets: np.ndarray, task: str, n_classes: int | None) -> int:
    if task != "classification":
        return 2
    labels = targets[:, 0]
    if not np.all(labels == np.round(labels)) or labels.min() < 0:
        raise InputError(
            "--task classification", "labels must be whole numbers 0, 1, ... (class indices)"
        )
    k = int(labels.max()) + 1
    if n_classes is not None:
        if n_classes < k:
            raise InputError("--n-classes", f"is {n_classes} but the labels go up to {k - 1}")
        k = n_classes
    return max(k, 2)


def _class_weights(labels: np.ndarray, n_classes: int, mode: str) -> list[float] | None:
    """Cross-entropy weights: ``balanced`` gives class c the weight n / (C · n_c) (classes
    absent from the training split get 1), so each class weighs the same in the loss; with
    4 % positives, an unweighted loss is 96 % about the majority class.  ``none``: no weights
    (the default: on the metal / non-metal perovskites, balancing did not raise the ROC-AUC,
    see docs/benchmarks.md).
    """
    if mode == "none":
        return None
    if mode != "balanced":
        raise InputError("--class-weight", f"must be balanced or none, got {mode!r}")
    counts = np.bincount(labels.astype(int), minlength=n_classes).astype(float)
    weights = np.where(counts > 0, len(labels) / (n_classes * np.maximum(counts, 1)), 1.0)
    return [float(w) for w in weights]


def _fit_transforms(model: CGCNN, dataset: CrystalGraphDataset, train_idx: np.ndarray) -> None:
    config = model.config
    if config.task == "classification":
        return
    y = dataset.targets[train_idx]
    if not config.extensive:
        mean, std = standardization(y)
        model.target_mean.copy_(torch.from_numpy(mean))
        model.target_std.copy_(torch.from_numpy(std))
        return
    table = model.atom_table.numpy()
    sums = np.zeros((len(train_idx), table.shape[1]))
    n_atoms = np.zeros(len(train_idx))
    for row, k in enumerate(train_idx):
        z = dataset.graph(int(k)).atomic_numbers
        sums[row] = table[z].sum(axis=0)
        n_atoms[row] = len(z)
    coef, bias, scale = fit_references(sums, n_atoms, y)
    model.ref_coef.copy_(torch.from_numpy(coef))
    model.ref_bias.copy_(torch.from_numpy(bias))
    model.target_std.copy_(torch.from_numpy(scale))


def _loaders(
    batcher: GraphBatcher, parts: Split, batch_size: int, seed: int, num_workers: int
) -> dict[str, DataLoader]:
    loaders = {
        "train": DataLoader(
            IndexDataset(parts.train),
            batch_size=batch_size,
            sampler=EpochSeededSampler(len(parts.train), seed),
            collate_fn=batcher,
            num_workers=num_workers,
            persistent_workers=num_workers > 0,
        )
    }
    if len(parts.val):
        loaders["val"] = DataLoader(
            IndexDataset(parts.val),
            batch_size=batch_size,
            shuffle=False,
            collate_fn=batcher,
            num_workers=num_workers,
            persistent_workers=num_workers > 0,
        )
    return loaders


def _trainer(
    out,
    parts,
    batcher,
    seed,
    config,
    accelerator,
    devices,
    strategy,
    num_nodes,
    progress,
    stop_after,
    task,
    loaded: dict[str, dict[str, Any]],
    unit: str = "",
) -> L.Trainer:
    """The Lightning trainer; ``loaded`` maps a ``--resume`` source to its checkpoint, read
    and checked already, so that Lightning does not read it a second time."""
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

    has_val = len(parts.val) > 0
    # regression: the validation MAE in the target's units, the number users care about;
    # classification: the cross-entropy (always defined, even with one class in a split)
    monitor = "val_mae" if task == "regression" else "val_loss"
    callbacks: list = [
        # last.ckpt after every epoch, for --resume: ModelCheckpoint's own save_last only
        # rewrites it when best.ckpt is rewritten, i.e. at the last epoch that improved
        ModelCheckpoint(dirpath=out, filename="last", enable_version_counter=False),
    ]
    if has_val:  # without validation the last epoch is the best one (see _best_checkpoint)
        callbacks.insert(
            0,
            ModelCheckpoint(
                dirpath=out,
                filename="best",
                monitor=monitor,
                mode="min",
                enable_version_counter=False,
            ),
        )
    if has_val and config.patience > 0:
        callbacks.append(EarlyStopping(monitor=monitor, mode="min", patience=config.patience))
    if config.ema > 0:
        from lightning.pytorch.callbacks import EMAWeightAveraging

        # validation, early stopping, best.ckpt / last.ckpt and the test see the average;
        # checkpoints also keep the live weights, so --resume continues exactly
        callbacks.insert(0, EMAWeightAveraging(decay=config.ema))
    if progress:
        from cgcnn.training_progress import TrainingProgress

        callbacks.append(TrainingProgress(monitor, unit))
    if has_val and config.bn_statistics > 0:
        from cgcnn.batch_statistics import RecomputeBatchNorm

        # after the moving average is swapped in: the statistics of the weights validated
        callbacks.insert(
            1 if config.ema > 0 else 0,
            RecomputeBatchNorm(batcher, parts.train, config.batch_size, config.bn_statistics, seed),
        )
    return L.Trainer(
        # stop_after ends this run early (a time slot on a cluster, say) without changing
        # the plan: the schedule still spans config.epochs, and --resume continues it.
        max_epochs=min(config.epochs, stop_after) if stop_after else config.epochs,
        accelerator=accelerator,
        devices=devices,
        strategy=strategy,
        num_nodes=num_nodes,
        gradient_clip_val=config.gradient_clip or None,
        logger=EpochLog(out),
        plugins=[SafeCheckpointIO(loaded)],
        callbacks=callbacks,
        enable_progress_bar=False,  # TrainingProgress instead: units, best, time left
        enable_model_summary=False,
        deterministic=False,
        log_every_n_steps=1,
        num_sanity_val_steps=0,
    )


def _best_checkpoint(trainer: L.Trainer, out: Path) -> Path:
    """``best.ckpt``: the epoch with the best validation metric, or without a validation
    split the last epoch (copied from ``last.ckpt``, so that every run has a best.ckpt)."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    for callback in trainer.callbacks:
        is_best = isinstance(callback, ModelCheckpoint) and callback.filename == "best"
        if is_best and callback.best_model_path:
            return Path(callback.best_model_path)
    last, best = out / "last.ckpt", out / "best.ckpt"
    if not last.is_file():
        return last
    with atomic_write(best, "wb") as handle:
        handle.write(last.read_bytes())
    return best


def _check_options(options: dict[str, Any]) -> None:
    """Refuse what the settings' own checks (:mod:`cgcnn.config`) cannot judge alone, before
    anything slow runs (featurizing takes minutes on a large data set): the model as a
    whole, the atom features and the hardware."""
    import inspect

    model_options = {
        name: options[name]
        for name in inspect.signature(CGCNNConfig).parameters
        if name in options and options[name] is not None
    }
    try:
        CGCNNConfig(**{**model_options, "n_classes": options["n_classes"] or 2})
    except ValueError as exc:
        raise InputError("model", str(exc)) from None
    if options["init"] is None:
        resolve_atom_features(options["atom_features"])
    _check_hardware(options)


def _check_hardware(options: dict[str, Any]) -> None:
    """Let Lightning judge ``accelerator``, ``devices``, ``strategy`` and ``num_nodes``
    now, on a trainer that is never run (about 0.1 s)."""
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            L.Trainer(
                accelerator=options["accelerator"],
                devices=options["devices"],
                strategy=options["strategy"],
                num_nodes=options["num_nodes"],
                logger=False,
                enable_checkpointing=False,
                enable_progress_bar=False,
                enable_model_summary=False,
            )
    except (ValueError, TypeError, RuntimeError, ImportError, MisconfigurationException) as exc:
        raise InputError("--accelerator/--devices/--strategy", first_line(exc, None)) from None


def _against_the_mean(
    val_metrics: dict[str, float], targets: np.ndarray, parts: Split
) -> dict[str, Any]:
    """The validation MAE of predicting the training mean, and a one-line warning when the
    model does no better (it has then learned nothing of the target, whatever epoch was kept
    as the best).  Several targets: their mean MAE against the mean predictor's."""
    train_mean = np.nanmean(targets[parts.train], axis=0)  # (T,)
    baseline = float(np.nanmean(np.abs(targets[parts.val] - train_mean)))
    maes = [v for k, v in val_metrics.items() if k == "mae" or k.startswith("mae_")]
    model_mae = float(np.mean(maes)) if maes else float("nan")
    result: dict[str, Any] = {"val_mae_of_predicting_the_mean": baseline}
    if np.isfinite(model_mae) and model_mae >= baseline:
        result["warning"] = (
            f"the model's validation MAE ({model_mae:.4g}) is no better than predicting the "
            f"training mean ({baseline:.4g}): it has not learned this target"
        )
        print(f"cgcnn: warning: {result['warning']}", file=sys.stderr, flush=True)
    return result


def _fit(trainer: L.Trainer, module: CGCNNModule, loaders: dict, resume: str | None) -> None:
    """``trainer.fit``, with Ctrl-C raised as ``KeyboardInterrupt`` again.

    On Ctrl-C Lightning shuts down, ignores SIGINT from then on and calls ``sys.exit(1)``;
    the command line then reports ``cgcnn: interrupted`` with status 130, as for an
    ensemble.  The checkpoints written so far stay (each written atomically).
    """
    import signal

    handler = signal.getsignal(signal.SIGINT)
    try:
        trainer.fit(module, loaders["train"], loaders.get("val"), ckpt_path=resume)
    except SystemExit:
        if trainer.interrupted:
            raise KeyboardInterrupt from None
        raise
    finally:
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN and handler is not None:
            with contextlib.suppress(ValueError):  # not the main thread
                signal.signal(signal.SIGINT, handler)


def _data_fingerprint(dataset: CrystalGraphDataset, batcher: GraphBatcher) -> str:
    """Fingerprint of the crystals (ids, targets and, when packed, every atom and bond
    length) that ``--resume`` compares."""
    if batcher.packed:
        return fingerprint(dataset.ids, dataset.targets, batcher.atomic_numbers, batcher.distances)
    return fingerprint(dataset.ids, dataset.targets)


def _finished_run(out: Path, plan: ResumePlan) -> TrainResult:
    """A ``--resume`` of a complete run: say so, change nothing, return what it recorded."""
    print(
        f"cgcnn: {plan.source} is a complete run ({plan.why_complete}); nothing was changed",
        file=sys.stderr,
        flush=True,
    )
    metrics: dict[str, Any] = {}
    recorded = out / "metrics.json"
    if recorded.is_file():
        import json

        with contextlib.suppress(ValueError):
            metrics = json.loads(recorded.read_text())
    best = out / "best.ckpt"
    return TrainResult(out, metrics, best if best.is_file() else Path(plan.source))


def _learning_curve(out: Path, model_config: CGCNNConfig, loss: str) -> None:
    from cgcnn.plots import learning_curve

    log = out / "metrics.csv"
    classification = model_config.task == "classification"
    if log.is_file():
        with contextlib.suppress(ValueError):  # no finished epoch to draw
            learning_curve(
                log,
                out / "learning_curve.png",
                unit=_common_unit(model_config.target_units),
                loss="cross_entropy" if classification else loss,
            )


def _keep_freed_memory() -> None:
    """Let glibc reuse freed blocks instead of returning them to the system (CPU training).

    A training step allocates and frees the same (edges, 2F) float tensors over and over;
    8 MB each for a batch of 256 perovskites.  glibc serves blocks above its mmap threshold
    with fresh ``mmap`` calls and trims the heap top on ``free``, so each such tensor
    page-faults its memory in again: measured, a training step with the original CGCNN's
    settings went from 84 to 71 ms (1 thread) once freed memory is kept.  Raising the mmap
    threshold to its maximum (32 MB on 64-bit) and the trim threshold does that; the
    process's peak memory is unchanged.  A no-op off glibc.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    mallopt(m_mmap_threshold, 32 * 1024 * 1024)
    mallopt(m_trim_threshold, 1024 * 1024 * 1024)


def _quiet_lightning() -> None:
    """Keep Lightning to warnings (no GPU/TPU banner, no advertising tips)."""
    import logging

    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module="lightning.pytorch.utilities._pytree")
