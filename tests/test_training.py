"""Training, prediction and the model: every option trains, resume is exact, outputs are right."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch

from cgcnn import Crystal, InputError, featurize
from cgcnn.elements import AtomFeatures
from cgcnn.examples import example_structures
from cgcnn.nn import CGCNN, CGCNNConfig
from cgcnn.prediction import load, predict
from cgcnn.training import train
from helpers import shared

SMALL = {"atom_fea_len": 16, "h_fea_len": 16, "n_conv": 2, "progress": False}


def _run(tmp_path, name, data=None, **kwargs):
    options = {**SMALL, "epochs": 2, "cache_dir": tmp_path / "cache", "plots": False, **kwargs}
    return train(data or shared("sample-regression"), tmp_path / name, **options)


@pytest.mark.parametrize("conv", ["gated", "shared", "edgegated", "none"])
@pytest.mark.parametrize("pooling", ["mean", "max", "sum", "attention"])
@pytest.mark.parametrize("batchnorm", [True, False])
def test_every_conv_pooling_batchnorm_trains(conv, pooling, batchnorm, tmp_path):
    result = _run(tmp_path, "run", conv=conv, pooling=pooling, batchnorm=batchnorm)
    assert result.metrics["n_train"] == 8 and result.metrics["epochs_run"] == 2
    assert np.isfinite(result.metrics["test_mae"])


@pytest.mark.parametrize("activation", ["softplus", "relu", "silu", "sigmoid", "tanh"])
def test_every_activation_trains(activation, tmp_path):
    result = _run(tmp_path, "run", activation=activation)
    assert np.isfinite(result.metrics["test_mae"])


def test_outputs_of_a_run(tmp_path):
    result = _run(tmp_path, "run", plots=True, val_ratio=0.2, test_ratio=0.2)
    out = tmp_path / "run"
    metrics = json.loads((out / "metrics.json").read_text())
    for key in (
        "checkpoint",
        "n_train",
        "n_val",
        "n_test",
        "train_seconds",
        "test_mae",
        "test_rmse",
        "test_r2",
    ):
        assert key in metrics
    assert (metrics["n_train"], metrics["n_val"], metrics["n_test"]) == (6, 2, 2)
    for name in ("best.ckpt", "last.ckpt", "metrics.csv", "learning_curve.png", "parity.png"):
        assert (out / name).is_file(), name
    with open(out / "test_results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["id", "target", "prediction"] and len(rows) == 2
    errors = [abs(float(r["target"]) - float(r["prediction"])) for r in rows]
    assert np.mean(errors) == pytest.approx(result.metrics["test_mae"], rel=1e-6)


def test_predict_reproduces_test_results(tmp_path, monkeypatch):
    result = _run(tmp_path, "run", test_ratio=0.3)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    metrics = predict(
        result.checkpoint,
        shared("sample-regression"),
        "pred.csv",
        cache_dir=tmp_path / "other-cache",
        progress=False,
    )
    assert "mae" in metrics
    with open(tmp_path / "run" / "test_results.csv", newline="") as handle:
        expected = {r["id"]: float(r["prediction"]) for r in csv.DictReader(handle)}
    with open(elsewhere / "pred.csv", newline="") as handle:
        got = {r["id"]: float(r["prediction"]) for r in csv.DictReader(handle)}
    for rid, value in expected.items():
        assert got[rid] == pytest.approx(value, abs=1e-5)


def test_classification_two_and_three_classes(tmp_path):
    result = _run(
        tmp_path,
        "two",
        shared("sample-classification"),
        task="classification",
        val_ratio=0.2,
        test_ratio=0.2,
        plots=True,
    )
    assert {"test_accuracy", "test_roc_auc", "test_f1"} <= set(result.metrics)
    with open(tmp_path / "two" / "test_results.csv", newline="") as handle:
        header = next(csv.reader(handle))
    assert header == ["id", "target", "prediction", "prob_0", "prob_1"]
    assert (tmp_path / "two" / "confusion.png").is_file()

    three = tmp_path / "three-data"
    shutil.copytree(shared("sample-regression"), three)
    ids = [line.split(",")[0] for line in (three / "id_prop.csv").read_text().splitlines() if line]
    (three / "id_prop.csv").write_text("\n".join(f"{rid},{k % 3}" for k, rid in enumerate(ids)))
    result = _run(tmp_path, "three", three, task="classification")
    model, _ = load(result.checkpoint)
    assert model.config.n_classes == 3
    with open(tmp_path / "three" / "test_results.csv", newline="") as handle:
        header = next(csv.reader(handle))
    assert header[-3:] == ["prob_0", "prob_1", "prob_2"]


def test_single_class_split_keeps_metrics_defined(tmp_path):
    data = tmp_path / "one-class"
    shutil.copytree(shared("sample-classification"), data)
    ids = [line.split(",")[0] for line in (data / "id_prop.csv").read_text().splitlines() if line]
    (data / "id_prop.csv").write_text(
        "\n".join(f"{rid},{1 if k == 0 else 0}" for k, rid in enumerate(ids))
    )
    result = _run(tmp_path, "run", data, task="classification", n_classes=2)
    assert 0.0 <= result.metrics["test_accuracy"] <= 1.0


def test_two_targets_at_once(tmp_path):
    source = shared("perov5-dev.csv")
    with open(source, newline="") as handle:
        rows = [row for _, row in zip(range(41), csv.reader(handle), strict=False)]
    small = tmp_path / "small.csv"
    with open(small, "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    result = _run(tmp_path, "run", small, target="heat_ref,dir_gap")
    assert {"test_mae_heat_ref", "test_mae_dir_gap"} <= set(result.metrics)
    with open(tmp_path / "run" / "test_results.csv", newline="") as handle:
        header = next(csv.reader(handle))
    assert header == [
        "id",
        "target_heat_ref",
        "prediction_heat_ref",
        "target_dir_gap",
        "prediction_dir_gap",
    ]


def test_resume_ends_where_an_uninterrupted_run_ends(tmp_path):
    options = {"epochs": 4, "seed": 3, "val_ratio": 0.2, "test_ratio": 0.2}
    straight = _run(tmp_path, "straight", **options)
    _run(tmp_path, "resumed", stop_after=2, **options)
    resumed = _run(tmp_path, "resumed", resume=tmp_path / "resumed" / "last.ckpt", **options)
    assert resumed.metrics["epochs_run"] == straight.metrics["epochs_run"] == 4
    assert resumed.metrics["test_mae"] == pytest.approx(straight.metrics["test_mae"], abs=1e-6)
    with open(tmp_path / "resumed" / "metrics.csv", newline="") as handle:
        epochs = {int(row["epoch"]) for row in csv.DictReader(handle)}
    assert epochs == {0, 1, 2, 3}, "the log keeps the epochs before the resume"


def test_bad_options_are_clear(tmp_path):
    with pytest.raises(
        ValueError,
        match=(
            "convolution: unknown convolution 'gcn'; choose one of: gated, shared, edgegated, "
            "threebody, none"
        ),
    ):
        _run(tmp_path, "run", conv="gcn")
    with pytest.raises(ValueError, match="unknown pooling 'avg'"):
        _run(tmp_path, "run", pooling="avg")
    with pytest.raises(InputError, match="has no targets to train on"):
        _run(tmp_path, "run", example_structures())
    fractional = tmp_path / "fractional"
    shutil.copytree(shared("sample-regression"), fractional)
    ids = [line.split(",")[0] for line in (fractional / "id_prop.csv").read_text().splitlines()]
    (fractional / "id_prop.csv").write_text("\n".join(f"{rid},0.5" for rid in ids if rid))
    with pytest.raises(InputError, match="labels must be whole numbers"):
        _run(tmp_path, "run", fractional, task="classification")


@pytest.mark.slow
def test_ddp_on_two_cpu_processes(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "cgcnn",
        "train",
        str(shared("sample-regression")),
        "--out",
        str(tmp_path / "ddp"),
        "--epochs",
        "2",
        "--atom-fea-len",
        "16",
        "--accelerator",
        "cpu",
        "--devices",
        "2",
        "--strategy",
        "ddp",
        "--cache",
        str(tmp_path / "cache"),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert np.isfinite(metrics["test_mae"])


# ------------------------------------------------------------------ the model itself


def _model(**config) -> CGCNN:
    torch.manual_seed(0)
    table = torch.from_numpy(AtomFeatures.cgcnn92().table)
    model = CGCNN(CGCNNConfig(atom_fea_len=16, h_fea_len=16, **config), table)
    # give the batch norms non-trivial running statistics, then freeze them
    model.train()
    graphs = [featurize(s).to_data() for s in example_structures().values()]
    with torch.no_grad():
        model(Batch.from_data_list(graphs))
    return model.eval()


def _predict(model, structures) -> torch.Tensor:
    return model.predict(Batch.from_data_list([featurize(s).to_data() for s in structures]))


def _rotation(seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


@pytest.mark.parametrize("conv", ["gated", "shared", "edgegated", "none"])
def test_model_invariances(conv):
    model = _model(conv=conv)
    crystal = Crystal.from_structure(example_structures()["TiO2-rutile"])
    perm = np.random.default_rng(0).permutation(crystal.num_atoms)
    moved = Crystal(
        crystal.lattice @ _rotation(1).T,
        crystal.atomic_numbers[perm],
        crystal.frac_coords[perm] + np.array([0.2, 0.7, -0.4]),
    )
    a, b = _predict(model, [crystal]), _predict(model, [moved])
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_batched_equals_one_by_one():
    model = _model()
    structures = list(example_structures().values())
    together = _predict(model, structures)
    alone = torch.cat([_predict(model, [s]) for s in structures])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)


def test_supercell_mean_pooling_same_extensive_eight_times():
    structure = example_structures()["SrTiO3-perovskite"]
    supercell = structure * (2, 2, 2)
    mean_model = _model(pooling="mean")
    torch.testing.assert_close(
        _predict(mean_model, [supercell]), _predict(mean_model, [structure]), atol=1e-5, rtol=1e-5
    )
    ext = _model(extensive=True)
    ext.ref_coef.normal_()
    torch.testing.assert_close(
        _predict(ext, [supercell]), 8 * _predict(ext, [structure]), atol=1e-4, rtol=1e-5
    )


def test_test_ratio_zero_and_split_sizes(tmp_path):
    result = _run(tmp_path, "zero", test_ratio=0.0, val_ratio=0.2)
    m = result.metrics
    assert (m["n_train"], m["n_val"], m["n_test"]) == (8, 2, 0)
    assert "test_mae" not in m
    m = _run(tmp_path, "sizes", train_size=5, val_size=3, test_size=2).metrics
    assert (m["n_train"], m["n_val"], m["n_test"]) == (5, 3, 2)


def test_no_validation_split_trains_and_keeps_the_last_epoch(tmp_path):
    result = _run(tmp_path, "noval", val_ratio=0.0, test_ratio=0.2, epochs=3)
    out = tmp_path / "noval"
    m = result.metrics
    assert (m["n_train"], m["n_val"], m["n_test"]) == (8, 0, 2)
    assert m["epochs_run"] == 3 and np.isfinite(m["test_mae"])
    assert result.checkpoint == out / "best.ckpt"
    best = torch.load(out / "best.ckpt", map_location="cpu", weights_only=False)
    last = torch.load(out / "last.ckpt", map_location="cpu", weights_only=False)
    assert best["epoch"] == last["epoch"] == 2  # the last epoch, counted from 0
    ensemble = _run(tmp_path, "noval-ensemble", val_ratio=0.0, test_ratio=0.2, ensemble=2, jobs=1)
    assert ensemble.metrics["n_val"] == 0 and np.isfinite(ensemble.metrics["test_mae"])
    assert "uncertainty_scale" not in ensemble.metrics  # nothing to calibrate it on


def test_same_seed_same_result(tmp_path):
    first = _run(tmp_path, "a", epochs=3, seed=5, test_ratio=0.3)
    second = _run(tmp_path, "b", epochs=3, seed=5, test_ratio=0.3)
    a = (tmp_path / "a" / "test_results.csv").read_text()
    b = (tmp_path / "b" / "test_results.csv").read_text()
    assert a == b and first.metrics["test_mae"] == second.metrics["test_mae"]


def test_load_errors_and_original_checkpoints(tmp_path):
    with pytest.raises(InputError, match="no such checkpoint file"):
        load(tmp_path / "missing.ckpt")
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="junk.ckpt: is not a readable checkpoint"):
        load(junk)
    original = shared("pretrained-cgcnn") / "band-gap.pth.tar"
    with pytest.raises(InputError, match="original CGCNN checkpoint: give its atom_init.json"):
        load(original)
    model, info = load(original, shared("sample-regression") / "atom_init.json")
    assert model.config.original_head and info["meta"]["original"]


def test_elements_missing_from_the_atom_table_are_named(tmp_path, monkeypatch):
    small_table = AtomFeatures.one_hot(max_z=40)
    with pytest.raises(
        InputError,
        match=r"^onehot\(max_z=40\): has no features for element\(s\) Cs \(Z=55\), Ba \(Z=56\)",
    ):
        _run(tmp_path, "run", atom_features=small_table)
    from conftest import make_cif, write_cgcnn_folder

    light = write_cgcnn_folder(
        tmp_path / "light", {f"c{k}": make_cif(a=3.8 + 0.05 * k) for k in range(6)}
    )
    result = _run(tmp_path, "ok", light, atom_features=small_table)
    heavy = tmp_path / "heavy"
    heavy.mkdir()
    for k in range(5):  # known elements first: the unknown one comes in a later chunk
        (heavy / f"a{k}.cif").write_text(make_cif(a=3.8 + 0.05 * k))
    (heavy / "z-CsCl.cif").write_text(example_structures()["CsCl"].to(fmt="cif"))
    import cgcnn.prediction

    monkeypatch.setattr(cgcnn.prediction, "PREDICT_CHUNK", 2)  # elements checked per chunk
    with pytest.raises(InputError, match=r"best.ckpt \(its atom feature table\): .*Cs \(Z=55\)"):
        predict(
            result.checkpoint,
            heavy,
            tmp_path / "p.csv",
            cache_dir=tmp_path / "cache",
            progress=False,
        )
    assert not (tmp_path / "p.csv").exists()  # no partial predictions


def test_ensemble_is_the_mean_of_its_members_with_their_spread(tmp_path, monkeypatch):
    import cgcnn.training

    # ten crystals: calibrate on what there is, to check the arithmetic
    monkeypatch.setattr(cgcnn.training, "MIN_CALIBRATION", 1)
    result = _run(tmp_path, "ens", ensemble=3, test_ratio=0.3, epochs=2)
    out = tmp_path / "ens"
    assert result.checkpoint == out / "ensemble.json"
    members = json.loads((out / "ensemble.json").read_text())["members"]
    assert members == [f"member{k}/best.ckpt" for k in range(3)]

    def rows(path):
        with open(path, newline="") as handle:
            return list(csv.DictReader(handle))

    # the spread's scale: the validation errors' RMS over the validation spread's RMS
    val = [rows(out / f"member{k}" / "val_results.csv") for k in range(3)]
    assert len(val[0]) == result.metrics["n_val"] > 0
    val_values = np.array([[float(r["prediction"]) for r in m] for m in val])  # (K, n_val)
    val_errors = val_values.mean(axis=0) - np.array([float(r["target"]) for r in val[0]])
    val_spread = val_values.std(axis=0, ddof=1)
    scale = np.sqrt(np.mean(val_errors**2) / np.mean(val_spread**2))
    assert json.loads((out / "ensemble.json").read_text())["uncertainty_scale"] == pytest.approx(
        [scale], rel=1e-6
    )
    assert result.metrics["uncertainty_scale"] == pytest.approx([scale], rel=1e-6)

    ours = rows(out / "test_results.csv")
    assert list(ours[0]) == ["id", "target", "prediction", "uncertainty"]
    per_member = [rows(out / f"member{k}" / "test_results.csv") for k in range(3)]
    for k, row in enumerate(ours):
        values = [float(m[k]["prediction"]) for m in per_member]
        assert {m[k]["id"] for m in per_member} == {row["id"]}  # one split for all
        assert float(row["prediction"]) == pytest.approx(np.mean(values), rel=1e-9)
        assert float(row["uncertainty"]) == pytest.approx(scale * np.std(values, ddof=1), rel=1e-6)
    # members differ (seeds 0, 1, 2), so the spread is not zero
    assert max(float(r["uncertainty"]) for r in ours) > 0
    errors = [abs(float(r["target"]) - float(r["prediction"])) for r in ours]
    assert result.metrics["test_mae"] == pytest.approx(np.mean(errors), rel=1e-9)
    assert len(result.metrics["member_test_mae"]) == 3

    # cgcnn predict with ensemble.json reproduces the ensemble's test predictions
    predict(out / "ensemble.json", shared("sample-regression"), tmp_path / "p.csv", progress=False)
    predicted = {r["id"]: r for r in rows(tmp_path / "p.csv")}
    for row in ours:
        assert float(predicted[row["id"]]["prediction"]) == pytest.approx(
            float(row["prediction"]), abs=1e-5
        )
        assert float(predicted[row["id"]]["uncertainty"]) == pytest.approx(
            float(row["uncertainty"]), abs=1e-5
        )

    # an ensemble.json without a scale (written before there was one) gives the raw spread;
    # a scale that does not fit the members is refused
    listing = json.loads((out / "ensemble.json").read_text())
    scale_written = listing.pop("uncertainty_scale")
    (out / "ensemble.json").write_text(json.dumps(listing))
    predict(
        out / "ensemble.json", shared("sample-regression"), tmp_path / "raw.csv", progress=False
    )
    raw = {r["id"]: r for r in rows(tmp_path / "raw.csv")}
    for row in ours:
        assert float(raw[row["id"]]["uncertainty"]) * scale_written[0] == pytest.approx(
            float(row["uncertainty"]), rel=1e-4, abs=1e-6
        )
    for bad in ([1.0, 2.0], "two"):
        (out / "ensemble.json").write_text(json.dumps({**listing, "uncertainty_scale": bad}))
        with pytest.raises(InputError, match="uncertainty.scale"):
            predict(out / "ensemble.json", shared("sample-regression"), tmp_path / "x.csv")


def test_too_few_validation_crystals_give_the_raw_spread_and_say_so(tmp_path, capsys):
    result = _run(tmp_path, "few", ensemble=2, test_ratio=0.3, epochs=1, progress=True)
    assert 0 < result.metrics["n_val"] < 20
    assert "uncertainty_scale" not in result.metrics
    assert "uncertainty_scale" not in json.loads((tmp_path / "few" / "ensemble.json").read_text())
    err = capsys.readouterr().err
    assert f"ensemble: {result.metrics['n_val']} validation crystal(s) are too few" in err
    assert "the 'uncertainty' column is the members' raw spread" in err


def test_a_final_fit_without_validation_takes_the_scale_of_a_validated_ensemble(
    tmp_path, monkeypatch, capsys
):
    import cgcnn.training

    monkeypatch.setattr(cgcnn.training, "MIN_CALIBRATION", 1)  # ten crystals
    validated = _run(tmp_path, "validated", ensemble=2, jobs=1, test_ratio=0.3, epochs=1)
    scale = validated.metrics["uncertainty_scale"]
    final = _run(
        tmp_path,
        "final",
        ensemble=2,
        jobs=1,
        val_ratio=0.0,
        test_ratio=0.3,
        epochs=1,
        uncertainty_from=tmp_path / "validated",
    )
    out = tmp_path / "final"
    assert final.metrics["n_val"] == 0 and final.metrics["uncertainty_scale"] == scale
    listing = json.loads((out / "ensemble.json").read_text())
    assert listing["uncertainty_scale"] == scale
    assert listing["uncertainty_scale_from"] == str(tmp_path / "validated")
    with open(out / "test_results.csv", newline="") as handle:
        ours = list(csv.DictReader(handle))
    members = []
    for k in range(2):
        with open(out / f"member{k}" / "test_results.csv", newline="") as handle:
            members.append({r["id"]: float(r["prediction"]) for r in csv.DictReader(handle)})
    for row in ours:
        spread = np.std([m[row["id"]] for m in members], ddof=1)
        assert float(row["uncertainty"]) == pytest.approx(scale[0] * spread, rel=1e-6)
    assert "other settings" not in capsys.readouterr().err
    # a scale from a model with other settings is taken, with a warning that names them
    _run(
        tmp_path,
        "other",
        ensemble=2,
        jobs=1,
        val_ratio=0.0,
        epochs=1,
        atom_fea_len=8,
        uncertainty_from=tmp_path / "validated" / "ensemble.json",
    )
    assert "atom_fea_len = 16 there, 8 here" in capsys.readouterr().err

    # refused before anything trains: no ensemble, a classification, a source that is not an
    # ensemble or has no scale or predicts another target
    cases = [
        ({"ensemble": 1}, tmp_path / "validated", "--uncertainty-from: scales the spread of an"),
        ({"task": "classification"}, tmp_path / "validated", "not probabilities"),
        ({}, tmp_path / "validated" / "member0", "member0/best.ckpt: is not an ensemble"),
        ({}, tmp_path / "final", "final/ensemble.json: has no uncertainty scale"),
        ({}, tmp_path / "nowhere", "nowhere: no such checkpoint file or run folder"),
        ({"target": "energy"}, tmp_path / "validated", "predicts target, this run energy"),
    ]
    listing = json.loads((out / "ensemble.json").read_text())
    del listing["uncertainty_scale"]  # as a run with --val-ratio 0 alone writes it
    (out / "ensemble.json").write_text(json.dumps(listing))
    for options, source, message in cases:
        with pytest.raises(InputError, match=re.escape(message)):
            _run(tmp_path, "refused", **{"ensemble": 2, **options, "uncertainty_from": source})
        assert not (tmp_path / "refused").exists()


def test_ensemble_classification_and_bad_values(tmp_path):
    result = _run(
        tmp_path, "cls", shared("sample-classification"), task="classification", ensemble=2
    )
    with open(tmp_path / "cls" / "test_results.csv", newline="") as handle:
        header = next(csv.reader(handle))
    assert header == ["id", "target", "prediction", "uncertainty", "prob_0", "prob_1"]
    assert 0.0 <= result.metrics["test_accuracy"] <= 1.0
    for bad in (0, -2):
        with pytest.raises(InputError, match="--ensemble: must be a whole number >= 1"):
            _run(tmp_path, "bad", ensemble=bad)
    bogus = tmp_path / "bogus.json"
    bogus.write_text("{}")
    with pytest.raises(InputError, match="not an ensemble file"):
        predict(bogus, shared("sample-regression"), tmp_path / "p.csv", progress=False)


def test_balanced_class_weights():
    from cgcnn.training import _class_weights

    labels = np.array([0] * 6 + [1] * 2)
    assert _class_weights(labels, 2, "none") is None
    weights = _class_weights(labels, 2, "balanced")
    assert weights == pytest.approx([8 / (2 * 6), 8 / (2 * 2)])
    # each class then carries the same total weight
    assert weights[0] * 6 == pytest.approx(weights[1] * 2)
    assert _class_weights(labels, 3, "balanced")[2] == 1.0  # absent class
    with pytest.raises(InputError, match="--class-weight"):
        _class_weights(labels, 2, "inverse")


def test_balanced_classification_trains(tmp_path):
    result = _run(
        tmp_path,
        "w",
        shared("sample-classification"),
        task="classification",
        class_weight="balanced",
    )
    model_info = torch.load(result.checkpoint, map_location="cpu", weights_only=True)
    weights = model_info["hyper_parameters"]["train_config"]["class_weights"]
    assert len(weights) == 2 and all(w > 0 for w in weights)


def test_ema_run_keeps_the_average_and_resumes_exactly(tmp_path):
    # batch 2: three steps an epoch, so the average differs from the weights from epoch 0 on
    options = {
        "epochs": 4,
        "seed": 3,
        "val_ratio": 0.2,
        "test_ratio": 0.2,
        "ema": 0.9,
        "batch_size": 2,
    }
    plain = _run(tmp_path, "plain", **{**options, "ema": 0.0})
    straight = _run(tmp_path, "straight", **options)
    assert straight.metrics["test_mae"] != pytest.approx(plain.metrics["test_mae"], abs=1e-9)
    last = torch.load(tmp_path / "straight" / "last.ckpt", map_location="cpu", weights_only=False)
    kept = last["state_dict"]["model.embedding.weight"]
    live = last["current_model_state"]["model.embedding.weight"]
    assert not torch.equal(kept, live), "the checkpoint holds the average, not the live weights"
    # best.ckpt, which the test is evaluated on, holds the average as its weights
    best = torch.load(tmp_path / "straight" / "best.ckpt", map_location="cpu", weights_only=False)
    assert "current_model_state" in best
    _run(tmp_path, "resumed", stop_after=2, **options)
    resumed = _run(tmp_path, "resumed", resume=tmp_path / "resumed" / "last.ckpt", **options)
    assert resumed.metrics["test_mae"] == pytest.approx(straight.metrics["test_mae"], abs=1e-6)
    with pytest.raises(InputError, match="--ema"):
        _run(tmp_path, "bad", ema=1.0)


def test_last_checkpoint_is_the_last_epoch_even_when_validation_got_worse(tmp_path):
    """best.ckpt is the best validation epoch; last.ckpt the last one, which --resume needs."""
    options = {"epochs": 4, "seed": 3, "val_ratio": 0.2, "test_ratio": 0.2, "ema": 0.9}
    # a set-up whose validation MAE stops improving after its first epochs (with torch's
    # running averages: recomputed batch-norm statistics make this one improve steadily)
    options["bn_statistics"] = 0
    result = _run(tmp_path, "run", activation="silu", loss="huber", **options)
    with open(tmp_path / "run" / "metrics.csv", newline="") as handle:
        val = [float(r["val_mae"]) for r in csv.DictReader(handle) if r["val_mae"]]
    best_epoch = int(np.argmin(val))
    assert best_epoch < 3, f"this set-up should stop improving before its last epoch: {val}"

    def epoch(name):
        return torch.load(tmp_path / "run" / name, map_location="cpu", weights_only=False)["epoch"]

    assert (epoch("best.ckpt"), epoch("last.ckpt")) == (best_epoch, 3)
    assert result.checkpoint == tmp_path / "run" / "best.ckpt"


def test_ensemble_members_in_parallel_equal_the_members_in_turn(tmp_path):
    options = {"ensemble": 2, "test_ratio": 0.3, "epochs": 2}
    # the threads each of two parallel members gets (sums over threads can round
    # differently, and 2 epochs of training amplify that to ~1e-4)
    from cgcnn.parallel import available_cores

    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, available_cores() // 2))
    try:
        in_turn = _run(tmp_path, "turn", jobs=1, **options)
    finally:
        torch.set_num_threads(threads)
    together = _run(tmp_path, "together", jobs=2, **options)
    assert in_turn.metrics["jobs"] == 1 and together.metrics["jobs"] == 2
    assert together.metrics["ensemble_seconds"] > 0
    for name in ("test_mae", "member_test_mae", "n_train", "n_test"):
        assert together.metrics[name] == pytest.approx(in_turn.metrics[name], rel=1e-4), name
    for k in range(2):
        assert (tmp_path / "together" / f"member{k}" / "best.ckpt").is_file()
    with pytest.raises(InputError, match="--jobs: must be a whole number >= 1, got 0"):
        _run(tmp_path, "bad", jobs=0, **options)
    assert not (tmp_path / "bad").exists()  # refused before anything is written
