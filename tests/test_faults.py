"""Faults and hostile files: nothing executed, nothing lost, one clear line.

Hostile checkpoints (local and served over HTTP), writes interrupted by an injected failure
or by ``kill -9``, resuming finished or foreign runs, damaged weights, OS errors, Ctrl-C
and a closed pipe.  Everything runs on the ten crystals of ``sample-regression`` with a
tiny model, in seconds.
"""

from __future__ import annotations

import builtins
import contextlib
import csv
import errno
import functools
import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from cgcnn.cli import main
from cgcnn.errors import InputError
from cgcnn.prediction import load, predict
from cgcnn.training import train
from conftest import BAD_CIFS, make_cif, write_cgcnn_folder
from helpers import shared

TINY = {"atom_fea_len": 8, "h_fea_len": 8, "n_conv": 1, "progress": False, "plots": False}
TINY_ARGS = ["--ensemble", "1", "--atom-fea-len", "8", "--h-fea-len", "8", "--n-conv", "1"]
SRC = Path(__file__).resolve().parents[1] / "src"


def _train(tmp_path: Path, name: str, **kwargs):
    options = {**TINY, "epochs": 2, "cache_dir": tmp_path / "cache", **kwargs}
    return train(shared("sample-regression"), tmp_path / name, **options)


