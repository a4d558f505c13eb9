"""The settings spine: one definition per setting, the command line generated from it,
``OUT/config.yaml`` repeating a run, and checkpoints of earlier versions still predicting."""

from __future__ import annotations

import csv
import dataclasses
import inspect
import json
from pathlib import Path

import pytest

from cgcnn.cli import build_parser, main
from cgcnn.config import (
    PRESETS,
    SECTIONS,
    RunSettings,
    fields_by_name,
    iter_settings,
    read_config,
)
from cgcnn.errors import InputError
from helpers import shared

DATA = Path(__file__).parent / "data"
TINY = ["--ensemble", "1", "--atom-fea-len", "8", "--h-fea-len", "8", "--n-conv", "1"]
#: settings a run computes or that only Python callers set
NOT_OPTIONS = {"class_weights", "progress", "plots"}
TIMINGS = {"train_seconds", "ensemble_seconds", "checkpoint", "jobs"}


def _options(command: str) -> dict[str, str]:
    """dest -> flag of every option of ``cgcnn COMMAND``."""
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    return {a.dest: a.option_strings[-1] for a in sub._actions if a.option_strings}


def test_every_setting_is_an_option_of_train_and_every_option_a_setting():
    options = _options("train")
    settings = {name for _, name, _ in iter_settings()}
    missing = sorted(settings - NOT_OPTIONS - set(options))
    assert missing == [], f"settings no option of cgcnn train sets: {missing}"
    command_only = {"help", "out", "config", "preset", "root", "j"}  # -j: refused, see cli
    strays = sorted(set(options) - settings - command_only)
    assert strays == [], f"options of cgcnn train that are not settings: {strays}"


def test_each_setting_has_one_default_and_help():
    from cgcnn.training import train

    signature = inspect.signature(train).parameters
    for section, name, item in iter_settings():
        assert item.metadata["help"], name
        if name in NOT_OPTIONS - {"progress", "plots"}:
            continue
        default = signature[name].default
        assert default == (
            item.default_factory() if item.default_factory is not dataclasses.MISSING
            else item.default
        ), name  # fmt: skip
        assert section in SECTIONS


def test_help_says_each_default_from_the_field():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices["train"]
    text = sub.format_help()
    assert "(default 12)" in text and "(default 3e-3)" not in text  # said once, by the field
    assert "(default 0.003)" in text and "(default edgegated)" in text


def test_unknown_and_bad_settings_are_one_line():
    with pytest.raises(InputError, match="lrr: is not a setting of cgcnn train; did you mean lr"):
        RunSettings.from_options({"lrr": 0.1})
    with pytest.raises(InputError, match="--n-conv: must be >= 0"):
        RunSettings.from_options({"n_conv": -1})
    with pytest.raises(InputError, match="unknown convolution 'gcn'"):
        RunSettings.from_options({"conv": "gcn"})
    settings = RunSettings.from_options({"dropout": None, "lr": 0.1})
    assert settings.model.dropout is None and settings.optim.lr == 0.1
    assert settings.given == {"dropout", "lr"}


def test_the_readout_is_per_site_unless_a_pooling_is_asked_for():
    def model(**options):
        settings = RunSettings.from_options(options)
        return settings.model.readout, settings.model.pooling

    assert model() == ("site", "mean")
    assert model(pooling="max") == ("pooled", "max")
    assert model(pooling="mean") == ("pooled", "mean")  # a pooling given: the pooled readout
    assert model(readout="pooled") == ("pooled", "mean")
    assert model(readout="site", pooling="mean") == ("site", "mean")  # what config.yaml holds
    with pytest.raises(InputError, match="--pooling: sum pools the atom vectors before the head"):
        model(readout="site", pooling="sum")
    assert model(**PRESETS["original"]) == ("pooled", "mean")


