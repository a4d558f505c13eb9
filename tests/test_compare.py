"""cgcnn compare: grid checking, resumption, the statistics and the command end to end."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cgcnn
import cgcnn.comparison as compare_module
from cgcnn import InputError
from cgcnn.cli import main
from cgcnn.comparison import parse_grid, summarize
from cgcnn.stats import ci_halfwidth, paired_t_test, t_quantile
from helpers import shared

TINY = {
    "atom_fea_len": 8,
    "h_fea_len": 8,
    "n_conv": 1,
    "epochs": 2,
    "val_ratio": 0.2,
    "test_ratio": 0.2,
}
TINY_CLI = [
    "--atom-fea-len",
    "8",
    "--h-fea-len",
    "8",
    "--n-conv",
    "1",
    "--epochs",
    "2",
    "--val-ratio",
    "0.2",
    "--test-ratio",
    "0.2",
]


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("cgcnn: error: "), err
    return lines[0]


# --------------------------------------------------------------------------- grid


def test_parse_grid_good():
    grid = parse_grid(["conv=gated,shared", "max-neighbors=8", "batchnorm=on,off"])
    assert grid == {
        "conv": ["gated", "shared"],
        "max-neighbors": ["8"],
        "batchnorm": ["on", "off"],
    }


def test_grid_values_are_converted():
    options = compare_module.grid_options()
    checked = compare_module._check_grid(
        {
            "conv": ["Gated", "none"],
            "max-neighbors": ["8", 12],
            "batchnorm": ["on", "false"],
            "lr": ["1e-3"],
            "lr_milestones": ["50/100"],
            "dropout": ["none", "0.1"],
        },
        options,
    )
    assert checked == {
        "conv": ["gated", "none"],
        "max_neighbors": [8, 12],
        "batchnorm": [True, False],
        "lr": [0.001],
        "lr_milestones": [[50, 100]],
        "dropout": [None, 0.1],
    }
    assert compare_module._check_grid({"no-batchnorm": ["on"]}, options) == {"batchnorm": [False]}


BAD_GRIDS = [
    (["conv=gated,bogus"], ["conv='bogus'", "gated, shared, edgegated, threebody, none"]),
    (["pooling=avg"], ["mean, max, sum, attention"]),
    (["activation=gelu"], ["softplus, relu, silu, sigmoid, tanh"]),
    (["optim=adagrad"], ["adamw, adam, sgd"]),
    (["scheduler=step"], ["cosine, multistep, none"]),
    (["loss=hinge"], ["huber, mse, l1"]),
    (["convolution=gated"], ["unknown option 'convolution'", "valid keys:", "conv,", "radius"]),
    (["conv="], ["malformed 'conv='", "KEY=V1,V2"]),
    (["conv"], ["malformed 'conv'"]),
    (["=gated"], ["malformed '=gated'"]),
    (["conv=gated,,none"], ["malformed"]),
    (["max_neighbors=8,x"], ["max_neighbors='x'", "whole number"]),
    (["n_conv=2.5"], ["n_conv='2.5'", "whole number"]),
    (["lr=fast"], ["lr='fast'", "a number"]),
    (["batchnorm=maybe"], ["batchnorm='maybe'", "on/off"]),
    (["pooling=mean,mean"], ["given twice"]),
    (["conv=gated", "conv=none"], ["'conv' is given twice"]),
    (["seed=1,2"], ["'seed' cannot be a grid axis"]),
    (["ensemble=1,3"], ["'ensemble' cannot be a grid axis"]),
    (["epochs=0,2"], ["must be >= 1"]),
    (["lr=-1"], ["--lr", "positive"]),
]


@pytest.mark.parametrize(("grid", "words"), BAD_GRIDS, ids=[" ".join(g) for g, _ in BAD_GRIDS])
def test_bad_grid_is_refused_before_any_run(grid, words, tmp_path, capsys, monkeypatch):
    def no_training(task):  # pragma: no cover - must not be reached
        raise AssertionError("a run started")

    monkeypatch.setattr(compare_module, "_run_one", no_training)
    out = tmp_path / "out"
    code = main(["compare", str(shared("sample-regression")), "--grid", *grid, "--out", str(out)])
    line = one_error_line(capsys)
    assert code == 2
    for word in words:
        assert word in line, (word, line)
    assert not out.exists()


def test_grid_and_option_conflict(tmp_path, capsys):
    out = tmp_path / "out"
    data = str(shared("sample-regression"))
    code = main(["compare", data, "--epochs", "3", "--grid", "epochs=2,3", "--out", str(out)])
    assert code == 2
    assert "given both in the grid and as --epochs" in one_error_line(capsys)
    assert not out.exists()


def test_api_refuses_bad_values_and_options(tmp_path):
    data = shared("sample-regression")
    with pytest.raises(InputError, match="softplus, relu"):
        cgcnn.compare(data, {"activation": ["gelu"]}, out=tmp_path / "a")
    with pytest.raises(InputError, match="not an option of train"):
        cgcnn.compare(data, {"conv": ["gated"]}, out=tmp_path / "b", epoch=3)
    with pytest.raises(InputError, match="seeds"):
        cgcnn.compare(data, {"conv": ["gated"]}, out=tmp_path / "c", seed=3)
    with pytest.raises(InputError, match="--seeds"):
        cgcnn.compare(data, {"conv": ["gated"]}, out=tmp_path / "d", seeds=0)
    assert not any(tmp_path.iterdir())


def test_cgcnn_compare_is_the_function_and_imports_no_torch():
    code = (
        "import cgcnn.comparison\nimport cgcnn\n"
        "print(callable(cgcnn.compare), cgcnn.compare is cgcnn.comparison.compare)\n"
        "import sys\nprint('torch' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["True", "True", "False"]


def test_help_lists_train_options_and_the_seeds(capsys):
    with pytest.raises(SystemExit):
        main(["compare", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for word in ("--grid", "--seeds", "--jobs", "--max-neighbors", "--extensive", "--split"):
        assert word in text, word
    assert "without --split it also draws the random split" in text
    assert "--resume" not in text and "--seed " not in text


# --------------------------------------------------------------------------- statistics


def test_t_quantile_and_ci_halfwidth_against_hand_values():
    # t(0.975, 4) = 2.7764451 (tables); std of 1..5 is sqrt(2.5)
    assert t_quantile(0.975, 4) == pytest.approx(2.7764451052, rel=1e-9)
    expected = 2.7764451052 * math.sqrt(2.5) / math.sqrt(5)  # 1.96324
    assert ci_halfwidth([1, 2, 3, 4, 5]) == pytest.approx(expected, rel=1e-9)
    assert math.isnan(ci_halfwidth([1.0]))


def test_paired_t_test_against_a_hand_computed_value():
    a = [1.0, 2.0, 3.0, 4.0]
    b = [0.5, 1.0, 2.5, 3.0]
    # d = 0.5, 1, 0.5, 1: mean 0.75, sd sqrt(1/12), t = 0.75 / (sd / 2) = 3 sqrt(3)
    t, p = paired_t_test(a, b)
    assert t == pytest.approx(3 * math.sqrt(3), rel=1e-9)
    # t with 3 degrees of freedom: CDF(t) = 1/2 + (x / (1 + x^2) + atan x) / pi, x = t / sqrt 3
    x = t / math.sqrt(3)
    cdf = 0.5 + (x / (1 + x * x) + math.atan(x)) / math.pi
    assert p == pytest.approx(2 * (1 - cdf), rel=1e-9)  # 0.013848
    assert paired_t_test(a, a) == (0.0, 1.0)
    assert paired_t_test(a, [v - 1 for v in a])[1] == 0.0
    assert all(math.isnan(v) for v in paired_t_test([1.0], [2.0]))


def _synthetic(values: dict[str, list[float]]) -> pd.DataFrame:
    rows = [
        {"conv": name, "seed": seed, "test_mae": v, "train_seconds": 1.0 + seed}
        for name, vs in values.items()
        for seed, v in enumerate(vs)
    ]
    return pd.DataFrame(rows)


def test_summary_ranks_and_tests_against_the_best():
    rng = np.random.default_rng(0)
    base = 1 + 0.1 * rng.standard_normal(5)
    results = _synthetic(
        {
            "gated": list(base),
            "shared": list(base + 0.5 + 0.01 * rng.standard_normal(5)),  # clearly worse
            "none": list(base + 0.02 * rng.standard_normal(5)),  # the same but for noise
            "copy": list(base),  # identical to the best
        }
    )
    summary = summarize(results, ["conv"], "test_mae").set_index("conv")
    assert list(summary.columns[:11]) == [
        "metric",
        "n",
        "mean",
        "std",
        "ci95",
        "ci_low",
        "ci_high",
        "rank",
        "p_vs_best",
        "significant",
        "seconds",
    ]
    gated = summary.loc["gated"]
    assert gated["n"] == 5
    assert gated["mean"] == pytest.approx(base.mean())
    assert gated["std"] == pytest.approx(base.std(ddof=1))
    assert gated["ci95"] == pytest.approx(2.7764451052 * base.std(ddof=1) / math.sqrt(5))
    assert 0 < gated["ci_low"] < gated["mean"] < gated["ci_high"]  # an MAE: never below 0
    assert gated["seconds"] == pytest.approx(3.0)
    best = summary[summary["significant"] == "best"].index.tolist()
    assert len(best) == 1 and best[0] in ("gated", "copy", "none")
    assert summary.loc["shared", "significant"] == "yes"
    assert summary.loc["shared", "p_vs_best"] < 1e-4
    assert summary.loc["shared", "rank"] == 4
    others = [c for c in ("gated", "copy", "none") if c != best[0]]
    assert all(summary.loc[c, "significant"] == "no" for c in others)
    assert math.isnan(summary.loc[best[0], "p_vs_best"])


def test_higher_is_better_metrics_rank_the_other_way():
    results = _synthetic({"a": [0.70, 0.72, 0.71], "b": [0.90, 0.91, 0.92]})
    results = results.rename(columns={"test_mae": "test_roc_auc"})
    summary = summarize(results, ["conv"], "test_roc_auc").set_index("conv")
    assert summary.loc["b", "rank"] == 1 and summary.loc["b", "significant"] == "best"
    assert summary.loc["a", "rank"] == 2 and summary.loc["a", "significant"] == "yes"


# --------------------------------------------------------------------------- runs


def test_cli_end_to_end_and_rerun_reads_only(tmp_path, capsys):
    out = tmp_path / "cmp"
    cache = tmp_path / "cache"
    argv = ["compare", str(shared("sample-regression")), "--grid", "conv=gated,none"]
    argv += ["--seeds", "2", "--out", str(out), "--cache", str(cache), *TINY_CLI]
    assert main(argv) == 0
    printed = capsys.readouterr()
    assert "test_mae" in printed.out and "[4/4]" in printed.err
    for name in ("results.csv", "summary.csv", "comparison.png", "learning_curves.png"):
        assert (out / name).is_file(), name
    with open(out / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4
    assert {(r["conv"], r["seed"]) for r in rows} == {
        (c, s) for c in ("gated", "none") for s in ("0", "1")
    }
    for key in ("test_mae", "best_val_mae", "train_seconds", "n_params", "epochs"):
        assert rows[0][key] != "", key
    assert int(rows[0]["n_params"]) > int(rows[2]["n_params"])  # gated has conv weights
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["conv"]) == ["gated", "none"]
    assert set(summary["significant"]) <= {"best", "yes", "no", "n/a"}
    report = (out / "report.md").read_text()
    assert "cgcnn compare" in report and "--grid conv=gated,none" in report
    assert "comparison.png" in report and "| conv |" in report
    assert "random" in report  # no split file: the seed draws the split
    mtimes = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/*/metrics.json")}
    assert len(mtimes) == 4
    assert main(argv) == 0
    assert "4 finished run(s) reused" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in out.glob("runs/*/*/metrics.json")} == mtimes


def test_interrupted_run_is_redone_and_only_it(tmp_path, monkeypatch):
    out = tmp_path / "cmp"
    data = shared("sample-regression")
    options = {**TINY, "cache_dir": tmp_path / "cache", "verbose": False}
    first = cgcnn.compare(data, {"pooling": ["mean", "sum"]}, seeds=2, out=out, **options)
    assert list(first["pooling"]) == ["mean", "sum"] and list(first["n"]) == [2, 2]
    assert len(first.attrs["results"]) == 4
    interrupted = out / "runs" / "pooling-sum" / "seed1"
    (interrupted / "metrics.json").unlink()  # as if the process died during training
    (interrupted / "stale-file").write_text("left over")
    kept = {
        p: p.stat().st_mtime_ns
        for p in out.glob("runs/*/*/metrics.json")
        if p.parent != interrupted
    }
    started = []
    real = compare_module._run_one
    monkeypatch.setattr(compare_module, "_run_one", lambda task: started.append(task) or real(task))
    again = cgcnn.compare(data, {"pooling": ["mean", "sum"]}, seeds=2, out=out, **options)
    assert [(t["config"], t["seed"]) for t in started] == [({"pooling": "sum"}, 1)]
    assert (interrupted / "metrics.json").is_file()
    assert not (interrupted / "stale-file").exists()  # redone from scratch
    assert {p: p.stat().st_mtime_ns for p in kept} == kept
    assert list(again["n"]) == [2, 2]
    # the same folder with other settings is refused rather than mixed
    with pytest.raises(InputError, match="other settings"):
        cgcnn.compare(data, {"pooling": ["mean"]}, seeds=1, out=out, **{**options, "lr": 1e-2})
    assert len(started) == 1
    # an option left at its default is checked against what the run recorded, so runs made
    # when that default was another one are not mixed in either
    hparams = out / "runs" / "pooling-mean" / "seed0" / "hparams.yaml"
    assert "conv: edgegated" in hparams.read_text()
    hparams.write_text(hparams.read_text().replace("conv: edgegated", "conv: gated"))
    with pytest.raises(InputError, match=r"other settings \(conv\)"):
        cgcnn.compare(data, {"pooling": ["mean", "sum"]}, seeds=2, out=out, **options)
    again = cgcnn.compare(data, {"pooling": ["mean"]}, seeds=1, out=out, conv="gated", **options)
    assert len(started) == 1 and list(again["n"]) == [1]


def test_parallel_jobs_and_classification(tmp_path):
    source = shared("sample-classification")
    out = tmp_path / "cmp"
    summary = cgcnn.compare(
        source,
        {"activation": ["relu", "tanh"]},
        seeds=1,
        out=out,
        jobs=2,
        task="classification",
        cache_dir=tmp_path / "cache",
        verbose=False,
        **TINY,
    )
    assert summary["metric"].iloc[0] in ("test_roc_auc", "test_accuracy")
    results = pd.read_csv(out / "results.csv")
    assert len(results) == 2 and set(results["activation"]) == {"relu", "tanh"}
    for run in results["run_dir"]:
        options = json.loads(Path(run, "options.json").read_text())
        assert options["task"] == "classification"


def test_intervals_stay_within_the_metric_range():
    from cgcnn.stats import ci_halfwidth, confidence_interval

    low, high = confidence_interval([1.0, 8.0], "test_mae")  # two seeds, far apart
    assert 0 < low < np.sqrt(8.0) < high  # around the geometric mean, never below 0
    mean_log = np.log([1.0, 8.0]).mean()
    half = ci_halfwidth(np.log([1.0, 8.0]))
    assert (low, high) == pytest.approx((np.exp(mean_log - half), np.exp(mean_log + half)))
    low, high = confidence_interval([0.90, 0.99, 0.95], "test_roc_auc")
    assert 0 < low < 0.95 < high < 1
    values = np.array([0.2, -0.1, 0.4])
    half = ci_halfwidth(values)
    assert confidence_interval(values, "test_r2") == pytest.approx(
        (values.mean() - half, values.mean() + half)
    )
    assert confidence_interval([0.0, 3.0], "test_mae")[0] == 0.0  # a zero: clipped
    assert all(np.isnan(confidence_interval([1.0], "test_mae")))