def _cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(code: int, err: str, *words: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("cgcnn: error: "), err
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


# --------------------------------------------------------------------------- hostile files


class _Payload:
    """Unpickling this creates ``marker`` (what a hostile checkpoint could do instead)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (builtins.open, (self.marker, "w"))


def read_checkpoint(path):
    """The package's checkpoint loader (imported here, so that each test fails on its own)."""
    from cgcnn.checkpoint import read_checkpoint as read

    return read(path)


def _hostile_checkpoint(path: Path, marker: Path, base: dict | None = None) -> Path:
    """A checkpoint (a real one's content, when given) with a payload in it."""
    torch.save({**(base or {"state_dict": {}}), "payload": _Payload(marker)}, path)
    return path


@contextlib.contextmanager
def _http_server(folder: Path):
    """Serve ``folder`` on 127.0.0.1 (a random free port); yield the base address."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))

    class Quiet(handler.func):  # type: ignore[name-defined, misc]
        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_hostile_remote_checkpoint_is_refused_by_resume_init_predict_and_load(tmp_path, capsys):
    data = shared("sample-regression")
    good = _train(tmp_path, "good").checkpoint
    capsys.readouterr()  # the tiny model's own messages
    served = tmp_path / "served"
    served.mkdir()
    marker = tmp_path / "MARKER"
    base = torch.load(good, map_location="cpu", weights_only=True)
    _hostile_checkpoint(served / "last.ckpt", marker, base)
    with _http_server(served) as address:
        url = f"{address}/last.ckpt"
        runs = {
            "resume": ["train", data, "--out", tmp_path / "r", "--resume", url, *TINY_ARGS],
            "init": ["train", data, "--out", tmp_path / "i", "--init", url, *TINY_ARGS],
            "predict": ["predict", url, data, "--out", tmp_path / "p.csv"],
        }
        for name, argv in runs.items():
            code, _, err = _cli(capsys, *argv, "--cache", tmp_path / "cache")
            line = _one_line_error(code, err, url, "not allowed", "io.open")
            assert "weights_only" not in line, name
            assert not marker.exists(), f"{name} ran the payload"
        with pytest.raises(InputError, match="not allowed"):
            load(url)
        # the address of a good checkpoint works: the same loader, nothing refused
        shutil.copy(good, served / "good.ckpt")
        model, _ = load(f"{address}/good.ckpt")
        assert model.config.atom_fea_len == 8
    assert not marker.exists()


def test_a_hostile_local_checkpoint_is_refused_by_resume(tmp_path, capsys):
    data = shared("sample-regression")
    marker = tmp_path / "MARKER"
    hostile = _hostile_checkpoint(tmp_path / "last.ckpt", marker)
    code, _, err = _cli(
        capsys, "train", data, "--out", tmp_path / "r", "--resume", hostile, *TINY_ARGS
    )
    _one_line_error(code, err, str(hostile), "not allowed")
    assert not marker.exists()
    assert not (tmp_path / "r").exists(), "nothing is written before the checkpoint is read"


def test_no_module_calls_torch_load_but_the_checkpoint_loader():
    callers = sorted(
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if re.search(r"(?<!`)torch\.load\(", path.read_text()) and path.name != "checkpoint.py"
    )
    assert callers == [], f"torch.load outside cgcnn/checkpoint.py: {callers}"


# --------------------------------------------------------------------------- atomic writes


def _fail_fsync(monkeypatch) -> None:
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("cgcnn.files.os.fsync", full)


def _writers(tmp_path: Path):
    """(file name, write(version)) for every kind of result file."""
    from cgcnn.checkpoint import SafeCheckpointIO
    from cgcnn.featurizer import FeaturizeReport, Skipped
    from cgcnn.files import write_json
    from cgcnn.logs import EpochLog
    from cgcnn.nn.model import CGCNNConfig
    from cgcnn.prediction import write_results

    def checkpoint(version: int) -> None:
        SafeCheckpointIO().save_checkpoint(
            {"state_dict": {"w": torch.full((64,), float(version))}, "epoch": version},
            tmp_path / "last.ckpt",
        )

    def results(version: int) -> None:
        write_results(
            tmp_path / "test_results.csv",
            CGCNNConfig(),
            ["a", "b"],
            np.full((2, 1), version, dtype=float),
            np.zeros((2, 1)),
        )

    def epoch_log(version: int) -> None:
        log = EpochLog(tmp_path)
        log.experiment.log_metrics({"epoch": 0, "train_loss": float(version)}, step=0)
        log.experiment.save()

    def skipped(version: int) -> None:
        report = FeaturizeReport(skipped=[Skipped(f"id{version}", "x.cif", "bad")])
        report.write_skipped(tmp_path / "skipped.csv")

    return {
        "last.ckpt": checkpoint,
        "metrics.json": lambda v: write_json(tmp_path / "metrics.json", {"v": v}),
        "ensemble.json": lambda v: write_json(tmp_path / "ensemble.json", {"members": [v]}),
        "test_results.csv": results,
        "metrics.csv": epoch_log,
        "skipped.csv": skipped,
    }


@pytest.mark.parametrize(
    "name",
    [
        "last.ckpt",
        "metrics.json",
        "ensemble.json",
        "test_results.csv",
        "metrics.csv",
        "skipped.csv",
    ],
)
def test_a_failed_write_keeps_the_previous_file_and_leaves_nothing_behind(
    name, tmp_path, monkeypatch
):
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmpdir))
    monkeypatch.setattr("tempfile.tempdir", None)
    out = tmp_path / "out"
    out.mkdir()
    write = _writers(out)[name]
    write(1)
    before = (out / name).read_bytes()
    _fail_fsync(monkeypatch)
    with pytest.raises(InputError, match=f"{name}: cannot write .No space left on device"):
        write(2)
    assert (out / name).read_bytes() == before
    assert [p.name for p in out.iterdir()] == [name], "a temporary file was left beside it"
    assert list(tmpdir.iterdir()) == []
    if name.endswith(".ckpt"):
        assert float(read_checkpoint(out / name)["state_dict"]["w"][0]) == 1.0
    monkeypatch.undo()
    write(3)
    assert (out / name).read_bytes() != before


def test_kill_during_a_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "out" / "last.ckpt"
    target.parent.mkdir()
    target.write_bytes(b"previous")
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    script = (
        "import sys, time\n"
        "from cgcnn.files import atomic_write\n"
        "with atomic_write(sys.argv[1], 'wb') as handle:\n"
        "    handle.write(b'x' * 100000)\n"
        "    handle.flush()\n"
        "    print('writing', flush=True)\n"
        "    time.sleep(60)\n"
    )
    env = {**os.environ, "TMPDIR": str(tmpdir)}
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(target)], stdout=subprocess.PIPE, env=env, text=True
    )
    assert process.stdout.readline().strip() == "writing"
    process.kill()
    process.wait(timeout=30)
    assert target.read_bytes() == b"previous"
    assert list(tmpdir.iterdir()) == []


def test_kill_during_training_leaves_loadable_checkpoints_and_nothing_in_tmpdir(tmp_path):
    data = shared("sample-regression")
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    out = tmp_path / "run"
    command = [sys.executable, "-m", "cgcnn", "train", str(data), "--out", str(out)]
    command += [*TINY_ARGS, "--epochs", "100000", "--patience", "0", "--cache", str(tmp_path)]
    env = {**os.environ, "TMPDIR": str(tmpdir)}
    process = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (out / "last.ckpt").is_file() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # several epochs, each rewriting last.ckpt and metrics.csv
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    for name in ("last.ckpt", "best.ckpt"):
        assert read_checkpoint(out / name)["epoch"] >= 0
    with (out / "metrics.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows and all(row["epoch"] for row in rows)
    assert list(tmpdir.iterdir()) == []


# --------------------------------------------------------------------------- resume


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_resuming_a_finished_run_changes_nothing_and_more_epochs_continue(tmp_path, capsys):
    data = shared("sample-regression")
    out = tmp_path / "run"
    argv = ["train", data, "--out", out, *TINY_ARGS, "--epochs", "2", "--cache", tmp_path]
    assert _cli(capsys, *argv)[0] == 0
    before = _snapshot(out)
    code, stdout, err = _cli(capsys, *argv, "--resume", out / "last.ckpt")
    assert code == 0
    assert "is a complete run (it has run 2 of 2 epochs" in err and "nothing was changed" in err
    assert _snapshot(out) == before
    assert "test_mae" in stdout
    code, _, err = _cli(capsys, *argv[:-4], "--epochs", "4", "--resume", out / "last.ckpt")
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs_run"] == 4
    with (out / "metrics.csv").open(newline="") as handle:
        assert {int(r["epoch"]) for r in csv.DictReader(handle)} == {0, 1, 2, 3}


def test_resume_refuses_other_data_other_settings_and_a_missing_file(tmp_path, capsys):
    data = shared("sample-regression")
    out = tmp_path / "run"
    base = ["train", data, "--out", out, *TINY_ARGS, "--cache", tmp_path]
    assert _cli(capsys, *base, "--epochs", "2", "--stop-after", "1")[0] == 0
    last = out / "last.ckpt"
    other = write_cgcnn_folder(
        tmp_path / "other",
        {f"c{k}": make_cif(a=3.9 + 0.05 * k) for k in range(10)},
        "\n".join(f"c{k},{k}" for k in range(10)),
    )
    cases = [
        (["--resume", last, "--epochs", "2", "--lr", "0.1"], "training setting: lr"),
        (["--resume", last, "--epochs", "2", "--radius", "6"], "graph setting: radius"),
        (["--resume", last, "--epochs", "2", "--conv", "gated"], "model setting: conv"),
        (["--resume", last, "--epochs", "2", "--test-ratio", "0.2"], "other split"),
        (["--resume", "last", "--epochs", "2"], "last: no such checkpoint file"),
    ]
    for extra, words in cases:
        _one_line_error(*_cli(capsys, *base, *extra)[::2], words)
    argv = ["train", other, "--out", out, *TINY_ARGS, "--cache", tmp_path]
    _one_line_error(*_cli(capsys, *argv, "--resume", last, "--epochs", "2")[::2], "other data")
    # and the right settings continue
    assert _cli(capsys, *base, "--epochs", "2", "--resume", last)[0] == 0


def test_resume_takes_the_settings_not_given_from_the_checkpoint(tmp_path, capsys):
    data = shared("sample-regression")
    out = tmp_path / "run"
    started = ["--epochs", "3", "--lr", "0.01", "--readout", "pooled", "--pooling", "max"]
    base = ["train", data, "--out", out, *TINY_ARGS, "--cache", tmp_path]
    assert _cli(capsys, *base, *started, "--stop-after", "1")[0] == 0
    # neither the epochs, the learning rate nor the readout is repeated: the run goes on as
    # it was started, not with today's defaults (100 epochs, lr 0.003, the per-site readout)
    argv = ["train", data, "--out", out, "--cache", tmp_path, "--resume", out / "last.ckpt"]
    code, _, err = _cli(capsys, *argv)
    assert code == 0, err
    state = torch.load(out / "last.ckpt", map_location="cpu", weights_only=False)
    hparams = state["hyper_parameters"]
    assert state["epoch"] == 2  # the planned 3 epochs, counted from 0
    assert hparams["train_config"]["lr"] == 0.01 and hparams["train_config"]["epochs"] == 3
    assert (hparams["model_config"]["readout"], hparams["model_config"]["pooling"]) == (
        "pooled",
        "max",
    )
    assert hparams["model_config"]["atom_fea_len"] == 8


def test_a_finished_out_is_refused_unless_overwrite(tmp_path, capsys):
    data = shared("sample-regression")
    out = tmp_path / "run"
    argv = ["train", data, "--out", out, *TINY_ARGS, "--epochs", "1", "--cache", tmp_path]
    assert _cli(capsys, *argv)[0] == 0
    before = _snapshot(out)
    _one_line_error(*_cli(capsys, *argv, "--seed", "1")[::2], "holds a finished run", "--overwrite")
    assert _snapshot(out) == before
    assert _cli(capsys, *argv, "--seed", "1", "--overwrite")[0] == 0
    assert _snapshot(out) != before
    with pytest.raises(InputError, match="holds a finished run"):
        _train(tmp_path, "run", epochs=1)


# --------------------------------------------------------------------------- integrity


def test_flipped_weight_bytes_are_detected(tmp_path):
    best = _train(tmp_path, "run").checkpoint
    state = torch.load(best, map_location="cpu", weights_only=True)
    weights = state["state_dict"]["model.embedding.weight"].numpy().tobytes()
    raw = bytearray(best.read_bytes())
    at = raw.find(weights[:64])
    assert at > 0, "the weights are stored uncompressed"
    raw[at + 5] ^= 0x40
    damaged = tmp_path / "damaged.ckpt"
    damaged.write_bytes(bytes(raw))
    with pytest.raises(InputError, match="damaged.ckpt: is damaged: its tensors do not match"):
        load(damaged)
    assert load(best)[0] is not None


def test_metrics_json_is_strict_json(tmp_path):
    # one test crystal: R^2 is undefined
    result = _train(tmp_path, "run", test_size=1, val_size=1)
    text = (tmp_path / "run" / "metrics.json").read_text()

    def refuse(name):
        raise ValueError(f"bare {name} in metrics.json")

    metrics = json.loads(text, parse_constant=refuse)
    assert metrics["test_r2"] is None
    assert result.metrics["n_test"] == 1


# --------------------------------------------------------------------------- bad input


def _mixed_folder(tmp_path: Path) -> Path:
    cifs = {f"good{k}": make_cif(a=3.8 + 0.04 * k) for k in range(8)}
    cifs["bad-empty"] = BAD_CIFS["empty"][0]
    cifs["bad-close"] = BAD_CIFS["atoms-too-close"][0]
    rows = "\n".join(f"{rid},{k}" for k, rid in enumerate(cifs))
    return write_cgcnn_folder(tmp_path / "mixed", cifs, rows)


def test_skip_invalid_lists_and_counts_in_train_and_predict(tmp_path, capsys, monkeypatch):
    data = _mixed_folder(tmp_path)
    out = tmp_path / "run"
    monkeypatch.chdir(tmp_path)
    argv = ["train", data, "--out", out, *TINY_ARGS, "--epochs", "1", "--cache", tmp_path]
    code, stdout, _ = _cli(capsys, *argv, "--skip-invalid")
    assert code == 0
    assert "n_skipped 2" in stdout
    with (out / "skipped.csv").open(newline="") as handle:
        assert sorted(r["id"] for r in csv.DictReader(handle)) == ["bad-close", "bad-empty"]
    assert not (tmp_path / "cgcnn-skipped.csv").exists()
    listed = tmp_path / "elsewhere.csv"
    argv[3] = tmp_path / "run2"
    assert _cli(capsys, *argv, "--skip-invalid", "--skipped", listed)[0] == 0
    assert listed.is_file()
    predictions = tmp_path / "pred" / "p.csv"
    predictions.parent.mkdir()
    code, _, err = _cli(
        capsys, "predict", out / "best.ckpt", data, "--out", predictions, "--skip-invalid"
    )
    assert code == 0
    assert "2 of 10 structure(s) skipped" in err
    assert (tmp_path / "pred" / "p.skipped.csv").is_file()
    with predictions.open(newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 8


def test_relative_cache_folders_in_train_and_predict(tmp_path, capsys, monkeypatch):
    data = shared("sample-regression")
    monkeypatch.chdir(tmp_path)
    run = ["train", data, "--out", "run", *TINY_ARGS, "--epochs", "1", "--cache", "graphs"]
    assert _cli(capsys, *run)[0] == 0
    assert (tmp_path / "graphs" / "graphs.sqlite").is_file()
    assert _cli(capsys, "predict", "run/best.ckpt", data, "--cache", "graphs")[0] == 0
    monkeypatch.setenv("CGCNN_CACHE_DIR", "env-graphs")
    assert _cli(capsys, "predict", "run/best.ckpt", data, "--out", "p2.csv")[0] == 0
    assert (tmp_path / "env-graphs" / "graphs.sqlite").is_file()


def test_os_errors_are_one_line_naming_the_path(tmp_path, capsys, monkeypatch):
    data = shared("sample-regression")
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    base = ["train", data, *TINY_ARGS, "--epochs", "1", "--cache", tmp_path]
    _one_line_error(*_cli(capsys, *base, "--out", a_file)[::2], "a-file", "is a file")
    _one_line_error(
        *_cli(capsys, *base, "--out", a_file / "run")[::2], "a-file/run", "under a file"
    )
    assert _cli(capsys, *base, "--out", tmp_path / "run")[0] == 0
    ckpt = tmp_path / "run" / "best.ckpt"
    _one_line_error(
        *_cli(capsys, "predict", ckpt, data, "--out", tmp_path)[::2], str(tmp_path), "is a folder"
    )
    _one_line_error(
        *_cli(capsys, "predict", ckpt, data, "--out", tmp_path / "missing" / "p.csv")[::2],
        "missing/p.csv",
        "cannot write here",
    )
    _fail_fsync(monkeypatch)
    _one_line_error(
        *_cli(capsys, "predict", ckpt, data, "--out", tmp_path / "p.csv")[::2],
        "p.csv",
        "No space left on device",
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_out_is_one_line(tmp_path, capsys):
    data = shared("sample-regression")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        code, _, err = _cli(capsys, "train", data, "--out", locked / "run", *TINY_ARGS)
        _one_line_error(code, err, "locked/run")
    finally:
        locked.chmod(0o755)


def test_a_closed_pipe_ends_quietly():
    command = f"{sys.executable} -m cgcnn featurize --example --show --workers 0 | head -1"
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, timeout=120
    )
    assert done.stdout.count("\n") == 1
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr


def test_ctrl_c_during_a_single_model_run_is_one_line_and_status_130(tmp_path):
    data = shared("sample-regression")
    out = tmp_path / "run"
    command = [sys.executable, "-m", "cgcnn", "train", str(data), "--out", str(out)]
    command += [*TINY_ARGS, "--epochs", "100000", "--patience", "0", "--cache", str(tmp_path)]
    # Ctrl-C as at a terminal: a shell that starts the tests in the background (`cmd &`)
    # hands its children SIGINT ignored, and Python then keeps ignoring it
    process = subprocess.Popen(
        command,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while not (out / "last.ckpt").is_file() and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-1] == "cgcnn: interrupted", err
    assert "Traceback" not in err
    assert read_checkpoint(out / "last.ckpt")["epoch"] >= 0


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--atom-features", "nosuch"], "nosuch"),
        (["--split", "nosuch.csv"], "nosuch.csv: no such split file"),
        (["--val-ratio", "1.5"], "--val-ratio: must be in [0, 1)"),
        (["--train-size", "0"], "--train-size: must be >= 0"),
        (["--n-conv", "-1"], "--n-conv: must be >= 0"),
        (["--dropout", "1.5"], "--dropout: must be in [0, 1)"),
        (["--num-workers", "-1"], "--num-workers: must be >= 0"),
        (["--accelerator", "nosuch"], "--accelerator"),
        (["--strategy", "nosuch"], "--strategy"),
        (["--workers", "-2"], "--workers: must be a whole number >= 0"),
        (["--min-distance", "-1"], "min_distance"),
        (["--stop-after", "0"], "--stop-after: must be >= 1"),
    ],
)
def test_bad_train_options_fail_before_anything_is_featurized(
    extra, words, tmp_path, capsys, monkeypatch
):
    def no_featurizing(*args, **kwargs):
        raise AssertionError("featurized before checking the options")

    monkeypatch.setattr("cgcnn.dataset.featurize_records", no_featurizing)
    data = shared("sample-regression")
    code, _, err = _cli(capsys, "train", data, "--out", tmp_path / "run", *TINY_ARGS, *extra)
    _one_line_error(code, err, words)
    assert not (tmp_path / "run").exists()


def test_workers_zero_means_in_this_process_in_every_command(tmp_path, capsys, monkeypatch):
    import cgcnn.featurizer as featurizer

    def no_pool(*args, **kwargs):
        raise AssertionError("--workers 0 started worker processes")

    monkeypatch.setattr(featurizer, "_run_parallel", no_pool)
    monkeypatch.setattr(featurizer, "MIN_PARALLEL", 0)
    data = shared("sample-regression")
    cache = ["--cache", tmp_path / "cache", "--workers", "0"]
    assert _cli(capsys, "featurize", data, *cache)[0] == 0
    run = ["train", data, "--out", tmp_path / "run", *TINY_ARGS, "--epochs", "1", *cache]
    assert _cli(capsys, *run)[0] == 0
    ckpt = tmp_path / "run" / "best.ckpt"
    assert _cli(capsys, "predict", ckpt, data, "--out", tmp_path / "p.csv", *cache)[0] == 0


def test_min_distance_reaches_the_graphs_of_train(tmp_path, capsys):
    close = {"close": make_cif([("Na", 0, 0, 0, 1), ("Cl", 0.08, 0, 0, 1)], a=5.0)}
    cifs = {f"good{k}": make_cif(a=3.8 + 0.04 * k) for k in range(8)} | close
    data = write_cgcnn_folder(
        tmp_path / "data", cifs, "\n".join(f"{rid},{k}" for k, rid in enumerate(cifs))
    )
    argv = ["train", data, *TINY_ARGS, "--epochs", "1", "--cache", tmp_path]
    _one_line_error(*_cli(capsys, *argv, "--out", tmp_path / "a")[::2], "closer than 0.5")
    assert _cli(capsys, *argv, "--out", tmp_path / "b", "--min-distance", "0.3")[0] == 0
    recorded = load(tmp_path / "b" / "best.ckpt")[1]["graph_settings"]
    assert recorded["min_distance"] == pytest.approx(0.3)


def test_predict_with_a_good_checkpoint_still_matches_its_test_results(tmp_path):
    result = _train(tmp_path, "run", test_size=3, val_size=1)
    out = tmp_path / "p.csv"
    predict(result.checkpoint, shared("sample-regression"), out, progress=False)
    with out.open(newline="") as handle:
        predicted = {r["id"]: float(r["prediction"]) for r in csv.DictReader(handle)}
    with (tmp_path / "run" / "test_results.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            assert predicted[row["id"]] == pytest.approx(float(row["prediction"]), abs=1e-5)
