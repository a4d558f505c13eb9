"""The ``cgcnn`` command line.

This module stays light: it imports only the standard library at start-up, so that
``cgcnn --help`` answers at once; each command imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

EXIT_BAD_INPUT = 2

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
        "--structure-column",
        metavar="NAME",
        help="CSV/JSON structure column (default: cif for CSV, structure for JSON)",
    )


def _add_graph_options(parser: argparse.ArgumentParser) -> None:
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
        "--workers", type=int, metavar="N", help="featurization processes (default: all cores)"
    )
    group.add_argument(
        "--skip-invalid",
        action="store_true",
        help="leave bad structures out (listed in --skipped) instead of stopping",
    )
    group.add_argument(
        "--skipped",
        metavar="FILE",
        default="cgcnn-skipped.csv",
        help="where --skip-invalid writes the skipped ids and reasons "
        "(default: cgcnn-skipped.csv, written only when something is skipped)",
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
    return parser


def cmd_featurize(args: argparse.Namespace) -> int:
    from cgcnn.cache import GraphStore, default_cache_dir
    from cgcnn.errors import InputError
    from cgcnn.featurizer import count_records_hint, featurize_records
    from cgcnn.graph import GraphSettings
    from cgcnn.io import iter_structures

    if not args.data and not args.example:
        raise InputError("DATA", "give at least one structure source, or --example")
    sources: list = list(args.data)
    if args.example:
        from cgcnn.examples import example_structures

        sources.append(example_structures())
    settings = GraphSettings(args.radius, args.max_neighbors, args.grow_radius, args.min_distance)
    if args.workers is not None and args.workers < 1:
        raise InputError("--workers", f"must be >= 1, got {args.workers}")
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
        report.write_skipped(args.skipped)
        print(f"{len(report.skipped)} skipped structure(s) listed with reasons in {args.skipped}")
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
    except Exception as exc:
        from cgcnn.errors import InputError

        if args.debug or not isinstance(exc, InputError):
            raise
        print(f"cgcnn: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    finally:
        if args.debug:
            print(f"[{time.perf_counter() - started:.2f} s]", file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
