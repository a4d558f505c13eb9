"""The ``cgcnn`` command line.

This module stays light: it imports only the standard library at start-up, so that
``cgcnn --help`` answers at once; each command imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Sequence

EXIT_BAD_INPUT = 2
#: an operating-system error (disk full, permission denied, out of memory, ...)
EXIT_SYSTEM = 1
#: stdout closed by its reader: 128 + SIGPIPE, as a shell reports it
EXIT_BROKEN_PIPE = 141

#: Named sets of `cgcnn train` settings (argparse destinations -> values).
PRESETS: dict[str, dict[str, object]] = {
    "original": {
        "conv": "gated",
        "activation": "softplus",
        "atom_fea_len": 64,
        "n_conv": 3,
        "h_fea_len": 128,
        "n_h": 1,
        "pooling": "mean",
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
        "atom_features": "cgcnn92",
        "ensemble": 1,
    }
}

_DATA_HELP = """\
DATA is any of: a folder in the original CGCNN layout (id_prop.csv + ID.cif files, or just
structure files); a CSV file with a CIF string per row; a JSON / JSON-lines file of pymatgen
Structure dicts (Matbench style); a CIF, POSCAR/CONTCAR/*.vasp or extended-XYZ file."""


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("reading structures")
    group.add_argument(
        "--target",
        metavar="NAME[,NAME...]",
        help="target column(s): names for CSV/JSON, 1-based column numbers of id_prop.csv "
        "for a CGCNN folder (default: a folder's every target column; none for CSV/JSON)",
    )
    group.add_argument(
        "--id-column", metavar="NAME", help="CSV/JSON id column (default: material_id, else id)"
    )
    group.add_argument(
        "--root",
        metavar="DIR",
        help="where registered datasets live (DATA may name one, e.g. perovskite-energy; "
        "default: $CGCNN_DATASETS_ROOT, else ~/.cache/cgcnn/datasets)",
    )
    group.add_argument(
        "--structure-column",
        metavar="NAME",
        help="CSV/JSON structure column (default: cif for CSV, structure for JSON)",
    )


def _add_graph_options(
    parser: argparse.ArgumentParser, skipped_default: str | None = "./cgcnn-skipped.csv"
) -> None:
    """The graph options; ``--skipped`` with ``skipped_default`` said in its help (None:
    no ``--skipped``, as in ``cgcnn compare``, whose runs each list theirs in their folder)."""
    group = parser.add_argument_group("crystal graph")
    group.add_argument(
        "--radius", type=float, default=8.0, metavar="R", help="neighbour cutoff in Å (default 8)"
    )
    group.add_argument(
        "--max-neighbors",
        type=int,
        default=12,
        metavar="M",
        help="nearest neighbours kept per atom (default 12)",
    )
    group.add_argument(
        "--grow-radius",
        action="store_true",
        help="widen the cutoff per structure until every atom has M neighbours "
        "(default: atoms with fewer get fewer edges; no fake padding)",
    )
    group.add_argument(
        "--min-distance",
        type=float,
        default=0.5,
        metavar="D",
        help="reject structures with two atoms closer than D Å (default 0.5)",
    )
    group.add_argument(
        "--cache",
        metavar="DIR",
        help="graph cache folder (default: $CGCNN_CACHE_DIR, else ~/.cache/cgcnn)",
    )
    group.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="featurization processes (default: all cores; 0: none, in this process)",
    )
    group.add_argument(
        "--skip-invalid",
        action="store_true",
        help="leave bad structures out (listed in --skipped) instead of stopping",
    )
    if skipped_default is not None:
        _add_skipped_option(group, skipped_default)


def _add_skipped_option(group, default: str) -> None:
    group.add_argument(
        "--skipped",
        metavar="FILE",
        help="where --skip-invalid lists the skipped structures with their line or file and "
        f"reason (default {default}; written only when something is skipped)",
    )


def build_parser() -> argparse.ArgumentParser:
    from cgcnn import __version__

    parser = argparse.ArgumentParser(
        prog="cgcnn",
        description="Crystal Graph Convolutional Neural Networks (Xie & Grossman, PRL 2018): "
        "turn crystals into graphs, train and predict.",
        epilog="Run 'cgcnn COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"cgcnn {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    feat = commands.add_parser(
        "featurize",
        help="build and cache the crystal graphs of structure files",
        description="Build the crystal graph of every structure (neighbours within a cutoff "
        "across periodic images, the nearest M kept) and store it in the on-disk cache, so "
        "that training and prediction reuse it. Prints how many graphs were featurized, "
        "reused and skipped.",
        epilog=_DATA_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    feat.add_argument("data", nargs="*", metavar="DATA", help="structures to featurize")
    feat.add_argument(
        "--example",
        action="store_true",
        help="featurize built-in example crystals (NaCl, SrTiO3, Si, ...; made in code) "
        "and show their graphs",
    )
    feat.add_argument(
        "--show", action="store_true", help="print a line per crystal: atoms, edges, distances"
    )
    _add_data_options(feat)
    _add_graph_options(feat)
    feat.set_defaults(func=cmd_featurize)
    _add_train_parser(commands)
    _add_compare_parser(commands)
    _add_predict_parser(commands)
    _add_demo_parser(commands)
    _add_datasets_parser(commands)
    return parser


def _add_demo_parser(commands) -> None:
    demo = commands.add_parser(
        "demo",
        help="run the whole pipeline on a built-in dataset (offline, a few minutes)",
        description="Build the embedded demo dataset (synthetic ionic crystals whose target is "
        "their Ewald electrostatic energy per atom, computed with pymatgen; a physical model, "
        "not DFT), featurize, train, evaluate and predict, and write metrics.json, "
        "test_results.csv, predictions.csv, learning_curve.png and parity.png to --out. "
        "--dataset NAME runs the same pipeline on a registered real dataset.",
    )
    demo.add_argument("--out", default="cgcnn-demo", metavar="DIR", help="default ./cgcnn-demo")
    demo.add_argument("--dataset", metavar="NAME", help="a registered dataset instead")
    demo.add_argument("--root", metavar="DIR", help="where registered datasets live")
    demo.add_argument("--epochs", type=int, help="maximum epochs (default 60)")
    demo.set_defaults(func=cmd_demo)


def _add_datasets_parser(commands) -> None:
    ds = commands.add_parser(
        "datasets",
        help="list or download the registered real datasets",
        description="Registered public datasets: 'cgcnn datasets list' shows them, 'cgcnn "
        "datasets fetch NAME' downloads, verifies (SHA-256) and unpacks one. "
        "CGCNN_DATASETS_MIRROR=DIR reads the files from DIR instead of the network.",
    )
    actions = ds.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="show every dataset and whether it is present")
    listing.add_argument("--root", metavar="DIR", help="where datasets live")
    listing.set_defaults(func=cmd_datasets_list)
    fetch = actions.add_parser("fetch", help="download, verify and unpack a dataset")
    fetch.add_argument("name", metavar="NAME")
    fetch.add_argument("--root", metavar="DIR", help="where datasets live")
    fetch.set_defaults(func=cmd_datasets_fetch)


def cmd_demo(args: argparse.Namespace) -> int:
    from cgcnn.demo import run_demo, summary

    metrics = run_demo(args.out, dataset=args.dataset, root=args.root, epochs=args.epochs)
    print(summary(metrics, args.out))
    return 0


def cmd_datasets_list(args: argparse.Namespace) -> int:
    from cgcnn.datasets import format_table, list_datasets

    print(format_table(list_datasets(args.root)))
    return 0


def cmd_datasets_fetch(args: argparse.Namespace) -> int:
    from cgcnn.datasets import fetch

    path = fetch(args.name, args.root)
    print(f"{args.name}: ready in {path}")
    return 0


def _data(arg: str, root: str | None) -> str:
    """DATA as given, or the local path of a registered dataset name (fetched if needed)."""
    from pathlib import Path

    if Path(arg).exists():
        return arg
    from cgcnn.datasets import resolve_data

    return str(resolve_data(arg, root))


def _add_train_parser(commands) -> None:
    train = commands.add_parser(
        "train",
        help="train a CGCNN and evaluate it on a held-out test split",
        description="Featurize DATA (through the cache), split it, train a CGCNN with early "
        "stopping, evaluate the best checkpoint on the test split, and write metrics.json, "
        "test_results.csv, metrics.csv (per epoch), learning_curve.png and parity.png (or "
        "roc.png and confusion.png) plus best.ckpt and last.ckpt to --out.",
        epilog=_DATA_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument("data", metavar="DATA", help="structures with targets")
    train.add_argument(
        "--out", default="cgcnn-run", metavar="DIR", help="output folder (default cgcnn-run)"
    )
    train.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a finished run in --out (default: refuse, so that no run is lost)",
    )
    _add_train_options(train)
    train.set_defaults(func=cmd_train, parser=train)


def _add_train_options(train: argparse.ArgumentParser, *, compare: bool = False) -> None:
    """Every ``cgcnn train`` option (not DATA and --out); ``compare`` leaves out the
    per-run ones (--seed, --resume, --stop-after), which ``cgcnn compare`` sets itself."""
    train.add_argument(
        "--task",
        choices=("regression", "classification"),
        default="regression",
        help="regression (default) or classification (labels 0, 1, ... in the target column)",
    )
    train.add_argument(
        "--extensive",
        action="store_true",
        help="the target scales with the number of atoms (e.g. total energy per cell): predict "
        "a contribution per atom and sum them, on top of per-element references",
    )
    train.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        help="start from a named set of settings; options given explicitly still win. "
        "original: the original CGCNN's (gated conv, softplus, 64/3/128/1, mean pooling, SGD "
        "lr 0.01, momentum 0.9, batch 256, 30 epochs, milestone 100, MSE, no early "
        "stopping, no weight average, the 92 atom features, one model)",
    )
    train.add_argument(
        "--atom-features",
        default="cgcnn92+onehot",
        metavar="FILE|NAME",
        help="atom feature table: cgcnn92 (generated), onehot, an atom_init.json, or several "
        "joined by '+' (default cgcnn92+onehot: the 92 CGCNN features and the element's "
        "identity)",
    )
    _add_data_options(train)
    _add_graph_options(train, skipped_default=None if compare else "OUT/skipped.csv")

    model = train.add_argument_group("model")
    model.add_argument(
        "--conv",
        default="edgegated",
        help="edgegated (default: gated messages, and bond states that every layer "
        "updates) | gated (the paper's eq. 4) | shared (eq. 3) | none",
    )
    model.add_argument("--pooling", default="mean", help="mean (default) | max | sum | attention")
    model.add_argument(
        "--activation",
        default="silu",
        help="silu (default) | softplus (the paper's) | relu | sigmoid | tanh",
    )
    model.add_argument("--no-batchnorm", action="store_true", help="leave out the batch norms")
    model.add_argument(
        "--atom-fea-len", type=int, default=64, help="atom feature width (default 64)"
    )
    model.add_argument(
        "--h-fea-len", type=int, default=128, help="hidden width after pooling (default 128)"
    )
    model.add_argument("--n-conv", type=int, default=3, help="convolutions (default 3)")
    model.add_argument("--n-h", type=int, default=1, help="hidden layers after pooling (default 1)")
    model.add_argument(
        "--dropout", type=float, help="dropout after the first hidden layer (default 0)"
    )
    model.add_argument("--n-classes", type=int, help="classes (default: largest label + 1)")
    model.add_argument(
        "--class-weight",
        choices=("none", "balanced"),
        default="none",
        help="classification: none (default), or balanced: weigh each class by n / (classes x "
        "its count) in the loss, so that a rare class counts as much as a common one",
    )
    model.add_argument(
        "--init",
        metavar="CKPT",
        help="fine-tune: start from the weights of a trained model, a best.ckpt of cgcnn train "
        "or an original CGCNN .pth.tar (then give its atom_init.json as --atom-features). Its "
        "architecture, atom features and graph settings are kept (options left at their "
        "defaults take its values); the targets are scaled anew, and the output layer starts "
        "afresh when the task changes",
    )

    split = train.add_argument_group("split (default: 80/10/10 at random, drawn with --seed)")
    split.add_argument("--split", metavar="FILE", help="CSV 'id,split' with train / val / test")
    split.add_argument("--train-ratio", type=float, help="default: what val and test leave")
    split.add_argument("--val-ratio", type=float, default=0.1, help="default 0.1")
    split.add_argument("--test-ratio", type=float, default=0.1, help="default 0.1 (0 allowed)")
    split.add_argument("--train-size", type=int, help="number of training crystals")
    split.add_argument("--val-size", type=int, help="number of validation crystals")
    split.add_argument("--test-size", type=int, help="number of test crystals")

    opt = train.add_argument_group("optimisation")
    opt.add_argument("--epochs", type=int, default=100, help="maximum epochs (default 100)")
    opt.add_argument("-b", "--batch-size", type=int, default=32, help="default 32")
    opt.add_argument("--lr", type=float, default=3e-3, help="learning rate (default 3e-3)")
    opt.add_argument("--optim", default="adamw", help="adamw (default) | sgd")
    opt.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default 0.9)")
    opt.add_argument(
        "--weight-decay", type=float, default=1e-2, help="AdamW / SGD weight decay (default 1e-2)"
    )
    opt.add_argument(
        "--scheduler",
        default="cosine",
        help="cosine (default) | multistep (x0.1 at --lr-milestones) | none",
    )
    opt.add_argument(
        "--lr-milestones",
        type=int,
        nargs="+",
        default=[100],
        metavar="EPOCH",
        help="epochs where multistep divides the learning rate by 10 (default 100)",
    )
    opt.add_argument(
        "--loss",
        default="l1",
        help="l1 (default: the MAE itself) | huber (δ = 1 standard deviation) | mse "
        "(regression; on standardised targets)",
    )
    opt.add_argument(
        "--patience",
        type=int,
        default=30,
        help="stop after this many epochs without a better validation MAE (classification: "
        "loss) (default 30; 0: off)",
    )
    opt.add_argument(
        "--gradient-clip", type=float, default=5.0, help="gradient norm clip (default 5; 0: off)"
    )
    opt.add_argument(
        "--ema",
        type=float,
        default=0.99,
        metavar="DECAY",
        help="validate, keep and test an exponential moving average of the weights, with this "
        "decay per step (default 0.99; 0: off)",
    )
    if not compare:
        opt.add_argument(
            "--seed",
            type=int,
            default=0,
            help="seed of the split, the initial weights and the batches",
        )
        opt.add_argument("--resume", metavar="CKPT", help="continue from OUT/last.ckpt")
        opt.add_argument(
            "--ensemble",
            type=int,
            metavar="K",
            help="train K models on the same split (seeds SEED ... SEED+K-1) into OUT/memberK; "
            "predict with their mean and report their spread in an 'uncertainty' column; "
            "OUT/ensemble.json serves cgcnn predict (default 4, or 1 with --resume, which "
            "continues one model; 1: a single model in OUT)",
        )
        opt.add_argument(
            "--jobs",
            type=int,
            metavar="J",
            help="ensemble members trained at once, each in its own process with "
            "cores / J threads (default: one per core, at most K; CPU only)",
        )
        opt.add_argument(
            "--stop-after",
            type=int,
            metavar="EPOCHS",
            help="end this run after EPOCHS epochs without changing the plan of --epochs (to "
            "fit a time slot); continue later with --resume OUT/last.ckpt",
        )

    hw = train.add_argument_group("hardware (passed to PyTorch Lightning)")
    hw.add_argument("--accelerator", default="cpu", help="cpu (default) | gpu | auto | ...")
    hw.add_argument("--devices", default="1", help="devices per node (default 1; 'auto')")
    hw.add_argument("--strategy", default="auto", help="auto (default) | ddp | ...")
    hw.add_argument("--num-nodes", type=int, default=1, help="nodes (default 1)")
    hw.add_argument("--num-workers", type=int, default=0, help="DataLoader workers (default 0)")


_COMPARE_EPILOG = (
    """\
GRID: KEY=V1,V2,... names a train option (dashes or underscores: conv, pooling,
activation, batchnorm=on,off, max_neighbors, radius, n_conv, atom_fea_len, lr, epochs, ...)
and the values to try; several --grid items (or KEY=... words after one --grid) make a
product. Options not in the grid apply to every run. Put DATA before --grid.

Seeds: configuration x seed k (k = 0 .. N-1) is one run. The seed sets the initial weights
and the batch order; without --split it also draws the random split, the same split for
every configuration with that seed (so the paired test compares them on the same crystals).

Example:
  cgcnn compare perovskite-energy --split split.csv --extensive \\
      --grid conv=gated,shared,none --seeds 3 --epochs 40 --out cmp-conv

"""
    + _DATA_HELP
)


def _add_compare_parser(commands) -> None:
    import textwrap

    cmp = commands.add_parser(
        "compare",
        help="train a grid of settings over several seeds and compare them with statistics",
        description=textwrap.fill(
            "Train every combination of the --grid values with --seeds seeds (one 'cgcnn "
            "train' run each, in OUT/runs/<configuration>/seed<k>/), then write results.csv "
            "(a row per run), summary.csv (per configuration: mean, std, 95 % confidence "
            "interval, rank, paired t-test against the best), comparison.png, "
            "learning_curves.png and report.md to --out. The grid is checked before anything "
            "runs; each graph setting is featurized once; finished runs are never redone, so "
            "an interrupted comparison continues where it stopped when run again.",
            width=88,
        ),
        epilog=_COMPARE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cmp.add_argument("data", metavar="DATA", help="structures with targets")
    cmp.add_argument(
        "--grid",
        nargs="+",
        action="extend",
        default=[],
        metavar="KEY=V1,V2",
        help="an option and the values to try (repeatable)",
    )
    cmp.add_argument(
        "--seeds", type=int, default=3, metavar="N", help="seeds per configuration (default 3)"
    )
    cmp.add_argument(
        "--out",
        default="cgcnn-compare",
        metavar="DIR",
        help="output folder (default cgcnn-compare)",
    )
    cmp.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="J",
        help="runs at once, in separate processes, each with cores/J threads (default 1)",
    )
    cmp.add_argument(
        "--metric",
        metavar="NAME",
        help="column to compare (default: test_mae; classification: test_roc_auc, else "
        "test_accuracy)",
    )
    _add_train_options(cmp, compare=True)
    cmp.set_defaults(func=cmd_compare, parser=cmp)


#: train() option -> argparse destination, where they differ
_DESTS = {"batchnorm": "no_batchnorm", "cache_dir": "cache"}


def cmd_compare(args: argparse.Namespace) -> int:
    import shlex

    from cgcnn.comparison import compare, parse_grid
    from cgcnn.errors import InputError

    grid = parse_grid(args.grid)
    kwargs = _train_kwargs(args)
    for key in grid:
        name = key.strip().lstrip("-").replace("-", "_").lower()
        name = {"no_batchnorm": "batchnorm", "cache": "cache_dir"}.get(name, name)
        dest = _DESTS.get(name, name)
        if dest in vars(args) and getattr(args, dest) != args.parser.get_default(dest):
            option = "--" + dest.replace("_", "-")
            raise InputError("--grid", f"{key} is given both in the grid and as {option}")
        kwargs.pop(name, None)
    apply_preset(args, args.parser)
    fixed = {k: v for k, v in _train_kwargs(args).items() if k in kwargs}
    if sys.argv[1:2] == ["compare"]:
        words = sys.argv[1:]
    else:  # called as main([...]): the options that differ from the defaults
        words = ["compare", args.data, "--grid", *args.grid]
        for action in args.parser._actions:
            value = getattr(args, action.dest, None)
            if action.dest in ("data", "grid", "help") or value == action.default:
                continue
            option = action.option_strings[-1]
            if isinstance(value, bool):
                words.append(option)
            else:
                values = value if isinstance(value, list) else [value]
                words += [option, *[str(v) for v in values]]
    command = "cgcnn " + " ".join(shlex.quote(str(a)) for a in words)
    summary = compare(
        _data(args.data, args.root),
        grid,
        seeds=args.seeds,
        out=args.out,
        jobs=args.jobs,
        metric=args.metric,
        command=command,
        **fixed,
    )
    shown = [c for c in summary.columns if c not in ("metric", "config", "n_params")]
    print(f"metric: {summary['metric'].iloc[0]}")
    print(summary[shown].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(
        f"outputs in {args.out}/: results.csv, summary.csv, comparison.png, "
        "learning_curves.png, report.md"
    )
    return 0


def _add_predict_parser(commands) -> None:
    pred = commands.add_parser(
        "predict",
        help="predict with a checkpoint (ours or the original CGCNN's .pth.tar)",
        description="Predict DATA with CHECKPOINT. Targets are optional; when DATA has them, "
        "metrics are printed. The graph settings stored in the checkpoint are used. Original "
        "CGCNN checkpoints (*.pth.tar) are loaded without executing pickled code and use the "
        "original featurization (see docs/original-checkpoints.md).",
        epilog=_DATA_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    pred.add_argument(
        "checkpoint",
        metavar="CHECKPOINT",
        help="best.ckpt of cgcnn train, the ensemble.json of cgcnn train --ensemble K (mean "
        "prediction and an 'uncertainty' column), or an original .pth.tar",
    )
    pred.add_argument("data", metavar="DATA", help="structures to predict")
    pred.add_argument(
        "--out", default="predictions.csv", metavar="FILE", help="default predictions.csv"
    )
    pred.add_argument(
        "--atom-init",
        metavar="FILE",
        help="original checkpoints only: atom_init.json (default: DATA/atom_init.json)",
    )
    _add_data_options(pred)
    pred.add_argument("--cache", metavar="DIR", help="graph cache folder")
    pred.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="featurization processes (default: all cores; 0: none, in this process)",
    )
    pred.add_argument(
        "--skip-invalid",
        action="store_true",
        help="leave bad structures out (listed in --skipped) instead of stopping",
    )
    _add_skipped_option(pred, "OUT's name with .skipped.csv, beside it")
    pred.set_defaults(func=cmd_predict)


def apply_preset(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Fill in the preset's values for every option left at its default."""
    if not getattr(args, "preset", None):
        return
    for name, value in PRESETS[args.preset].items():
        if hasattr(args, name) and getattr(args, name) == parser.get_default(name):
            setattr(args, name, value)


def _train_kwargs(args: argparse.Namespace) -> dict[str, object]:
    """The keyword arguments of :func:`cgcnn.training.train` that the train options give
    (everything but DATA, --out and the per-run --seed / --resume / --stop-after)."""
    devices: int | str = int(args.devices) if str(args.devices).isdigit() else args.devices
    return dict(
        target=args.target,
        task=args.task,
        extensive=args.extensive,
        atom_features=args.atom_features,
        radius=args.radius,
        max_neighbors=args.max_neighbors,
        grow_radius=args.grow_radius,
        min_distance=args.min_distance,
        cache_dir=args.cache,
        workers=args.workers,
        skip_invalid=args.skip_invalid,
        id_column=args.id_column,
        structure_column=args.structure_column,
        atom_fea_len=args.atom_fea_len,
        n_conv=args.n_conv,
        h_fea_len=args.h_fea_len,
        n_h=args.n_h,
        conv=args.conv,
        pooling=args.pooling,
        activation=args.activation,
        batchnorm=not args.no_batchnorm,
        dropout=args.dropout,
        n_classes=args.n_classes,
        class_weight=args.class_weight,
        split=args.split,
        train_ratio=args.train_ratio,
        val_ratio=args.val_ratio,
        test_ratio=args.test_ratio,
        train_size=args.train_size,
        val_size=args.val_size,
        test_size=args.test_size,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        optim=args.optim,
        momentum=args.momentum,
        weight_decay=args.weight_decay,
        scheduler=args.scheduler,
        lr_milestones=args.lr_milestones,
        loss=args.loss,
        patience=args.patience,
        gradient_clip=args.gradient_clip,
        ema=args.ema,
        init=args.init,
        accelerator=args.accelerator,
        devices=devices,
        strategy=args.strategy,
        num_nodes=args.num_nodes,
        num_workers=args.num_workers,
    )


#: models ``cgcnn train`` trains when --ensemble is not given (docs/benchmarks.md)
DEFAULT_ENSEMBLE = 4


def _ensemble_size(args: argparse.Namespace) -> int:
    """--ensemble, else 4; a --resume continues one model (OUT/last.ckpt or a member's)."""
    if args.ensemble is not None:
        return args.ensemble
    return 1 if args.resume else DEFAULT_ENSEMBLE


def cmd_train(args: argparse.Namespace) -> int:
    apply_preset(args, args.parser)
    from cgcnn.training import train

    result = train(
        _data(args.data, args.root),
        args.out,
        seed=args.seed,
        resume=args.resume,
        stop_after=args.stop_after,
        overwrite=args.overwrite,
        skipped=args.skipped,
        ensemble=_ensemble_size(args),
        jobs=args.jobs,
        **_train_kwargs(args),
    )
    if result.metrics:
        shown = {
            k: v for k, v in result.metrics.items() if k.startswith("test_") or k.startswith("n_")
        }
        print(", ".join(f"{k} {_fmt(v)}" for k, v in shown.items()))
        seconds = f"training loop: {result.metrics['train_seconds']:.1f} s"
        if "ensemble_seconds" in result.metrics:
            seconds = (
                f"training loops: {result.metrics['train_seconds']:.1f} s in all, "
                f"{result.metrics['ensemble_seconds']:.1f} s of wall time "
                f"({result.metrics['jobs']} at a time)"
            )
        print(f"{seconds}; outputs in {result.out}/")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from cgcnn.prediction import predict

    metrics = predict(
        args.checkpoint,
        _data(args.data, args.root),
        args.out,
        atom_init=args.atom_init,
        target=args.target,
        id_column=args.id_column,
        structure_column=args.structure_column,
        cache_dir=args.cache,
        workers=args.workers,
        skip_invalid=args.skip_invalid,
        skipped=args.skipped,
    )
    if metrics:
        print(", ".join(f"{k} {_fmt(v)}" for k, v in metrics.items()))
    print(f"predictions written to {args.out}")
    return 0


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def cmd_featurize(args: argparse.Namespace) -> int:
    from cgcnn.cache import GraphStore, default_cache_dir
    from cgcnn.errors import InputError
    from cgcnn.featurizer import count_records_hint, featurize_records, resolve_workers
    from cgcnn.graph import GraphSettings
    from cgcnn.io import iter_structures

    if not args.data and not args.example:
        raise InputError("DATA", "give at least one structure source, or --example")
    sources: list = [_data(arg, args.root) for arg in args.data]
    if args.example:
        from cgcnn.examples import example_structures

        sources.append(example_structures())
    settings = GraphSettings(args.radius, args.max_neighbors, args.grow_radius, args.min_distance)
    resolve_workers(args.workers)  # checked before anything is read
    cache_dir = args.cache or default_cache_dir()
    store = GraphStore(cache_dir)
    records = iter_structures(
        sources,
        target=args.target,
        id_column=args.id_column,
        structure_column=args.structure_column,
    )
    hints = [count_records_hint(s) for s in sources]
    report = featurize_records(
        records,
        settings,
        store,
        workers=args.workers,
        skip_invalid=args.skip_invalid,
        total=None if None in hints else sum(hints),
    )
    print(report.summary(settings))
    print(f"cache: {store.path}")
    if report.skipped:
        skipped = args.skipped or "cgcnn-skipped.csv"
        report.write_skipped(skipped)
        print(f"{len(report.skipped)} skipped structure(s) listed with reasons in {skipped}")
    if args.show or args.example:
        _show_graphs(store, report)
    store.close()
    return 0


def _show_graphs(store, report) -> None:
    rows = [("id", "atoms", "edges", "neighbours/atom", "shortest Å", "longest kept Å")]
    for rid, rowid in zip(report.ids, report.rowids, strict=True):
        graph = store.get(rowid)
        rows.append(
            (
                rid,
                str(graph.num_atoms),
                str(graph.num_edges),
                f"{graph.num_edges / graph.num_atoms:.1f}",
                f"{graph.distances.min():.3f}",
                f"{graph.distances.max():.3f}",
            )
        )
    widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _system_error(exc: BaseException) -> str:
    """One line for an operating-system error: the path and what went wrong."""
    if isinstance(exc, MemoryError):
        return "out of memory; use fewer or smaller structures, a smaller --radius or --batch-size"
    what = exc.strerror or type(exc).__name__
    paths = [p for p in (exc.filename, exc.filename2) if p]
    return f"{' -> '.join(map(str, paths))}: {what}" if paths else what


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cgcnn`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    started = time.perf_counter()
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("cgcnn: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`cgcnn featurize DATA --show | head -1`): stop quietly, and
        # keep Python from complaining about the closed stdout at exit
        import os

        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except Exception as exc:
        from cgcnn.errors import InputError

        if args.debug:
            raise
        if isinstance(exc, InputError):
            print(f"cgcnn: error: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
        if isinstance(exc, OSError | MemoryError):
            print(f"cgcnn: error: {_system_error(exc)}", file=sys.stderr)
            return EXIT_SYSTEM
        raise
    finally:
        if args.debug:
            print(f"[{time.perf_counter() - started:.2f} s]", file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
