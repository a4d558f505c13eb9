"""Every setting of a run, defined once: its default, its help text and its check.

A run of ``cgcnn train`` (and of :func:`cgcnn.train`) is described by six sections:

========  =====================  ==================================================
section   class                  what it decides
========  =====================  ==================================================
data      :class:`DataOptions`   what is read: targets, task, atom features, cache
graph     :class:`GraphSettings` the crystal graphs (:mod:`cgcnn.graph`)
model     :class:`ModelOptions`  the network's architecture, or ``init`` to start from
split     :class:`SplitOptions`  train / validation / test
optim     :class:`TrainConfig`   optimisation and schedule (saved in checkpoints)
run       :class:`RunOptions`    hardware, ensembles, resuming, output
========  =====================  ==================================================

Each field carries its help text in ``metadata``; the command line's options are generated
from them (:func:`add_options`), :func:`cgcnn.train`'s signature is derived from them
(:func:`train_signature`), and every resolved run is written to ``OUT/config.yaml``
(:meth:`RunSettings.write`), which ``cgcnn train --config FILE`` reads back.  A setting
that is not given keeps its default; what was given is kept in :attr:`RunSettings.given`,
so that a preset, a config file or a checkpoint (``--init``) fills in exactly the rest.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import inspect
import json
import math
import numbers
import os
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cgcnn.errors import InputError
from cgcnn.names import (
    ACTIVATIONS,
    CONVOLUTIONS,
    LOSSES,
    OPTIMIZERS,
    POOLINGS,
    READOUTS,
    SCHEDULERS,
    TASKS,
    resolve,
)


def option(
    default: Any,
    help: str,
    *,
    flag: str | None = None,
    short: str | None = None,
    aliases: tuple[str, ...] = (),
    choices: tuple[str, ...] | None = None,
    metavar: str | None = None,
    cli: bool = True,
    show_default: bool = True,
) -> Any:
    """A dataclass field with what the command line needs to offer it.

    Args:
        default: the default (a list is copied for each instance).
        help: one sentence, without the default (added by :func:`add_options`).
        flag: the command-line option, when it is not ``--`` + the name with dashes.
        short: a one-letter alias (``-b``).
        aliases: other names accepted for it (the original CGCNN's, where they mean the same).
        choices: the accepted names.
        metavar: the placeholder in ``--help``.
        cli: offered on the command line (``False`` for values the run computes).
        show_default: say the default in the help (off where the help says it in words).
    """
    metadata = {
        "help": help,
        "flag": flag,
        "short": short,
        "aliases": aliases,
        "choices": choices,
        "metavar": metavar,
        "cli": cli,
        "show_default": show_default,
    }
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


# --------------------------------------------------------------------------- sections


def resolve_workers(workers: int | None) -> int:
    """Featurization processes for ``--workers``, the same in every command: ``None``, all
    cores; 0 or 1, in this process (no worker processes, as ``--num-workers 0`` means for
    data loading); N, N processes.

    Raises:
        InputError: a negative or non-integer value.
    """
    if workers is None:
        return os.cpu_count() or 1
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise InputError("--workers", f"must be a whole number >= 0, got {workers!r}")
    return max(1, workers)


#: Bumped whenever the graph construction changes, so cached graphs are rebuilt.
GRAPH_VERSION = 1

#: Å: the bonds whose angles ``--conv threebody`` sees, unless ``--angle-radius`` says
#: otherwise.  It covers the first shell of every perovskite (B-X ≈ 2 Å, A-X ≈ 2.8 Å) and the
#: first two of carbon (1.4-1.6 Å, ≈ 2.5 Å).
DEFAULT_ANGLE_RADIUS = 3.0


@dataclass(frozen=True)
class GraphSettings:
    """Every setting that changes the graph of a crystal (and so its cache key).

    Attributes:
        radius: neighbour search cutoff, Å (> 0).
        max_neighbors: neighbours kept per atom, the nearest first (>= 1).
        grow_radius: enlarge the radius per structure until every atom has
            ``max_neighbors`` neighbours (at most ``cgcnn.graph.MAX_GROWN_RADIUS``).
        min_distance: two atoms closer than this (Å) make the structure invalid.
        angle_radius: also keep every neighbour within this (Å), however many there are,
            so that the bonds this short are complete (their angles then do not depend on
            which of several equally distant atoms the ``max_neighbors`` cut kept, nor on
            the choice of cell); ``None``: no such bonds (``--conv threebody`` sets
            :data:`DEFAULT_ANGLE_RADIUS`).  Left out of the cache key when ``None``.
    """

    radius: float = option(8.0, "neighbour cutoff in Å", metavar="R")
    max_neighbors: int = option(
        12, "nearest neighbours kept per atom", metavar="M", aliases=("--max-num-nbr",)
    )
    grow_radius: bool = option(
        False,
        "widen the cutoff per structure until every atom has M neighbours (otherwise atoms "
        "with fewer get fewer edges; no fake padding)",
    )
    min_distance: float = option(
        0.5, "reject structures with two atoms closer than D Å", metavar="D"
    )
    angle_radius: float | None = option(
        None,
        "bonds up to A Å are all kept, whatever M says, and --conv threebody sees the angles "
        "between them (default: 3 Å with --conv threebody, else none)",
        metavar="A",
        show_default=False,
    )

    def __post_init__(self) -> None:
        radius, neighbors = self.radius, self.max_neighbors
        if not (isinstance(radius, int | float) and math.isfinite(radius)) or not radius > 0:
            raise InputError("radius", f"must be a positive number of Å, got {radius!r}")
        if isinstance(neighbors, bool) or not isinstance(neighbors, numbers.Integral):
            raise InputError("max_neighbors", f"must be a whole number >= 1, got {neighbors!r}")
        if neighbors < 1:
            raise InputError("max_neighbors", f"must be >= 1, got {neighbors}")
        if not self.min_distance >= 0:
            raise InputError("min_distance", f"must be >= 0 Å, got {self.min_distance!r}")
        angle = self.angle_radius
        if angle is not None and not (
            isinstance(angle, int | float) and not isinstance(angle, bool) and 0 < angle <= radius
        ):
            raise InputError(
                "angle_radius", f"must be a number of Å in (0, radius={radius:g}], got {angle!r}"
            )

    def key(self) -> str:
        """A short hash of the settings and of :data:`GRAPH_VERSION` (``angle_radius`` only
        when set, so that graphs cached before it existed keep their key)."""
        values = dataclasses.asdict(self)
        if values["angle_radius"] is None:
            del values["angle_radius"]
        blob = json.dumps({**values, "version": GRAPH_VERSION}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass
class DataOptions:
    """What is read and how (see ``cgcnn train --help``, group "reading structures")."""

    target: str | None = option(
        None,
        "target column(s): names for CSV/JSON, 1-based column numbers of id_prop.csv for a "
        "CGCNN folder (default: a folder's every target column; none for CSV/JSON)",
        metavar="NAME[,NAME...]",
        show_default=False,
    )
    unit: str | None = option(
        None,
        "the target's unit, for tables and figures (several targets: comma-separated, in "
        "order); default: the registry's, for a registered data set",
        metavar="UNIT[,UNIT...]",
        show_default=False,
    )
    task: str = option(
        "regression",
        "regression, or classification (labels 0, 1, ... in the target column)",
        choices=TASKS,
    )
    extensive: bool = option(
        False,
        "the target scales with the number of atoms (e.g. total energy per cell): predict a "
        "contribution per atom and sum them, on top of per-element references",
    )
    atom_features: str = option(
        "cgcnn92+onehot",
        "atom feature table: cgcnn92 (generated), onehot, an atom_init.json, or several joined "
        "by '+' (cgcnn92+onehot: the 92 CGCNN features and the element's identity)",
        metavar="FILE|NAME",
    )
    id_column: str | None = option(
        None,
        "CSV/JSON id column (default: material_id, else id)",
        metavar="NAME",
        show_default=False,
    )
    structure_column: str | None = option(
        None,
        "CSV/JSON structure column (default: cif for CSV, structure for JSON)",
        metavar="NAME",
        show_default=False,
    )
    cache_dir: str | None = option(
        None,
        "graph cache folder (default: $CGCNN_CACHE_DIR, else ~/.cache/cgcnn)",
        flag="--cache",
        metavar="DIR",
        show_default=False,
    )
    workers: int | None = option(
        None,
        "featurization processes (default: all cores; 0: none, in this process)",
        metavar="N",
        show_default=False,
    )
    skip_invalid: bool = option(
        False, "leave bad structures out (listed in --skipped) instead of stopping"
    )
    skipped: str | None = option(
        None,
        "where --skip-invalid lists the skipped structures with their line or file and reason "
        "(default OUT/skipped.csv; written only when something is skipped)",
        metavar="FILE",
        show_default=False,
    )

    def __post_init__(self) -> None:
        self.task = resolve("task", self.task, TASKS)
        resolve_workers(self.workers)


def resolve_readout(readout: str | None, pooling: str | None) -> tuple[str, str]:
    """(readout, pooling) as a run uses them: not given, the readout is ``site``, or
    ``pooled`` when a pooling is given (asking for a pooling asks for the pooled readout);
    the pooling is ``mean`` when not given."""
    if readout is None:
        readout = "site" if pooling is None else "pooled"
    return readout, pooling or "mean"


@dataclass
class ModelOptions:
    """The network (see :class:`cgcnn.nn.CGCNNConfig` for what each part does)."""

    conv: str = option(
        "edgegated",
        "edgegated: gated messages, and bond states that every layer updates | threebody: "
        "edgegated, also seeing bond angles within --angle-radius | gated: the "
        "paper's eq. 4 | shared: eq. 3 | none",
        choices=CONVOLUTIONS,
    )
    pooling: str | None = option(
        None,
        "how --readout pooled pools the atom vectors before the head; giving it selects "
        "--readout pooled (not given: the per-site readout, which averages)",
        choices=POOLINGS,
        show_default=False,
    )
    readout: str | None = option(
        None,
        "site: the head on every atom, then the mean of the per-site values (each site's value "
        "is its contribution to the prediction) | pooled: pool the atoms with --pooling, then "
        "the head (the paper's). Default: site, or pooled when --pooling is given; "
        "--extensive always sums per-site values",
        choices=READOUTS,
        show_default=False,
    )
    activation: str = option("silu", "activation (softplus: the paper's)", choices=ACTIVATIONS)
    batchnorm: bool = option(
        True, "leave out the batch norms", flag="--no-batchnorm", show_default=False
    )
    atom_fea_len: int = option(64, "atom feature width")
    h_fea_len: int = option(128, "hidden width after pooling")
    n_conv: int = option(3, "convolutions")
    n_h: int = option(1, "hidden layers after pooling")
    dropout: float | None = option(
        None, "dropout after the first hidden layer (default 0)", show_default=False
    )
    n_classes: int | None = option(None, "classes (default: largest label + 1)", show_default=False)
    class_weight: str = option(
        "none",
        "classification: none, or balanced: weigh each class by n / (classes x its count) in "
        "the loss, so that a rare class counts as much as a common one",
        choices=("none", "balanced"),
    )
    init: str | None = option(
        None,
        "fine-tune: start from the weights of a trained model, a best.ckpt of cgcnn train or "
        "an original CGCNN .pth.tar (then give its atom_init.json as --atom-features). Its "
        "architecture, atom features and graph settings are kept (options not given take its "
        "values); the targets are scaled anew, and the output layer starts afresh when the "
        "task changes",
        metavar="CKPT",
        show_default=False,
    )

    def __post_init__(self) -> None:
        self.conv = resolve("convolution", self.conv, CONVOLUTIONS)
        self.readout, self.pooling = resolve_readout(self.readout, self.pooling)
        self.readout = resolve("readout", self.readout, READOUTS)
        self.pooling = resolve("pooling", self.pooling, POOLINGS)
        if self.readout == "site" and self.pooling != "mean":
            raise InputError(
                "--pooling",
                f"{self.pooling} pools the atom vectors before the head, but --readout site "
                "averages the head's per-site values; give --readout pooled with it",
            )
        self.activation = resolve("activation", self.activation, ACTIVATIONS)
        for name in ("atom_fea_len", "h_fea_len", "n_h"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"--{name.replace('_', '-')}", "must be >= 1")
        if self.n_conv < 0:
            raise InputError("--n-conv", f"must be >= 0, got {self.n_conv}")
        if self.dropout is not None and not 0.0 <= self.dropout < 1.0:
            raise InputError("--dropout", f"must be in [0, 1), got {self.dropout}")
        if self.n_classes is not None and self.n_classes < 2:
            raise InputError("--n-classes", f"must be >= 2, got {self.n_classes}")
        if self.class_weight not in ("none", "balanced"):
            raise InputError(
                "--class-weight", f"must be balanced or none, got {self.class_weight!r}"
            )


@dataclass
class SplitOptions:
    """Train / validation / test (default: 80/10/10 at random, drawn with ``split_seed``)."""

    split: str | None = option(
        None, "CSV 'id,split' with train / val / test", metavar="FILE", show_default=False
    )
    train_ratio: float | None = option(None, "default: what val and test leave", show_default=False)
    val_ratio: float = option(0.1, "validation share")
    test_ratio: float = option(0.1, "test share (0 allowed)")
    train_size: int | None = option(None, "number of training crystals", show_default=False)
    val_size: int | None = option(None, "number of validation crystals", show_default=False)
    test_size: int | None = option(None, "number of test crystals", show_default=False)
    split_seed: int | None = option(
        None, "seed of the random split (default: --seed)", show_default=False
    )

    def __post_init__(self) -> None:
        for name in ("val_ratio", "test_ratio"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise InputError(
                    f"--{name.replace('_', '-')}", f"must be in [0, 1), got {getattr(self, name)}"
                )
        if self.train_ratio is not None and not 0.0 < self.train_ratio <= 1.0:
            raise InputError("--train-ratio", f"must be in (0, 1], got {self.train_ratio}")
        for name in ("train_size", "val_size", "test_size"):
            value = getattr(self, name)
            if value is not None and value < (1 if name == "train_size" else 0):
                raise InputError(f"--{name.replace('_', '-')}", f"must be >= 0, got {value}")
        if self.split is not None and not Path(self.split).is_file():
            raise InputError(str(self.split), "no such split file")


@dataclass
class TrainConfig:
    """Optimisation settings (saved in the checkpoint as ``train_config``).

    Defaults were chosen to train well on a few thousand crystals in minutes on a laptop
    CPU (docs/benchmarks.md has the measurements): AdamW with a cosine schedule over 100
    epochs, batch 32, early stopping after 30 epochs without progress and an exponential
    moving average of the weights (decay 0.99) replace the original's 30 epochs of SGD,
    which stop far from convergence (cgcnn issue #28).
    """

    epochs: int = option(100, "maximum epochs")
    batch_size: int = option(32, "crystals per batch", short="-b")
    lr: float = option(3e-3, "learning rate")
    optim: str = option(
        "adamw", "optimizer (adam: the original CGCNN's Adam, L2 weight decay)", choices=OPTIMIZERS
    )
    momentum: float = option(0.9, "SGD momentum")
    weight_decay: float = option(1e-2, "AdamW / Adam / SGD weight decay", aliases=("--wd",))
    scheduler: str = option(
        "cosine", "cosine | multistep (x0.1 at --lr-milestones) | none", choices=SCHEDULERS
    )
    lr_milestones: list[int] = option(
        [100], "epochs where multistep divides the learning rate by 10", metavar="EPOCH"
    )
    loss: str = option(
        "l1",
        "l1: the MAE itself | huber: δ = 1 standard deviation | mse (regression; on "
        "standardised targets)",
        choices=LOSSES,
    )
    patience: int = option(
        30,
        "stop after this many epochs without a better validation MAE (classification: loss); "
        "0: off",
    )
    gradient_clip: float = option(5.0, "gradient norm clip (0: off)")
    seed: int = option(0, "seed of the split, the initial weights and the batches")
    #: classification: the cross-entropy's per-class weights (None: unweighted)
    class_weights: list[float] | None = option(None, "per-class loss weights", cli=False)
    #: decay per step of an exponential moving average of the weights (0: off), kept by
    #: Lightning's ``EMAWeightAveraging``
    ema: float = option(
        0.99,
        "validate, keep and test an exponential moving average of the weights, with this "
        "decay per step (0: off)",
        metavar="DECAY",
    )
    #: training crystals whose batch statistics batch norm uses for evaluation
    #: (:mod:`cgcnn.batch_statistics`)
    bn_statistics: int = option(
        1024,
        "before each validation, recompute batch norm's statistics with the weights being "
        "validated, over this many training crystals (0: torch's running averages)",
        metavar="CRYSTALS",
    )

    def __post_init__(self) -> None:
        self.optim = resolve("optimizer", self.optim, OPTIMIZERS)
        self.scheduler = resolve("scheduler", self.scheduler, SCHEDULERS)
        self.loss = resolve("loss", self.loss, LOSSES)
        if self.epochs < 1 or self.batch_size < 1:
            raise InputError("--epochs/--batch-size", "must be >= 1")
        if not self.lr > 0:
            raise InputError("--lr", f"must be positive, got {self.lr}")
        if not 0 <= self.ema < 1:
            raise InputError("--ema", f"must be in [0, 1) (0: off), got {self.ema}")
        if self.bn_statistics < 0:
            raise InputError("--bn-statistics", f"must be >= 0 (0: off), got {self.bn_statistics}")
        if self.patience < 0 or self.gradient_clip < 0:
            raise InputError("--patience/--gradient-clip", "must be >= 0 (0: off)")
        self.lr_milestones = list(self.lr_milestones)


@dataclass
class RunOptions:
    """Where and how a run computes; none of these change what is learned."""

    resume: str | None = option(
        None,
        "continue from OUT/last.ckpt (a file or an http(s):// address); settings not "
        "given are the checkpoint's",
        metavar="CKPT",
        show_default=False,
    )
    stop_after: int | None = option(
        None,
        "end this run after EPOCHS epochs without changing the plan of --epochs (to fit a time "
        "slot); continue later with --resume OUT/last.ckpt",
        metavar="EPOCHS",
        show_default=False,
    )
    ensemble: int = option(
        1,
        "train K models on the same split (seeds SEED ... SEED+K-1) into OUT/memberK; predict "
        "with their mean and report their spread in an 'uncertainty' column; OUT/ensemble.json "
        "serves cgcnn predict (cgcnn train: 4, or 1 with --resume, which continues one model; "
        "cgcnn.train: 1; 1: a single model in OUT)",
        metavar="K",
        show_default=False,
    )
    jobs: int | None = option(
        None,
        "ensemble members trained at once, each in its own process with cores / J threads "
        "(default: one per core, at most K; CPU only)",
        metavar="J",
        show_default=False,
    )
    uncertainty_from: str | None = option(
        None,
        "scale an ensemble's spread with the uncertainty scale of RUN (its folder or "
        "ensemble.json), a validated ensemble of the same settings on the same data, instead "
        "of this run's validation split: for a final fit with --val-ratio 0, which has none",
        metavar="RUN",
        show_default=False,
    )
    overwrite: bool = option(
        False, "replace a finished run in --out (default: refuse, so that no run is lost)"
    )
    accelerator: str = option("cpu", "cpu | gpu | auto | ... (passed to Lightning)")
    devices: int | str = option(1, "devices per node ('auto': all)")
    strategy: str = option("auto", "auto | ddp | ... (passed to Lightning)")
    num_nodes: int = option(1, "nodes")
    num_workers: int = option(0, "DataLoader workers (0: in the training process)")
    progress: bool = option(
        True,
        "print only the summary: no progress bar, epoch line or message",
        flag="--quiet",
        show_default=False,
    )
    plots: bool = option(True, "write the figures", cli=False)

    def __post_init__(self) -> None:
        if isinstance(self.devices, str) and self.devices.isdigit():
            self.devices = int(self.devices)
        if not isinstance(self.ensemble, int) or self.ensemble < 1:
            raise InputError("--ensemble", f"must be a whole number >= 1, got {self.ensemble!r}")
        if self.jobs is not None:
            from cgcnn.parallel import require_jobs

            require_jobs(self.jobs)
        if self.num_workers < 0:
            raise InputError("--num-workers", f"must be >= 0, got {self.num_workers}")
        if self.num_nodes < 1:
            raise InputError("--num-nodes", f"must be >= 1, got {self.num_nodes}")
        if self.stop_after is not None and self.stop_after < 1:
            raise InputError("--stop-after", f"must be >= 1, got {self.stop_after}")


#: settings a run computes itself (from its training split): no option, no keyword
COMPUTED = frozenset({"class_weights"})

#: section name -> class, in the order of ``config.yaml`` and of ``--help``
SECTIONS: dict[str, type] = {
    "data": DataOptions,
    "graph": GraphSettings,
    "model": ModelOptions,
    "split": SplitOptions,
    "optim": TrainConfig,
    "run": RunOptions,
}
#: section -> title of its group in ``--help``
TITLES = {
    "data": "reading structures",
    "graph": "crystal graph",
    "model": "model",
    "split": "split (default: 80/10/10 at random, drawn with --seed)",
    "optim": "optimisation",
    "run": "run (hardware options are passed to PyTorch Lightning)",
}

#: Named sets of settings.  ``original``: the original CGCNN's (Xie & Grossman 2018).
PRESETS: dict[str, dict[str, Any]] = {
    "original": {
        "conv": "gated",
        "activation": "softplus",
        "atom_fea_len": 64,
        "n_conv": 3,
        "h_fea_len": 128,
        "n_h": 1,
        "pooling": "mean",
        "readout": "pooled",
        "optim": "sgd",
        "lr": 0.01,
        "momentum": 0.9,
        "weight_decay": 0.0,
        "batch_size": 256,
        "epochs": 30,
        "scheduler": "multistep",
        "lr_milestones": [100],
        "loss": "mse",
        "patience": 0,
        "gradient_clip": 0.0,
        "ema": 0.0,
        "bn_statistics": 0,
        "atom_features": "cgcnn92",
        "ensemble": 1,
    }
}


def fields_by_name() -> dict[str, tuple[str, dataclasses.Field]]:
    """Every setting: name -> (section, its dataclass field)."""
    return {name: (section, item) for section, name, item in iter_settings()}


def default_of(item: dataclasses.Field) -> Any:
    if item.default_factory is not dataclasses.MISSING:
        return item.default_factory()
    return item.default


# --------------------------------------------------------------------------- a whole run


@dataclass
class RunSettings:
    """The six sections of one run, and which settings were given rather than defaulted."""

    data: DataOptions = field(default_factory=DataOptions)
    graph: GraphSettings = field(default_factory=GraphSettings)
    model: ModelOptions = field(default_factory=ModelOptions)
    split: SplitOptions = field(default_factory=SplitOptions)
    optim: TrainConfig = field(default_factory=TrainConfig)
    run: RunOptions = field(default_factory=RunOptions)
    given: frozenset[str] = frozenset()

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> RunSettings:
        """Build and check the settings from flat ``name=value`` options (any section).

        Raises:
            InputError: an unknown name, or a value its section refuses.
        """
        known = fields_by_name()
        unknown = sorted(set(options) - set(known))
        if unknown:
            import difflib

            close = difflib.get_close_matches(unknown[0], list(known), n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise InputError(unknown[0], f"is not a setting of cgcnn train{hint}")
        grouped: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
        for name, value in options.items():
            section, item = known[name]
            if value is None and not is_optional(item):
                continue  # None where a value is required: not given, the default holds
            grouped[section][name] = value
        sections = {name: SECTIONS[name](**values) for name, values in grouped.items()}
        return cls(**sections, given=frozenset(options))

    def flat(self) -> dict[str, Any]:
        """Every setting by name (defaults included)."""
        values: dict[str, Any] = {}
        for section in SECTIONS:
            values.update(dataclasses.asdict(getattr(self, section)))
        return values

    def write(self, path: str | os.PathLike, data: Any = None) -> None:
        """Write every setting, defaults included, by section, to a YAML file (atomically)."""
        import yaml

        from cgcnn.files import write_text

        document: dict[str, Any] = {}
        if isinstance(data, str | os.PathLike):  # DATA, when it is a path or a dataset's name
            document["source"] = str(Path(data).resolve()) if Path(data).exists() else str(data)
        for section in SECTIONS:
            values = dataclasses.asdict(getattr(self, section))
            document[section] = {k: _plain(v) for k, v in values.items() if _is_setting(k)}
        header = (
            "# every setting of this run, defaults included; repeat it with\n"
            "#   cgcnn train --config THIS_FILE [--out OTHER] [options that override it]\n"
        )
        write_text(path, header + yaml.safe_dump(document, sort_keys=False))


def _is_setting(name: str) -> bool:
    return name not in COMPUTED


def _plain(value: Any) -> Any:
    """A value YAML can hold: paths as text, an atom-feature table by its source."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(getattr(value, "source", value))


def read_config(path: str | os.PathLike) -> tuple[Any, dict[str, Any]]:
    """``(DATA, settings)`` from a ``config.yaml`` (as :meth:`RunSettings.write` writes it):
    ``source`` is DATA (or absent), the sections hold the settings.

    Raises:
        InputError: a missing or unreadable file, or a key that is not a setting.
    """
    import yaml

    source = Path(path)
    if not source.is_file():
        raise InputError(str(source), "no such config file")
    try:
        document = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InputError(str(source), f"is not a YAML file ({type(exc).__name__})") from None
    if not isinstance(document, dict):
        raise InputError(str(source), "is not a config file (expected sections data, graph, ...)")
    data = document.pop("source", None)
    settings: dict[str, Any] = {}
    known = fields_by_name()
    for section, values in document.items():
        if section not in SECTIONS or not isinstance(values, dict):
            raise InputError(
                str(source), f"has an unknown section {section!r} (known: {', '.join(SECTIONS)})"
            )
        for name, value in values.items():
            if name not in known or known[name][0] != section:
                raise InputError(str(source), f"{section}.{name} is not a setting")
            settings[name] = value
    return data, settings


# --------------------------------------------------------------------------- command line


class _Given(argparse.Action):
    """Stores the value and notes that the option was given (``namespace.given``)."""

    def __init__(self, *args: Any, constant: Any = None, **kwargs: Any) -> None:
        self.constant = constant
        super().__init__(*args, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        setattr(namespace, self.dest, self.constant if self.nargs == 0 else values)
        given = set(getattr(namespace, "given", set()))
        given.add(self.dest)
        namespace.given = given


def add_options(
    parser: argparse.ArgumentParser,
    sections: tuple[str, ...],
    *,
    leave_out: frozenset[str] = frozenset(),
    help_overrides: Mapping[str, str] | None = None,
) -> None:
    """Add the options of ``sections`` to ``parser``, one argument group per section.

    Every option stores its value under the setting's name and records in
    ``namespace.given`` that it was given; the namespace starts with every default.
    """
    parser.set_defaults(given=set())
    overrides = dict(help_overrides or {})
    for section in sections:
        group = parser.add_argument_group(TITLES[section])
        for item in dataclasses.fields(SECTIONS[section]):
            meta = item.metadata
            if not meta["cli"] or item.name in leave_out:
                continue
            default = default_of(item)
            kind = setting_kind(item)
            if kind == "str" and default is not None:
                default = str(default)  # as the command line would give it
            text = overrides.get(item.name, meta["help"])
            if meta["show_default"] and item.name not in overrides:
                text += f" (default {_shown(default)})"
            # the canonical name last: callers take option_strings[-1] as the option's name
            flags = [meta.get("flag") or "--" + item.name.replace("_", "-")]
            if meta.get("short"):
                flags.insert(0, meta["short"])
            aliases = meta.get("aliases", ())
            if aliases:
                text += f" (also {', '.join(aliases)})"
            kwargs: dict[str, Any] = {"dest": item.name, "default": default, "help": text}
            if kind == "bool":
                kwargs.update(nargs=0, constant=not default)
            else:
                if kind == "int_list":
                    kwargs.update(nargs="+", type=int)
                elif kind in ("int", "float"):
                    kwargs["type"] = int if kind == "int" else float
                if meta.get("choices"):
                    kwargs["choices"] = meta["choices"]
                    kwargs["type"] = _lower
                if meta.get("metavar"):
                    kwargs["metavar"] = meta["metavar"]
            for alias in aliases:  # accepted, not listed: the usage line shows our name
                group.add_argument(alias, action=_Given, **{**kwargs, "help": argparse.SUPPRESS})
            group.add_argument(*flags, action=_Given, **kwargs)


def is_optional(item: dataclasses.Field) -> bool:
    """Whether the setting accepts ``None``."""
    return type(None) in typing.get_args(_annotation(item))


def _lower(text: str) -> str:
    return text.strip().lower()


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(map(str, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def setting_kind(item: dataclasses.Field) -> str:
    """``bool``, ``int``, ``float``, ``int_list`` or ``str`` from a field's annotation."""
    hint = _annotation(item)
    args = typing.get_args(hint)
    members = [a for a in args if a is not type(None)] if args else [hint]
    if typing.get_origin(hint) is list or any(typing.get_origin(m) is list for m in members):
        return "int_list"
    if bool in members:
        return "bool"
    if int in members and float not in members and str not in members:
        return "int"
    if float in members and str not in members:
        return "float"
    return "str"


def _annotation(item: dataclasses.Field) -> Any:
    """The type annotation of a setting's field (evaluated)."""
    section, _ = fields_by_name()[item.name]
    return typing.get_type_hints(SECTIONS[section])[item.name]


def given_options(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given on the command line, by name."""
    known = fields_by_name()
    return {name: getattr(args, name) for name in getattr(args, "given", set()) if name in known}


# --------------------------------------------------------------------------- Python API


def train_signature(leading: list[inspect.Parameter]) -> inspect.Signature:
    """:func:`cgcnn.train`'s signature: ``leading`` parameters, then every setting as a
    keyword with its default (``resume`` ... in their sections' order)."""
    parameters = list(leading)
    for section, name, item in iter_settings():
        if name in COMPUTED:
            continue
        hint = typing.get_type_hints(SECTIONS[section])[name]
        parameters.append(
            inspect.Parameter(
                item.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=default_of(item),
                annotation=hint,
            )
        )
    return inspect.Signature(parameters)


def iter_settings() -> Iterator[tuple[str, str, dataclasses.Field]]:
    """(section, name, field) of every setting, in order."""
    for section, cls in SECTIONS.items():
        for item in dataclasses.fields(cls):
            yield section, item.name, item
