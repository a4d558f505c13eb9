"""What a person sees while work runs: epoch lines off a terminal, a bar on one, silence with
--quiet."""

from __future__ import annotations

import io
import os
import re
import sys

import pytest

from cgcnn import progress
from cgcnn.cli import main
from helpers import shared

TINY = ["--atom-fea-len", "8", "--h-fea-len", "8", "--n-conv", "1", "--ensemble", "1"]


def _train(tmp_path, *extra: str) -> list[str]:
    argv = ["train", shared("sample-regression"), "--out", tmp_path / "run", *TINY]
    argv += ["--cache", tmp_path / "cache", "--unit", "eV/atom", *extra]
    assert main([str(a) for a in argv]) == 0
    return [str(a) for a in argv]


def test_off_a_terminal_each_epoch_has_a_line_with_the_metric_and_its_unit(
    tmp_path, capsys, monkeypatch
):
    from cgcnn import training_progress

    monkeypatch.setattr(training_progress, "LINE_EVERY", 0.0)  # every epoch, however quick
    _train(tmp_path, "--epochs", "4")
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("train: epoch")]
    assert [re.match(r"train: epoch (\d)/4", line).group(1) for line in lines] == list("1234")
    for line in lines:
        assert re.search(r"val MAE [\d.]+ eV/atom, best [\d.]+ eV/atom \(epoch \d\)", line)
        assert "loss" in line and "(standardised)" in line
    assert "\r" not in err  # no bar drawn into a file


def test_off_a_terminal_lines_are_at_most_every_ten_seconds(tmp_path, capsys):
    _train(tmp_path, "--epochs", "6")  # six quick epochs: the first and the last are said
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("train: epoch")]
    assert [line.split(",")[0] for line in lines] == ["train: epoch 1/6", "train: epoch 6/6"]


def test_quiet_prints_only_the_summary(tmp_path, capsys):
    _train(tmp_path, "--epochs", "2", "--quiet")
    captured = capsys.readouterr()
    assert captured.err.strip() == "" or captured.err.startswith("cgcnn: warning")
    assert "featurize" not in captured.err and "epoch" not in captured.err
    assert captured.out.startswith("n_train ")


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_on_a_terminal_a_bar_is_drawn(tmp_path):
    import fcntl
    import pty
    import struct
    import termios

    argv = ["cgcnn", "train", shared("sample-regression"), "--out", tmp_path / "run", *TINY]
    argv = [str(a) for a in [*argv, "--cache", tmp_path / "cache", "--epochs", "2"]]
    pid, fd = pty.fork()
    if pid == 0:  # the child: a terminal 160 columns wide, as a person's would be
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
        os.execvp(sys.executable, [sys.executable, "-m", "cgcnn", *argv[1:]])
    chunks = []
    try:
        while data := os.read(fd, 4096):
            chunks.append(data)
    except OSError:
        pass
    os.waitpid(pid, 0)
    text = b"".join(chunks).decode(errors="replace")
    assert re.search(r"\rtrain: +100%\|█+\| 2/2 \[", text), text[-500:]
    assert "epoch 2/2" in text and "train: epoch" not in text  # the bar, not lines


def test_line_progress_says_count_share_and_time_left(monkeypatch):
    clock = iter([0.0, 5.0, 12.0, 13.0, 30.0])
    monkeypatch.setattr(progress.time, "perf_counter", lambda: next(clock))
    out = io.StringIO()
    bar = progress.LineProgress(40, "featurize", "structure", stream=out)  # t = 0
    bar.update(10)  # t = 5: too soon for a line
    bar.update(10)  # t = 12: a line, half done in 12 s
    bar.set_postfix_str("2 skipped")
    bar.update(10)  # t = 13: too soon
    bar.close()  # t = 30: the last line
    assert out.getvalue().splitlines() == [
        "featurize: 20/40 structures (50 %), 12 s, ~12 s left",
        "featurize: 30/40 structures (75 %), 30 s, ~10 s left; 2 skipped",
    ]
    clock = iter([0.0, 3.0, 4.0])
    quick = progress.LineProgress(40, "featurize", "structure", stream=out)
    quick.update(40)
    quick.close()  # done in 4 s: nothing said
    assert len(out.getvalue().splitlines()) == 2


def test_plural_and_durations():
    assert progress.plural(1, "structure") == "1 structure"
    assert progress.plural(3, "structure") == "3 structures"
    assert [progress.duration(s) for s in (42, 210, 9000)] == ["42 s", "3.5 min", "2.5 h"]