def test_the_library_warns_when_a_per_site_readout_leaves_a_pooling_unused():
    import warnings

    from cgcnn.nn import CGCNNConfig

    with pytest.warns(UserWarning, match="pooling='max' is unused"):
        CGCNNConfig(readout="site", pooling="max")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        CGCNNConfig(readout="site", pooling="mean")
        CGCNNConfig(readout="pooled", pooling="max")
        CGCNNConfig(readout="site", pooling="max", extensive=True)  # extensive sums anyway


def test_preset_original_sets_only_known_settings():
    known = fields_by_name()
    assert set(PRESETS["original"]) <= set(known)
    settings = RunSettings.from_options(PRESETS["original"])
    assert (settings.model.conv, settings.optim.optim, settings.run.ensemble) == (
        "gated",
        "sgd",
        1,
    )


def test_config_yaml_repeats_a_run_exactly_and_flags_win(tmp_path, capsys):
    data = shared("sample-regression")
    first = tmp_path / "first"
    argv = ["train", data, "--out", first, *TINY, "--epochs", "3", "--cache", tmp_path]
    argv += ["--conv", "gated", "--batch-size", "4", "--lr", "0.01", "--seed", "2"]
    assert main([str(a) for a in argv]) == 0
    capsys.readouterr()
    config = first / "config.yaml"
    source, settings = read_config(config)
    assert Path(source) == data.resolve()
    assert (settings["conv"], settings["batch_size"], settings["seed"]) == ("gated", 4, 2)
    assert settings["radius"] == 8.0 and settings["patience"] == 30  # defaults written too

    again = tmp_path / "again"
    assert main(["train", "--config", str(config), "--out", str(again)]) == 0
    one, two = (json.loads((run / "metrics.json").read_text()) for run in (first, again))
    assert {k: v for k, v in one.items() if k not in TIMINGS} == {
        k: v for k, v in two.items() if k not in TIMINGS
    }
    assert (first / "test_results.csv").read_bytes() == (again / "test_results.csv").read_bytes()
    assert config.read_text() == (again / "config.yaml").read_text()

    shorter = tmp_path / "shorter"
    assert main(["train", "--config", str(config), "--out", str(shorter), "--epochs", "1"]) == 0
    _, changed = read_config(shorter / "config.yaml")
    assert changed == {**settings, "epochs": 1}
    assert json.loads((shorter / "metrics.json").read_text())["epochs_run"] == 1


def test_bad_config_files_are_one_line(tmp_path, capsys):
    cases = {
        "missing.yaml": (None, "no such config file"),
        "list.yaml": ("- 1\n- 2\n", "is not a config file"),
        "section.yaml": ("modle:\n  conv: gated\n", "unknown section 'modle'"),
        "key.yaml": ("model:\n  lr: 0.1\n", "model.lr is not a setting"),
        "yaml.yaml": ("model: [\n", "is not a YAML file"),
    }
    for name, (text, words) in cases.items():
        path = tmp_path / name
        if text is not None:
            path.write_text(text)
        code = main(["train", "--config", str(path), "--out", str(tmp_path / "run")])
        err = capsys.readouterr().err
        assert code == 2 and words in err and err.count("\n") == 1, (name, err)
    code = main(["train", "--out", str(tmp_path / "run")])
    assert code == 2 and "DATA: give the structures" in capsys.readouterr().err


def test_a_checkpoint_of_version_0_1_predicts_as_it_did(tmp_path):
    """A checkpoint written before the settings moved to cgcnn.config (tests/data)."""
    from cgcnn.prediction import load, predict

    checkpoint = DATA / "small-v0.1.ckpt"
    model, info = load(checkpoint)
    assert model.config.atom_fea_len == 8 and info["graph_settings"]["radius"] == 8.0
    out = tmp_path / "p.csv"
    predict(checkpoint, shared("sample-regression"), out, cache_dir=tmp_path, progress=False)
    with out.open(newline="") as new, (DATA / "small-v0.1-predictions.csv").open() as old:
        assert list(csv.reader(new)) == list(csv.reader(old))
