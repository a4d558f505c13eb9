"""cgcnn demo: the whole pipeline on a small embedded set, and on a registered dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import cgcnn.demo as demo
from cgcnn.cli import main

MIRROR = Path(__file__).resolve().parents[2] / "shared" / "mirror"


def test_demo_writes_everything(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(demo, "DEMO_CRYSTALS", 80)
    monkeypatch.setenv("CGCNN_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--epochs", "3"]) == 0
    printed = capsys.readouterr().out
    assert "not DFT" in printed and "test: mae" in printed and "predicting the mean" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_train"] + metrics["n_val"] + metrics["n_test"] == 80
    for name in ("test_results.csv", "predictions.csv", "learning_curve.png", "parity.png"):
        assert (out / name).is_file(), name
    assert "Ewald" in (out / "data" / "README.txt").read_text()


def test_demo_on_a_registered_dataset(tmp_path, monkeypatch, capsys):
    if not (MIRROR / "hw_data.zip").is_file():
        pytest.skip(f"{MIRROR}/hw_data.zip is absent (the offline mirror of the homework data)")
    monkeypatch.setenv("CGCNN_DATASETS_MIRROR", str(MIRROR))
    monkeypatch.setenv("CGCNN_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "hw"
    code = main(
        [
            "demo",
            "--dataset",
            "perovskite-energy",
            "--root",
            str(tmp_path / "root"),
            "--out",
            str(out),
            "--epochs",
            "1",
        ]
    )
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["n_train"], metrics["n_val"], metrics["n_test"]) == (536, 67, 67)
    assert "perovskite-energy" in capsys.readouterr().out
