"""Every option of every command reaches what it configures.

The test walks the parsers: for each option of each command it gives a value unlike the
default, runs the command with the functions it calls replaced by recorders, and checks that
the value arrived, under the option's name (or the name it is known by downstream).  An
option that is parsed and then dropped fails here.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import cgcnn.cli as cli

#: argparse destination -> the name its value arrives under, where they differ
ARRIVES_AS = {"name": "dataset_name"}
#: options that act before any command runs, or only print
NOT_FORWARDED = {"help", "version", "debug", "command", "func", "parser", "action", "j"}


class Recorder:
    """Records the keyword arguments (and the named positional ones) of the calls it
    stands in for, all in one dict."""

    def __init__(self) -> None:
        self.seen: dict[str, list[Any]] = {}

    def note(self, **values: Any) -> None:
        for name, value in values.items():
            self.seen.setdefault(name, []).append(value)

    def stand_in(self, positional: tuple[str, ...], result: Any = None):
        def call(*args, **kwargs):
            self.note(**dict(zip(positional, args, strict=False)), **kwargs)
            return result(*args, **kwargs) if callable(result) else result

        return call


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    found: dict[str, argparse.ArgumentParser] = {}

    def walk(p: argparse.ArgumentParser, prefix: tuple[str, ...]) -> None:
        subs = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            found[" ".join(prefix)] = p
        for sub in subs:
            for name, child in sub.choices.items():
                walk(child, (*prefix, name))

    walk(parser, ())
    return found


COMMANDS = _commands()
POSITIONALS = {
    "featurize": ["registered-name"],
    "train": ["registered-name"],
    "compare": ["registered-name"],
    "predict": ["model.ckpt", "registered-name"],
    "explain": ["model.ckpt", "registered-name"],
    "demo": [],
    "datasets list": [],
    "datasets fetch": ["some-dataset"],
}


def _options() -> list[tuple[str, argparse.Action]]:
    return [
        (command, action)
        for command, parser in COMMANDS.items()
        for action in parser._actions
        if action.option_strings and action.dest not in NOT_FORWARDED
    ]


def _distinct_value(action: argparse.Action) -> tuple[list[str], Any]:
    """(words for the command line, the value expected downstream)."""
    if isinstance(action, argparse._StoreConstAction) and not isinstance(action.const, bool):
        return [], action.const  # --disable-cuda: the CPU
    if action.nargs == 0 and not isinstance(getattr(action, "constant", True), bool):
        return [], action.constant
    if isinstance(action, argparse._StoreTrueAction) or action.nargs == 0:
        return [], not action.default
    if action.choices:
        choice = next(c for c in action.choices if c != action.default)
        return [str(choice)], choice
    if action.nargs in ("+", "*"):
        return ["7", "9"], [7, 9] if action.type is int else ["7", "9"]
    if action.type is int:
        return ["7"], 7
    if action.type is float:
        return ["0.37"], 0.37
    return [f"v-{action.dest}"], f"v-{action.dest}"


def _install(monkeypatch, recorder: Recorder, tmp_path: Path) -> None:
    import cgcnn.cache
    import cgcnn.comparison
    import cgcnn.datasets
    import cgcnn.demo
    import cgcnn.examples
    import cgcnn.explain
    import cgcnn.featurizer
    import cgcnn.io
    import cgcnn.prediction
    import cgcnn.run_folder
    import cgcnn.training
    from cgcnn.featurizer import FeaturizeReport, Skipped
    from cgcnn.training import TrainResult

    data = tmp_path / "data.csv"
    data.write_text("id,cif\n")

    def featurize_records(records, settings, store, **kwargs):
        recorder.note(**dataclasses.asdict(settings), **kwargs)
        return FeaturizeReport(skipped=[Skipped("a", "b", "c")])

    class Store:
        path = tmp_path / "graphs.sqlite"

        def __init__(self, directory, readonly=False) -> None:
            recorder.note(cache_dir=directory)

        def close(self) -> None:
            pass

    def write_skipped(self, path) -> None:
        recorder.note(skipped=path)

    summary = pd.DataFrame({"metric": ["test_mae"], "config": ["x"], "mean": [1.0]})
    train_result = TrainResult(tmp_path, {"train_seconds": 1.0}, tmp_path / "best.ckpt")
    patches = {
        (cgcnn.datasets, "resolve_data"): recorder.stand_in(("data_name", "root"), str(data)),
        (cgcnn.datasets, "fetch"): recorder.stand_in(("dataset_name", "root"), tmp_path),
        (cgcnn.datasets, "list_datasets"): recorder.stand_in(("root",), []),
        (cgcnn.datasets, "format_table"): lambda rows: "",
        (cgcnn.training, "train"): recorder.stand_in(("data", "out"), train_result),
        (cgcnn.prediction, "predict"): recorder.stand_in(("checkpoint", "data", "out"), {}),
        (cgcnn.comparison, "compare"): recorder.stand_in(("data", "grid"), summary),
        (cgcnn.explain, "explain"): recorder.stand_in(
            ("checkpoint", "data", "out"), {"crystals": 0, "sites": None, "files": []}
        ),
        (cgcnn.explain, "summary_lines"): lambda summary, out: [],
        (cgcnn.demo, "run_demo"): recorder.stand_in(("out",), {}),
        (cgcnn.demo, "summary"): lambda metrics, out: "",
        (cgcnn.featurizer, "featurize_records"): featurize_records,
        (cgcnn.featurizer, "count_records_hint"): lambda source: None,
        (cgcnn.featurizer.FeaturizeReport, "write_skipped"): write_skipped,
        (cgcnn.featurizer.FeaturizeReport, "summary"): lambda self, settings: "",
        (cgcnn.io, "iter_structures"): recorder.stand_in(("sources",), []),
        (cgcnn.cache, "GraphStore"): Store,
        (cgcnn.examples, "example_structures"): recorder.stand_in((), {"example": True}),
        (cli, "_show_graphs"): lambda store, report: recorder.note(show=True),
        (cgcnn.run_folder, "resolve_run_folder"): lambda source: source,
        (cli, "_write_extras"): lambda args, data: recorder.note(
            embeddings=args.embeddings, contributions=args.contributions
        ),
    }
    for (owner, name), value in patches.items():
        monkeypatch.setattr(owner, name, value)


def _arrived(recorder: Recorder, name: str, expected: Any) -> bool:
    values = recorder.seen.get(name, [])
    if name == "sources":  # featurize --example: the examples join the sources
        return any(any(isinstance(s, dict) and s.get("example") for s in v) for v in values)
    return any(_same(v, expected) for v in values)


def _same(value: Any, expected: Any) -> bool:
    if isinstance(value, Path) or isinstance(expected, Path):
        return str(value) == str(expected)
    if isinstance(expected, float):
        return isinstance(value, int | float) and abs(value - expected) < 1e-12
    return value == expected or str(value) == str(expected)


@pytest.mark.parametrize(
    ("command", "action"),
    _options(),
    ids=[f"{c}:{a.option_strings[-1]}" for c, a in _options()],
)
def test_each_option_reaches_what_it_configures(command, action, monkeypatch, tmp_path, capsys):
    recorder = Recorder()
    _install(monkeypatch, recorder, tmp_path)
    words, expected = _distinct_value(action)
    option = action.option_strings[-1]
    name = ARRIVES_AS.get(action.dest, action.dest)
    if action.dest == "grid":
        words, expected = ["conv=v-grid"], {"conv": ["v-grid"]}
    if action.dest == "split":  # checked before anything runs: a real file
        split = tmp_path / "split.csv"
        split.write_text("id,split\n")
        words, expected = [str(split)], str(split)
    if action.dest == "config":  # a file of settings: they arrive as if given
        config = tmp_path / "config.yaml"
        config.write_text("optim:\n  epochs: 7\nmodel:\n  conv: gated\n")
        words, name, expected = [str(config)], "epochs", 7
    argv = [*command.split(), *POSITIONALS[command], option, *words]
    if command == "compare" and action.dest != "grid":
        grid_key = "conv" if action.dest in ("pooling",) else "pooling"
        argv += ["--grid", f"{grid_key}=a,b"]
    if action.dest == "preset":
        name, expected = "conv", "gated"  # --preset original: the paper's convolution
    if command == "compare" and action.dest == "progress":
        name = "verbose"  # compare's word for it
    if action.dest == "example":
        name = "sources"
    code = cli.main(argv)
    assert code == 0, capsys.readouterr().err
    assert _arrived(recorder, name, expected), (
        f"cgcnn {command} {option} {' '.join(words)}: {name}={expected!r} never arrived "
        f"(seen: { {k: v for k, v in recorder.seen.items() if k == name} })"
    )


def test_the_walk_covers_every_command():
    assert set(COMMANDS) == set(POSITIONALS)
    assert len(_options()) > 100


@pytest.mark.parametrize(
    ("words", "setting", "value"),
    [
        (["--max-num-nbr", "9"], "max_neighbors", 9),
        (["--wd", "0.5"], "weight_decay", 0.5),
        (["--optim", "Adam"], "optim", "adam"),
        (["--disable-cuda"], "accelerator", "cpu"),
    ],
)
def test_the_original_cgcnn_flags_mean_the_same_here(words, setting, value, monkeypatch, tmp_path):
    recorder = Recorder()
    _install(monkeypatch, recorder, tmp_path)
    assert cli.main(["train", "registered-name", "--ensemble", "1", *words]) == 0
    assert _arrived(recorder, setting, value), recorder.seen.get(setting)


@pytest.mark.parametrize("command", ["train registered-name", "predict model.ckpt data"])
def test_the_original_cgcnn_j_is_refused_naming_ours(command, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main([*command.split(), "-j", "4"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("cgcnn: error: -j: the original CGCNN's")
    assert "--workers sets the featurization processes" in err
