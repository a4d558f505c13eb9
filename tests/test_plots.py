"""Metrics (against values worked out by hand) and the PNG figures of cgcnn.plots."""

from __future__ import annotations

import itertools
import math
import struct
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from cgcnn.errors import InputError
from cgcnn.plots import (
    classification_metrics,
    confusion_matrix,
    confusion_matrix_plot,
    learning_curve,
    parity_plot,
    read_epoch_log,
    regression_metrics,
    roc_auc,
    roc_curve,
    roc_plot,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path, min_side: int = 250) -> tuple[int, int]:
    """The file is a PNG of plausible size; returns (width, height) in pixels."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert min_side <= width <= 5000 and min_side <= height <= 5000
    assert 3_000 < len(data) < 3_000_000
    return width, height


def brute_force_auc(labels, scores) -> float:
    """P(positive scores above negative), ties one half, over all pairs."""
    pos = [s for y, s in zip(labels, scores, strict=True) if y == 1]
    neg = [s for y, s in zip(labels, scores, strict=True) if y == 0]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


# ------------------------------------------------------------------ regression


def test_regression_metrics_by_hand():
    m = regression_metrics([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 5.0])
    assert m == pytest.approx({"mae": 0.25, "rmse": 0.5, "r2": 1.0 - 1.0 / 5.0})
    m = regression_metrics([0.0, 2.0], [1.0, 1.0])  # the mean predictor: R² = 0
    assert m == pytest.approx({"mae": 1.0, "rmse": 1.0, "r2": 0.0})
    perfect = regression_metrics(np.arange(5.0), np.arange(5.0))
    assert perfect == pytest.approx({"mae": 0.0, "rmse": 0.0, "r2": 1.0})


def test_regression_metrics_nan_cases():
    constant = regression_metrics([2.0, 2.0, 2.0], [1.0, 2.0, 3.0])
    assert constant["mae"] == pytest.approx(2.0 / 3.0)
    assert math.isnan(constant["r2"])
    # pairs holding a NaN are ignored, on either side
    m = regression_metrics([1.0, np.nan, 3.0, 4.0, 9.0], [1.0, 5.0, 3.0, 5.0, np.nan])
    assert m["mae"] == pytest.approx(1.0 / 3.0)
    assert all(math.isnan(v) for v in regression_metrics([np.nan], [1.0]).values())
    assert all(math.isnan(v) for v in regression_metrics([], []).values())
    with pytest.raises(ValueError, match="differ in length"):
        regression_metrics([1.0, 2.0], [1.0])


# ------------------------------------------------------------------------- AUC


def test_roc_auc_by_hand_with_ties():
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    # a tie between a positive and a negative counts one half: (0.5 + 1 + 1 + 1) / 4
    assert roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9]) == pytest.approx(0.875)
    assert roc_auc([0, 1, 0, 1], [0.3, 0.3, 0.3, 0.3]) == pytest.approx(0.5)
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert roc_auc([1, 1, 0, 0], [0.1, 0.2, 0.3, 0.4]) == 0.0
    assert roc_auc(np.array([True, False, True]), [0.9, 0.1, 0.2]) == 1.0


def test_roc_auc_random_scores_match_pairs_and_curve():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    scores = np.round(rng.random(200) + 0.3 * labels, 1)  # rounding makes many ties
    expected = brute_force_auc(labels, scores)
    assert 0.5 < expected < 1.0
    assert roc_auc(labels, scores) == pytest.approx(expected, abs=1e-12)
    fpr, tpr, thresholds = roc_curve(labels, scores)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    assert np.isinf(thresholds[0]) and np.all(np.diff(thresholds) < 0)
    assert len(thresholds) == len(np.unique(scores)) + 1
    trapezoid = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))
    assert trapezoid == pytest.approx(expected, abs=1e-12)


def test_roc_auc_undefined_and_bad_labels():
    assert math.isnan(roc_auc([1, 1, 1], [0.2, 0.5, 0.9]))
    assert math.isnan(roc_auc([0, 0], [0.2, 0.5]))
    assert math.isnan(roc_auc([], []))
    # NaN scores are dropped: what remains is one class
    assert math.isnan(roc_auc([0, 1, 1], [np.nan, 0.4, 0.6]))
    with pytest.raises(ValueError, match="0 or 1"):
        roc_auc([0, 2, 1], [0.1, 0.2, 0.3])


# ---------------------------------------------------------------- classification


def test_classification_metrics_binary_by_hand():
    labels = [0, 1, 1, 0, 1]
    p1 = np.array([0.2, 0.7, 0.4, 0.6, 0.9])  # predictions 0 1 0 1 1: tp 2, fp 1, fn 1
    expected = {"accuracy": 0.6, "roc_auc": 5.0 / 6.0, "f1": 2.0 / 3.0}
    assert classification_metrics(labels, np.stack([1 - p1, p1], axis=1)) == pytest.approx(expected)
    assert classification_metrics(labels, p1) == pytest.approx(expected)  # (n,) = P(class 1)


def test_classification_metrics_multiclass_by_hand():
    labels = [0, 1, 2, 2]
    probs = np.array(
        [[0.7, 0.2, 0.1], [0.3, 0.4, 0.3], [0.2, 0.5, 0.3], [0.1, 0.2, 0.7]]
    )  # predictions 0 1 1 2
    m = classification_metrics(labels, probs)
    assert m["accuracy"] == pytest.approx(0.75)
    # F1 per class: 1, 2/3 (one false positive), 2/3 (one false negative)
    assert m["f1"] == pytest.approx((1.0 + 2.0 / 3.0 + 2.0 / 3.0) / 3.0)
    # one-vs-rest AUCs: 1, 2/3, 3.5/4 (a tie at 0.3)
    assert m["roc_auc"] == pytest.approx((1.0 + 2.0 / 3.0 + 0.875) / 3.0)


def test_classification_metrics_skip_absent_classes():
    labels = [0, 1, 2, 2]
    probs = np.array(
        [[0.7, 0.2, 0.1, 0.0], [0.3, 0.4, 0.3, 0.0], [0.2, 0.5, 0.3, 0.0], [0.1, 0.2, 0.7, 0.0]]
    )
    m = classification_metrics(labels, probs)  # class 3 neither present nor predicted
    assert m["roc_auc"] == pytest.approx((1.0 + 2.0 / 3.0 + 0.875) / 3.0)
    assert m["f1"] == pytest.approx(7.0 / 9.0)
    # class 3 predicted once but absent: its F1 is 0 and counts; its AUC is skipped
    probs[2] = [0.1, 0.1, 0.1, 0.7]
    m = classification_metrics(labels, probs)
    assert m["f1"] == pytest.approx((1.0 + 1.0 + 2.0 / 3.0 + 0.0) / 4.0)
    assert m["accuracy"] == pytest.approx(0.75)


def test_classification_metrics_single_class_is_nan_not_error():
    only_positive = classification_metrics([1, 1, 1], [0.9, 0.4, 0.8])
    assert only_positive["accuracy"] == pytest.approx(2.0 / 3.0)
    assert math.isnan(only_positive["roc_auc"])
    assert only_positive["f1"] == pytest.approx(0.8)  # tp 2, fn 1
    only_negative = classification_metrics([0, 0], [0.1, 0.2])
    assert only_negative["accuracy"] == 1.0
    assert math.isnan(only_negative["roc_auc"]) and math.isnan(only_negative["f1"])
    multi = classification_metrics([2, 2], np.array([[0.1, 0.1, 0.8], [0.5, 0.2, 0.3]]))
    assert multi["accuracy"] == 0.5
    assert math.isnan(multi["roc_auc"])
    assert multi["f1"] == pytest.approx((0.0 + 2.0 / 3.0) / 2.0)
    empty = classification_metrics([], np.zeros((0, 3)))
    assert all(math.isnan(v) for v in empty.values())


def test_classification_metrics_rejects_bad_labels():
    with pytest.raises(ValueError, match="3 classes"):
        classification_metrics([0, 3], np.full((2, 3), 1.0 / 3.0))
    with pytest.raises(ValueError, match="differ in length"):
        classification_metrics([0, 1, 1], np.full((2, 2), 0.5))


def test_confusion_matrix_counts():
    counts = confusion_matrix([0, 1, 2, 2, 1], [0, 2, 2, 1, 1])
    np.testing.assert_array_equal(counts, [[1, 0, 0], [0, 1, 1], [0, 1, 1]])
    assert confusion_matrix([0, 1], [1, 1], n_classes=4).shape == (4, 4)


# ---------------------------------------------------------------------- figures

LIGHTNING_CSV = """epoch,step,lr-Adam,train_loss,train_mae,val_loss,val_mae
,0,0.001,,,,
0,9,,,,0.90,0.80
0,9,,1.20,1.00,,
1,19,,,,0.60,0.55
1,19,,0.70,0.65,,
2,29,,,,0.65,0.58
2,29,,0.50,0.52,,
3,39,,0.45,,,
3,39,,0.40,0.47,,
"""


def test_read_epoch_log_merges_rows(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text(LIGHTNING_CSV)
    log = read_epoch_log(path)
    np.testing.assert_array_equal(log["epoch"], [0, 1, 2, 3])
    np.testing.assert_allclose(log["train_loss"], [1.2, 0.7, 0.5, 0.4])  # the last of epoch 3
    np.testing.assert_allclose(log["val_mae"], [0.8, 0.55, 0.58, np.nan])
    assert np.isnan(log["lr-Adam"]).all()  # its one row had no epoch


def test_learning_curve(tmp_path):
    log = tmp_path / "logs" / "metrics.csv"
    log.parent.mkdir()
    log.write_text(LIGHTNING_CSV)
    out = learning_curve(log, tmp_path / "figs" / "sub" / "curve.png")
    assert out == tmp_path / "figs" / "sub" / "curve.png"
    width, height = assert_png(out)
    assert width > height  # two panels side by side
    assert_png(learning_curve(str(log), str(tmp_path / "acc.png"), metric="val_accuracy"))


def test_learning_curve_classification_and_missing_columns(tmp_path):
    cls = tmp_path / "cls.csv"
    cls.write_text("epoch,step,train_loss_step,train_loss_epoch,val_loss,val_accuracy\n")
    with cls.open("a") as f:
        for e in range(60):  # many epochs: lines without markers
            f.write(f"{e},{e * 10 + 5},{1 / (e + 1)},,,\n")
            f.write(f"{e},{e * 10 + 9},,{1 / (e + 1)},{1.2 / (e + 1)},{1 - 1 / (e + 2)}\n")
    assert_png(learning_curve(cls, tmp_path / "cls.png"))
    no_val = tmp_path / "no_val.csv"
    no_val.write_text("epoch,step,train_loss\n0,1,1.0\n1,3,0.5\n")
    assert_png(learning_curve(no_val, tmp_path / "no_val.png"))
    no_loss = tmp_path / "no_loss.csv"
    no_loss.write_text("epoch,val_mae\n0,0.3\n1,\n2,0.2\n")
    assert_png(learning_curve(no_loss, tmp_path / "no_loss.png"))


@pytest.mark.parametrize(
    "text", ["", "epoch,step,train_loss\n", "step,train_loss\n0,1.0\n", "epoch,val_loss\n,0.5\n"]
)
def test_learning_curve_without_epochs_raises(tmp_path, text):
    path = tmp_path / "metrics.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match="no epochs"):
        learning_curve(path, tmp_path / "out.png")
    with pytest.raises(InputError):
        read_epoch_log(path)
    assert not (tmp_path / "out.png").exists()


def test_parity_plot(tmp_path):
    rng = np.random.default_rng(1)
    y = rng.normal(size=50)
    out = parity_plot(y, y + rng.normal(scale=0.1, size=50), tmp_path / "a" / "p.png", unit="eV")
    assert_png(out)
    many = rng.normal(size=20_000)
    assert_png(
        parity_plot(many, many * 0.9, tmp_path / "many.png", label="E_f", unit="eV/atom", title="t")
    )


def test_parity_plot_edge_cases(tmp_path):
    y = np.array([1.0, np.nan, 2.0, 3.0, np.inf])
    yhat = np.array([1.1, 2.0, np.nan, 2.9, 1.0])
    assert_png(parity_plot(y, yhat, tmp_path / "nan.png"))
    assert_png(parity_plot([2.0, 2.0], [2.0, 2.0], tmp_path / "constant.png"))  # R² NaN
    assert_png(parity_plot([np.nan], [1.0], tmp_path / "empty.png"))
    assert_png(parity_plot(np.ones((3, 1)), np.ones(3), tmp_path / "column.png"))


def test_roc_plot(tmp_path):
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, 300)
    probs = np.clip(0.35 * labels + rng.random(300) * 0.65, 0, 1)
    assert_png(roc_plot(labels, probs, tmp_path / "r" / "roc.png", positive_label="metal"))
    assert_png(roc_plot([1, 1, 1], [0.3, 0.6, 0.9], tmp_path / "one.png"))
    assert_png(roc_plot([0, 1, 1], [0.2, np.nan, 0.9], tmp_path / "nan.png"))


def test_confusion_matrix_plot(tmp_path):
    assert_png(confusion_matrix_plot([0, 1, 1, 0, 1], [0, 1, 0, 0, 1], tmp_path / "c" / "2.png"))
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 12, 500)
    predicted = np.where(rng.random(500) < 0.7, labels, rng.integers(0, 12, 500))
    names = [f"class {i}" for i in range(12)]
    assert_png(confusion_matrix_plot(labels, predicted, tmp_path / "12.png", class_names=names))
    assert_png(confusion_matrix_plot([1, 1], [1, 1], tmp_path / "one.png"))  # one class seen
    many = rng.integers(0, 32, 100)  # > 30 classes: empty cells stay blank
    assert_png(confusion_matrix_plot(many, many[::-1], tmp_path / "32.png"))
    assert_png(confusion_matrix_plot(["b", "a", "b"], ["b", "b", "b"], tmp_path / "str.png"))
    with pytest.raises(ValueError, match="2 classes"):
        confusion_matrix_plot([0, 2], [0, 1], tmp_path / "bad.png", class_names=["x", "y"])


def test_plots_from_threads(tmp_path):
    errors: list[BaseException] = []

    def draw(i: int) -> None:
        try:
            parity_plot(np.arange(10.0), np.arange(10.0) + i, tmp_path / f"t{i}.png")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=draw, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i in range(4):
        assert_png(tmp_path / f"t{i}.png")


def test_import_does_not_load_matplotlib():
    code = "import sys, cgcnn.plots; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------- what the axes say


@pytest.fixture
def drawn(monkeypatch):
    """The figures the plotting functions save, to read their axes."""
    import cgcnn.plots

    figures = []
    save = cgcnn.plots._save

    def keep(fig, out_png):
        figures.append(fig)
        return save(fig, out_png)

    monkeypatch.setattr(cgcnn.plots, "_save", keep)
    return figures


def _epoch_log(path: Path, val_mae: list[float], loss: list[float]) -> Path:
    rows = ["epoch,train_loss,val_loss,val_mae"]
    rows += [f"{k},{x},{x},{m}" for k, (x, m) in enumerate(zip(loss, val_mae, strict=True))]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_learning_curve_axes_name_the_loss_and_the_metric_with_its_unit(tmp_path, drawn):
    log = _epoch_log(tmp_path / "m.csv", [0.9, 0.5, 0.4], [1.0, 0.8, 0.7])
    learning_curve(log, tmp_path / "lc.png", unit="eV/atom", loss="l1")
    loss_ax, metric_ax = drawn[-1].axes
    assert loss_ax.get_ylabel() == "L1 loss (standardised targets)"
    assert metric_ax.get_ylabel() == "validation MAE (eV/atom)"
    assert loss_ax.get_xlabel() == metric_ax.get_xlabel() == "epoch"
    assert metric_ax.get_yscale() == "linear"  # 0.9 / 0.4: less than a decade
    x, _ = metric_ax.lines[0].get_data()
    assert list(x) == [1, 2, 3]  # epochs counted from 1, as training's lines count them
    assert "eV/atom" in metric_ax.get_legend().get_texts()[-1].get_text()


def test_learning_curve_spanning_a_decade_is_drawn_on_a_log_axis(tmp_path, drawn):
    log = _epoch_log(tmp_path / "m.csv", [50.0, 3.0, 0.9], [20.0, 2.0, 1.0])
    learning_curve(log, tmp_path / "lc.png", loss="mse")
    loss_ax, metric_ax = drawn[-1].axes
    assert loss_ax.get_yscale() == metric_ax.get_yscale() == "log"
    assert loss_ax.get_ylabel() == "MSE loss (standardised targets)"
    assert metric_ax.get_ylabel() == "validation MAE"  # no unit known, none invented


def test_parity_axes_and_box_carry_the_unit_and_dense_data_shows_density(tmp_path, drawn):
    rng = np.random.default_rng(0)
    true = rng.normal(size=50)
    parity_plot(true, true + 0.1, tmp_path / "p.png", label="heat_ref", unit="eV/cell")
    ax = drawn[-1].axes[0]
    assert ax.get_xlabel() == "true heat_ref (eV/cell)"
    assert ax.get_ylabel() == "predicted heat_ref (eV/cell)"
    box = next(t.get_text() for t in ax.texts if "MAE" in t.get_text())
    assert "MAE  = 0.1 eV/cell" in box and "RMSE = 0.1 eV/cell" in box
    assert len(ax.collections) == 1 and len(drawn[-1].axes) == 1  # points, no colour bar
    many = rng.normal(size=5000)
    parity_plot(many, many + rng.normal(size=5000), tmp_path / "q.png", unit="eV")
    fig = drawn[-1]
    assert len(fig.axes) == 2, "a colour bar beside the density"
    assert fig.axes[1].get_ylabel() == "crystals per hexagon"
    assert type(fig.axes[0].collections[0]).__name__ == "PolyCollection"  # hexagons


def test_per_atom_against_per_cell_is_told_apart():
    from cgcnn.metrics import per_atom_mismatch

    n = np.array([5, 10, 20, 40])
    per_atom = np.array([-3.0, -4.0, -5.0, -6.0])
    said = per_atom_mismatch(per_atom * n, per_atom + 0.1, n)  # per-cell targets
    assert said.startswith("the targets look per cell while the model predicts per atom")
    assert "MAE 94.35 as they are, 0.1 when divided" in said  # (12.1+36.1+95.1+234.1)/4
    said = per_atom_mismatch(per_atom, per_atom * n, n)
    assert said.startswith("the targets look per atom while the model predicts per cell")
    assert per_atom_mismatch(per_atom, per_atom + 0.1, n) is None  # they agree
    assert per_atom_mismatch(per_atom * 5, per_atom, [5, 5, 5, 5]) is None  # cannot tell


def test_roc_and_confusion_axes_say_what_they_count(tmp_path, drawn):
    labels = np.array([0, 1, 0, 1, 1, 0])
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7], [0.55, 0.45], [0.8, 0.2]])
    roc_plot(labels, probs[:, 1], tmp_path / "roc.png")
    ax = drawn[-1].axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("false positive rate", "true positive rate")
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(text.startswith("ROC (AUC = ") for text in legend)
    confusion_matrix_plot(labels, probs.argmax(axis=1), tmp_path / "cm.png")
    fig = drawn[-1]
    assert (fig.axes[0].get_xlabel(), fig.axes[0].get_ylabel()) == ("predicted class", "true class")
    assert fig.axes[1].get_ylabel() == "count"  # the colour bar


def test_the_comparison_figure_names_its_metric_and_keeps_maes_above_zero(tmp_path):
    import pandas as pd

    from cgcnn.comparison import summarize
    from cgcnn.comparison_report import plot_comparison

    results = pd.DataFrame(
        {"conv": ["a", "a", "b", "b"], "seed": [0, 1, 0, 1], "test_mae": [1.0, 8.0, 2.0, 2.5]}
    )
    summary = summarize(results, ["conv"], "test_mae")
    results["config"] = list(summary["config"].repeat(2))
    assert (summary["ci_low"] > 0).all()  # a symmetric t-interval of a gives 4.5 ± 44
    from matplotlib.figure import Figure

    saved = []
    original = Figure.savefig
    Figure.savefig = lambda self, *a, **k: (saved.append(self), original(self, *a, **k))[1]
    try:
        plot_comparison(results, summary, "test_mae", tmp_path / "c.png")
    finally:
        Figure.savefig = original
    ax = saved[-1].axes[0]
    assert ax.get_ylabel() == "test MAE"
    bars = [c for c in ax.containers if type(c).__name__ == "ErrorbarContainer"]
    lows = [segment[0][1] for bar in bars for segment in bar.lines[2][0].get_segments()]
    assert min(lows) > 0
