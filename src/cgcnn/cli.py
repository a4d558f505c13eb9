"""The ``cgcnn`` command line.

This module stays light: it imports only the standard library and :mod:`cgcnn.config`
(itself standard library only) at start-up, so that ``cgcnn --help`` answers at once; each
command imports what it needs when it runs.  The options of ``train``, ``compare``,
``featurize`` and ``predict`` are generated from the settings' fields in
:mod:`cgcnn.config`.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Sequence

from cgcnn.config import PRESETS  # the named sets of settings (light: no torch, no numpy)

EXIT_BAD_INPUT = 2
#: an operating-system error (disk full, permission denied, out of memory, ...)
EXIT_SYSTEM = 1
#: stdout closed by its reader: 128 + SIGPIPE, as a shell reports it
EXIT_BROKEN_PIPE = 141

__all__ = ["PRESETS", "build_parser", "main"]

_DATA_HELP = """\
DATA is any of: a folder in the original CGCNN layout (id_prop.csv + ID.cif files, or just
structure files); a CSV file with a CIF string per row; a JSON / JSON-lines file of pymatgen
Structure dicts (Matbench style); a CIF, POSCAR/CONTCAR/*.vasp or extended-XYZ file."""


#: the settings of the "reading structures" group that featurize and predict offer too
_READING = frozenset(
    {"target", "id_column", "structure_column", "cache_dir", "workers", "skip_invalid", "skipped"}
)


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and epilogs wrapped paragraph by paragraph to the terminal's width,
    except paragraphs whose lines are indented (examples, listings), kept as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        import textwrap

        paragraphs = text.strip("\n").split("\n\n")
        out = []
        for paragraph in paragraphs:
            lines = paragraph.splitlines()
            if any(line.startswith((" ", "\t")) for line in lines[1:]) or (
                lines and lines[0].startswith((" ", "\t"))
            ):
                out.append("\n".join(indent + line for line in lines))
            else:
                out.append(textwrap.fill(" ".join(paragraph.split()), width, initial_indent=indent,
                                         subsequent_indent=indent))  # fmt: skip
        return "\n\n".join(out)


class _Refused(argparse.Action):
    """An option of the original CGCNN whose meaning differs here: one line naming ours."""

    def __init__(self, *args, says: str = "", **kwargs) -> None:
        self.says = says
        super().__init__(*args, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        parser.exit(2, f"cgcnn: error: {option_string}: {self.says}\n")


def _add_original_flags(parser: argparse.ArgumentParser, *, device: str) -> None:
    """The original CGCNN's flags that users type: ``--disable-cuda`` (the same meaning:
    the CPU; stored in ``device``) and ``-j`` (its data-loader workers: refused, naming ours).
    ``--max-num-nbr``, ``--wd`` and ``--optim Adam`` are aliases of the settings
    themselves (:mod:`cgcnn.config`)."""
    from cgcnn.config import _Given

    if device == "accelerator":
        parser.add_argument(
            "--disable-cuda", dest="accelerator", action=_Given, nargs=0, constant="cpu",
            default=argparse.SUPPRESS, help=argparse.SUPPRESS,
        )  # fmt: skip
        says = (
            "the original CGCNN's -j/--workers are data-loader workers; here they are "
            "--num-workers (--workers sets the featurization processes)"
        )
    else:
        parser.add_argument(
            "--disable-cuda", dest="device", action="store_const", const="cpu",
            default=argparse.SUPPRESS, help=argparse.SUPPRESS,
        )  # fmt: skip
        says = (
            "the original CGCNN's -j/--workers are data-loader workers; prediction has none "
            "here (--workers sets the featurization processes)"
        )
    parser.add_argument("-j", action=_Refused, nargs="?", says=says, help=argparse.SUPPRESS)


def _add_quiet_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quiet",
        dest="progress",
        action="store_false",
        help="print only the summary: no progress bar or progress line",
    )


def _add_root_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root",
        metavar="DIR",
        help="where registered datasets live (DATA may name one, e.g. perovskite-energy; "
        "default: $CGCNN_DATASETS_ROOT, else ~/.cache/cgcnn/datasets)",
    )


def _add_reading_options(parser: argparse.ArgumentParser, skipped: str, *, graph: bool) -> None:
    """The reading options of featurize and predict (and the graph's, for featurize), from
    the same fields as train's; ``skipped`` says where --skipped defaults to."""
    from cgcnn.config import add_options, iter_settings

    sections = ("data", "graph") if graph else ("data",)
    leave_out = {
        name for section, name, _ in iter_settings() if section == "data" and name not in _READING
    }
    add_options(
        parser,
        sections,
        leave_out=frozenset(leave_out),
        help_overrides={
            "skipped": "where --skip-invalid lists the skipped structures with their line or "
            f"file and reason (default {skipped}; written only when something is skipped)"
        },
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
        formatter_class=_Formatter,
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
    _add_reading_options(feat, "./cgcnn-skipped.csv", graph=True)
    _add_root_option(feat)
    _add_quiet_option(feat)
    feat.set_defaults(func=cmd_featurize)
    _add_train_parser(commands)
    _add_compare_parser(commands)
    _add_predict_parser(commands)
    _add_explain_parser(commands)
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
    _add_quiet_option(demo)
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
    fetch.add_argument("name", metavar="NAME", help="a registered name (see cgcnn datasets list)")
    fetch.add_argument("--root", metavar="DIR", help="where datasets live")
    fetch.set_defaults(func=cmd_datasets_fetch)


def cmd_demo(args: argparse.Namespace) -> int:
    from cgcnn.demo import run_demo, summary

    metrics = run_demo(
        args.out, dataset=args.dataset, root=args.root, epochs=args.epochs, progress=args.progress
    )
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
        formatter_class=_Formatter,
    )
    train.add_argument(
        "data", metavar="DATA", nargs="?", help="structures with targets (or from --config)"
    )
    train.add_argument(
        "--out", default="cgcnn-run", metavar="DIR", help="output folder (default cgcnn-run)"
    )
    train.add_argument(
        "--config",
        metavar="FILE",
        help="start from the settings of a config.yaml (every run writes OUT/config.yaml; "
        "options given beside it win, and DATA may then be left out)",
    )
    _add_train_options(train)
    train.set_defaults(func=cmd_train, parser=train)


#: run settings that cgcnn compare sets itself, per run
_PER_RUN = frozenset(
    {"seed", "split_seed", "resume", "stop_after", "ensemble", "jobs", "overwrite", "skipped"}
)


def _add_train_options(train: argparse.ArgumentParser, *, compare: bool = False) -> None:
    """Every ``cgcnn train`` setting (not DATA and --out), generated from
    :mod:`cgcnn.config`; ``compare`` leaves out the per-run ones, which ``cgcnn compare``
    sets itself."""
    from cgcnn.config import SECTIONS, add_options

    train.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        help="start from a named set of settings; options given explicitly still win. "
        "original: the original CGCNN's (gated conv, softplus, 64/3/128/1, mean pooling, SGD "
        "lr 0.01, momentum 0.9, batch 256, 30 epochs, milestone 100, MSE, no early "
        "stopping, no weight average, the 92 atom features, one model)",
    )
    _add_root_option(train)
    _add_original_flags(train, device="accelerator")
    add_options(
        train,
        tuple(SECTIONS),
        leave_out=_PER_RUN if compare else frozenset(),
        help_overrides={
            "ensemble": "train K models on the same split (seeds SEED ... SEED+K-1) into "
            "OUT/memberK; predict with their mean and report their spread in an 'uncertainty' "
            "column; OUT/ensemble.json serves cgcnn predict (default 4, or 1 with --resume, "
            "which continues one model; 1: a single model in OUT)",
        },
    )


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
    cmp = commands.add_parser(
        "compare",
        help="train a grid of settings over several seeds and compare them with statistics",
        description=(
            "Train every combination of the --grid values with --seeds seeds (one 'cgcnn "
            "train' run each, in OUT/runs/<configuration>/seed<k>/), then write results.csv "
            "(a row per run), summary.csv (per configuration: mean, std, 95 % confidence "
            "interval, rank, paired t-test against the best), comparison.png, "
            "learning_curves.png and report.md to --out. The grid is checked before anything "
            "runs; each graph setting is featurized once; finished runs are never redone, so "
            "an interrupted comparison continues where it stopped when run again."
        ),
        epilog=_COMPARE_EPILOG,
        formatter_class=_Formatter,
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


def cmd_compare(args: argparse.Namespace) -> int:
    import shlex

    from cgcnn.comparison import compare, parse_grid
    from cgcnn.config import RunSettings, fields_by_name, given_options
    from cgcnn.errors import InputError

    grid = parse_grid(args.grid)
    explicit = set(getattr(args, "given", set()))
    axes = set()
    for key in grid:
        name = key.strip().lstrip("-").replace("-", "_").lower()
        name = {"no_batchnorm": "batchnorm", "cache": "cache_dir"}.get(name, name)
        if name in explicit:
            option = next(a.option_strings[-1] for a in args.parser._actions if a.dest == name)
            raise InputError("--grid", f"{key} is given both in the grid and as {option}")
        axes.add(name)
    apply_preset(args, args.parser)
    # every setting the command offers, defaults included, but the grid's axes
    offered = {a.dest for a in args.parser._actions} & set(fields_by_name()) - _PER_RUN
    flat = RunSettings.from_options(given_options(args)).flat()
    fixed = {name: flat[name] for name in sorted(offered - axes)}
    verbose = fixed.pop("progress", True)  # --quiet: the runs are silent anyway
    if sys.argv[1:2] == ["compare"]:
        words = sys.argv[1:]
    else:  # called as main([...]): the options given
        words = ["compare", args.data, "--grid", *args.grid]
        for action in args.parser._actions:
            value = getattr(args, action.dest, None)
            if action.dest in ("data", "grid", "help") or (
                action.dest not in explicit and value == action.default
            ):
                continue
            option = action.option_strings[-1]
            if action.nargs == 0 or isinstance(value, bool):
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
        verbose=verbose,
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
        formatter_class=_Formatter,
    )
    pred.add_argument(
        "checkpoint",
        metavar="CHECKPOINT",
        help="a run folder of cgcnn train (its ensemble.json, else best.ckpt), a best.ckpt, "
        "an ensemble.json (mean prediction and an 'uncertainty' column), or an original "
        ".pth.tar",
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
    pred.add_argument(
        "--device",
        metavar="DEV",
        help="where the models run: cpu (default), cuda, cuda:1, ...",
    )
    pred.add_argument(
        "--embeddings",
        metavar="FILE",
        help="also write each crystal's vector (the pooled atom features the head reads): "
        ".npz (ids and an (n, F) array), .csv or .parquet (with pyarrow)",
    )
    pred.add_argument(
        "--contributions",
        metavar="FILE",
        help="also write each site's contribution to the prediction (CSV: id, site, element, "
        "fractional a b c, one column per target); for models whose prediction pools one "
        "value per site (--readout site, --extensive)",
    )
    _add_reading_options(pred, "OUT's name with .skipped.csv, beside it", graph=False)
    _add_root_option(pred)
    _add_quiet_option(pred)
    _add_original_flags(pred, device="device")
    pred.set_defaults(func=cmd_predict)


_EXPLAIN_EPILOG = (
    """\
Files written to --out:
  contributions.csv          one row per site: id, site, element, role, fractional a b c,
                             its contribution to each target (the prediction is their mean
                             for --readout site, their sum for --extensive)
  element_contributions.csv  mean, standard deviation and count of the contributions per
                             role and element
  periodic_table_ROLE.png    one per role found (A, B, X, site): each element's mean
                             contribution in that role on the periodic table, coloured about
                             the mean over all sites; absent elements grey; n = sites
  crystal_ID.png             one crystal (--crystal, default the first) in 3-D, positions in
                             Å, each site coloured by its contribution and labelled
  embedding_map.png          the crystal vectors on their first two principal components,
                             coloured by the target (by the prediction when DATA has none),
                             --test-ids crystals marked with triangles; per atom for an
                             --extensive model (its vectors are sums over the atoms)

Roles come from each structure: anions are its non-metallic elements; in an ABX3 crystal,
a cation with an octahedron of six anions is a B site, one with at least eight anions in the
larger cage around it is an A site; any other crystal's sites have the role 'site'.
Models that pool the atoms before their head (--readout pooled) have no contributions: only
the embedding map is drawn, and one line says why.

"""
    + _DATA_HELP
)


def _add_explain_parser(commands) -> None:
    exp = commands.add_parser(
        "explain",
        help="which atoms make the predictions: contributions by element and role, figures",
        description=(
            "Explain CHECKPOINT's predictions on DATA: per-site contributions (models trained "
            "with --readout site or --extensive), their mean per element and crystallographic "
            "role (A site, B site, anion, found from the structure), periodic-table and "
            "crystal figures, and a map of the crystal embeddings."
        ),
        epilog=_EXPLAIN_EPILOG,
        formatter_class=_Formatter,
    )
    exp.add_argument(
        "checkpoint",
        metavar="CHECKPOINT",
        help="best.ckpt of cgcnn train, or the ensemble.json of cgcnn train --ensemble K",
    )
    exp.add_argument("data", metavar="DATA", help="structures to explain (targets optional)")
    exp.add_argument(
        "--out",
        default="cgcnn-explain",
        metavar="DIR",
        help="output folder (default cgcnn-explain)",
    )
    exp.add_argument(
        "--target",
        metavar="NAME",
        help="which of the model's targets to explain (default its first); DATA's column of "
        "that name colours the embedding map",
    )
    exp.add_argument(
        "--unit",
        metavar="UNIT",
        help="the target's unit for the labels, e.g. eV/cell (default: the unit the checkpoint "
        "records, from cgcnn train --unit or a registered dataset, if any)",
    )
    exp.add_argument(
        "--crystal", metavar="ID", help="the crystal drawn in crystal_ID.png (default the first)"
    )
    exp.add_argument(
        "--test-ids",
        metavar="FILE",
        help="a CSV with an 'id' column (a run's test_results.csv): these crystals are marked "
        "on the embedding map",
    )
    exp.add_argument(
        "--atom-init", metavar="FILE", help="original checkpoints only: atom_init.json"
    )
    exp.add_argument(
        "--device", metavar="DEV", help="where the model runs: cpu (default), cuda, cuda:1, ..."
    )
    exp.add_argument(
        "--id-column", metavar="NAME", help="CSV/JSON id column (default: material_id, else id)"
    )
    exp.add_argument(
        "--structure-column",
        metavar="NAME",
        help="CSV/JSON structure column (default: cif for CSV, structure for JSON)",
    )
    _add_root_option(exp)
    exp.set_defaults(func=cmd_explain)


def cmd_explain(args: argparse.Namespace) -> int:
    from cgcnn.explain import explain, summary_lines

    summary = explain(
        args.checkpoint,
        _data(args.data, args.root),
        args.out,
        atom_init=args.atom_init,
        target=args.target,
        test_ids=args.test_ids,
        device=args.device,
        id_column=args.id_column,
        structure_column=args.structure_column,
        unit=args.unit,
        crystal=args.crystal,
    )
    for line in summary_lines(summary, args.out):
        print(line)
    return 0


def apply_preset(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Fill in the preset's values for every setting not given explicitly; they then count
    as given (they are passed on, and a checkpoint of ``--init`` must agree with them)."""
    if not getattr(args, "preset", None):
        return
    given = set(getattr(args, "given", set()))
    for name, value in PRESETS[args.preset].items():
        if hasattr(args, name) and name not in given:
            setattr(args, name, value)
            given.add(name)
    args.given = given


def _settings(args: argparse.Namespace) -> tuple[str | None, dict[str, object]]:
    """(DATA, the settings to pass on): a --config file's, then the preset's, then the
    options given on the command line, each winning over the one before."""
    from cgcnn.config import given_options, read_config

    data, options = (None, {})
    if getattr(args, "config", None):
        data, options = read_config(args.config)
    explicit = given_options(args)
    apply_preset(args, args.parser)
    preset = {k: v for k, v in given_options(args).items() if k not in explicit}
    options = {**options, **preset, **explicit}
    if args.data is not None:
        data = args.data
    if data is None:
        from cgcnn.errors import InputError

        raise InputError("DATA", "give the structures to train on (or a --config naming them)")
    return _data(str(data), args.root), options


#: models ``cgcnn train`` trains when --ensemble is not given (docs/benchmarks.md)
DEFAULT_ENSEMBLE = 4


def _ensemble_size(args: argparse.Namespace) -> int:
    """--ensemble (or a preset's), else 4; a --resume continues one model (OUT/last.ckpt or a
    member's)."""
    if "ensemble" in getattr(args, "given", ()):
        return args.ensemble
    return 1 if args.resume else DEFAULT_ENSEMBLE


def cmd_train(args: argparse.Namespace) -> int:
    data, options = _settings(args)
    options.setdefault("ensemble", _ensemble_size(args))
    from cgcnn.training import train

    result = train(data, args.out, **options)
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
    from cgcnn.run_folder import resolve_run_folder

    args.checkpoint = str(resolve_run_folder(args.checkpoint))  # before torch is imported
    from cgcnn.prediction import predict

    data = _data(args.data, args.root)
    if args.embeddings and args.embeddings.endswith(".parquet"):
        _require_parquet(args.embeddings)  # before the predictions, not after
    metrics = predict(
        args.checkpoint,
        data,
        args.out,
        atom_init=args.atom_init,
        target=args.target,
        id_column=args.id_column,
        structure_column=args.structure_column,
        cache_dir=args.cache_dir,
        workers=args.workers,
        skip_invalid=args.skip_invalid,
        skipped=args.skipped,
        device=args.device,
        progress=args.progress,
    )
    if args.embeddings or args.contributions:
        _write_extras(args, data)
    if metrics:
        print(", ".join(f"{k} {_fmt(v)}" for k, v in metrics.items()))
    print(f"predictions written to {args.out}")
    return 0


def _write_extras(args: argparse.Namespace, data: str) -> None:
    """``--embeddings`` and ``--contributions`` of ``cgcnn predict``, from the model object."""
    from pathlib import Path

    import numpy as np

    from cgcnn.files import atomic_write
    from cgcnn.inference import load

    model = load(args.checkpoint, args.atom_init, device=args.device)
    if args.contributions:
        frame = model.contributions(data)
        with atomic_write(args.contributions, newline="") as handle:
            frame.to_csv(handle, index=False)
        print(f"contributions of {frame['id'].nunique()} crystals written to {args.contributions}")
    if args.embeddings:
        table = model.embedding_table(data)
        path = Path(args.embeddings)
        if path.suffix == ".npz":
            vectors = table.drop(columns="id").to_numpy(np.float32)
            with atomic_write(path, "wb") as handle:
                np.savez(handle, ids=table["id"].to_numpy(str), embeddings=vectors)
        elif path.suffix == ".parquet":
            with atomic_write(path, "wb") as handle:
                table.to_parquet(handle, index=False)
        else:
            with atomic_write(path, newline="") as handle:
                table.to_csv(handle, index=False)
        width = table.shape[1] - 1
        print(f"{len(table)} crystal vectors ({width} values) written to {path}")


def _require_parquet(path: str) -> None:
    """Parquet files are written by pandas through pyarrow, an optional dependency."""
    import importlib.util

    from cgcnn.errors import InputError

    if importlib.util.find_spec("pyarrow") is None:
        raise InputError(
            path, "writing Parquet needs pyarrow (pip install pyarrow); or name a .npz or .csv"
        )


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def cmd_featurize(args: argparse.Namespace) -> int:
    from cgcnn.cache import GraphStore, default_cache_dir
    from cgcnn.config import resolve_workers
    from cgcnn.errors import InputError
    from cgcnn.featurizer import count_records_hint, featurize_records
    from cgcnn.graph import GraphSettings
    from cgcnn.io import iter_structures

    if not args.data and not args.example:
        raise InputError("DATA", "give at least one structure source, or --example")
    sources: list = [_data(arg, args.root) for arg in args.data]
    if args.example:
        from cgcnn.examples import example_structures

        sources.append(example_structures())
    settings = GraphSettings(
        args.radius, args.max_neighbors, args.grow_radius, args.min_distance, args.angle_radius
    )
    resolve_workers(args.workers)  # checked before anything is read
    cache_dir = args.cache_dir or default_cache_dir()
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
        progress=args.progress,
        total=None if None in hints else sum(hints),
    )
    print(report.summary(settings))
    print(f"cache: {store.path}")
    said = report.list_skipped(args.skipped or "cgcnn-skipped.csv")
    if said:
        print(said)
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
