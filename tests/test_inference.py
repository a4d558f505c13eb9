"""cgcnn.load: a trained model in memory, equal to cgcnn predict, on every kind of input."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

import cgcnn
from cgcnn.cli import main
from cgcnn.errors import InputError
from helpers import shared

TINY = ["--atom-fea-len", "8", "--h-fea-len", "8", "--n-conv", "2", "--epochs", "3"]


def _train(tmp_path: Path, name: str, *extra: str) -> Path:
    out = tmp_path / name
    data = shared("sample-regression")
    argv = ["train", data, "--out", out, *TINY, "--cache", tmp_path / "cache", *extra]
    assert main([str(a) for a in argv]) == 0
    return out


def _cli_predictions(tmp_path, checkpoint, data, *extra) -> dict[str, dict[str, float]]:
    out = tmp_path / "cli.csv"
    argv = ["predict", checkpoint, data, "--out", out, "--cache", tmp_path / "cache", *extra]
    assert main([str(a) for a in argv]) == 0
    with out.open(newline="") as handle:
        return {row["id"]: row for row in csv.DictReader(handle)}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("runs")
    return {
        "single": _train(tmp, "single", "--ensemble", "1", "--readout", "pooled") / "best.ckpt",
        "ensemble": _train(tmp, "ensemble", "--ensemble", "2", "--jobs", "1") / "ensemble.json",
        "extensive": _train(tmp, "extensive", "--ensemble", "1", "--extensive", "--unit", "eV/cell")
        / "best.ckpt",
    }


@pytest.mark.parametrize("kind", ["single", "ensemble", "extensive"])
def test_predict_equals_the_command_line(kind, runs, tmp_path, capsys):
    data = shared("sample-regression")
    frame = cgcnn.load(runs[kind]).predict(data)
    expected = _cli_predictions(tmp_path, runs[kind], data)
    capsys.readouterr()
    assert list(frame["id"]) == list(expected)
    for _, row in frame.iterrows():
        want = expected[row["id"]]
        assert row["target"] == pytest.approx(float(want["prediction"]), rel=1e-6, abs=1e-6)
        if kind == "ensemble":
            assert row["uncertainty"] == pytest.approx(float(want["uncertainty"]), rel=1e-5)


def test_an_original_checkpoint_equals_the_command_line(tmp_path, capsys):
    checkpoint = shared("pretrained-cgcnn/formation-energy-per-atom.pth.tar")
    data = shared("sample-regression")
    atom_init = shared("atom_init.json")
    frame = cgcnn.load(checkpoint, atom_init).predict(data)
    expected = _cli_predictions(tmp_path, checkpoint, data, "--atom-init", atom_init)
    capsys.readouterr()
    for _, row in frame.iterrows():
        assert row["target"] == pytest.approx(float(expected[row["id"]]["prediction"]), rel=1e-6)
    with pytest.raises(InputError, match="give its atom_init.json"):
        cgcnn.load(checkpoint)


def test_structures_atoms_and_paths_give_the_same_numbers(runs):
    from ase.io import read as ase_read
    from pymatgen.core import Structure

    folder = shared("sample-regression")
    files = sorted(folder.glob("*.cif"))[:4]
    model = cgcnn.load(runs["single"])
    from_paths = model.predict(files)
    from_structures = model.predict([Structure.from_file(f) for f in files])
    from_atoms = model.predict([ase_read(f) for f in files])
    one = model.predict(Structure.from_file(files[0]))
    # pymatgen's adaptor returns a subclass of Atoms; mixed in a list with paths and structures
    from pymatgen.io.ase import AseAtomsAdaptor

    adapted = AseAtomsAdaptor.get_atoms(Structure.from_file(files[2]))
    mixed = model.predict([files[0], Structure.from_file(files[1]), adapted])
    np.testing.assert_allclose(mixed["target"], from_paths["target"][:3], rtol=1e-6)
    assert list(from_paths["id"]) == [f.stem for f in files]
    assert list(from_structures["id"]) == ["0", "1", "2", "3"]
    np.testing.assert_allclose(from_structures["target"], from_paths["target"], rtol=1e-6)
    np.testing.assert_allclose(from_atoms["target"], from_paths["target"], rtol=1e-6)
    assert one["target"].iloc[0] == pytest.approx(from_paths["target"].iloc[0], rel=1e-6)


def test_nothing_is_written_to_disk(runs, tmp_path, monkeypatch):
    for name in ("HOME", "XDG_CACHE_HOME", "CGCNN_CACHE_DIR", "TMPDIR"):
        folder = tmp_path / name
        folder.mkdir()
        monkeypatch.setenv(name, str(folder))
    monkeypatch.chdir(tmp_path)
    model = cgcnn.load(runs["extensive"])
    model.predict(shared("sample-regression"))
    model.embed(shared("sample-regression"))
    model.contributions(shared("sample-regression"))
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert written == []


def test_contributions_sum_to_the_prediction_and_follow_the_atoms(runs):
    from pymatgen.core import Structure

    folder = shared("sample-regression")
    model = cgcnn.load(runs["extensive"])
    sites = model.contributions(folder)
    predicted = model.predict(folder).set_index("id")["target"]
    sums = sites.groupby("id")["target"].sum()
    for rid, total in sums.items():
        assert total == pytest.approx(predicted[rid], rel=1e-5)
    structure = Structure.from_file(sorted(folder.glob("*.cif"))[0])
    order = np.random.default_rng(0).permutation(len(structure))
    shuffled = Structure.from_sites([structure[int(k)] for k in order])
    before = model.contributions(structure)
    after = model.contributions(shuffled)
    assert list(after["element"]) == [before["element"][int(k)] for k in order]
    np.testing.assert_allclose(after["target"], before["target"].to_numpy()[order], atol=1e-5)
    np.testing.assert_allclose(after[["a", "b", "c"]], before[["a", "b", "c"]].to_numpy()[order])


def test_a_pooled_model_says_it_has_no_contributions(runs):
    with pytest.raises(InputError, match="has no per-site contributions: it pools the atoms"):
        cgcnn.load(runs["single"]).contributions(shared("sample-regression"))


def test_embeddings_and_the_earlier_unpacking(runs):
    model = cgcnn.load(runs["single"])
    vectors = model.embed(shared("sample-regression"))
    assert vectors.shape == (10, 8) and np.isfinite(vectors).all()
    module, info = cgcnn.load(runs["single"])
    assert module.config.atom_fea_len == 8 and info["graph_settings"]["max_neighbors"] == 12
    assert "model" in repr(model) and "regression" in repr(model)


def test_predict_writes_embeddings_and_contributions(runs, tmp_path, capsys):
    data = shared("sample-regression")
    out = tmp_path / "p.csv"
    argv = ["predict", runs["extensive"], data, "--out", out, "--cache", tmp_path / "cache"]
    argv += ["--embeddings", tmp_path / "e.npz", "--contributions", tmp_path / "c.csv"]
    assert main([str(a) for a in argv]) == 0
    saved = np.load(tmp_path / "e.npz")
    assert saved["embeddings"].shape == (10, 8) and len(saved["ids"]) == 10
    model = cgcnn.load(runs["extensive"])
    np.testing.assert_allclose(saved["embeddings"], model.embed(data), rtol=1e-6)
    with (tmp_path / "c.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {"id", "site", "element", "a", "b", "c", "target"} <= set(rows[0])
    argv[argv.index("--embeddings") + 1] = tmp_path / "e.csv"
    assert main([str(a) for a in argv]) == 0
    assert (tmp_path / "e.csv").read_text().startswith("id,e0,e1")
    code = main([str(a) for a in ["predict", runs["single"], data, "--device", "nosuch"]])
    assert code == 2 and "--device: cannot use 'nosuch'" in capsys.readouterr().err


def test_a_site_readout_model_has_contributions_that_average_to_its_prediction(tmp_path):
    data = shared("sample-regression")
    run = _train(tmp_path, "site", "--ensemble", "1", "--readout", "site")
    model = cgcnn.load(run / "best.ckpt")
    assert model.models[0].config.readout == "site"
    sites = model.contributions(data)
    assert sites.attrs["pooling"] == "mean"
    predicted = model.predict(data).set_index("id")["target"]
    for rid, mean in sites.groupby("id")["target"].mean().items():
        assert mean == pytest.approx(predicted[rid], rel=1e-5)
    # the test split's numbers in test_results.csv come from the same model
    with (run / "test_results.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            assert float(row["prediction"]) == pytest.approx(predicted[row["id"]], rel=1e-5)


def test_an_original_model_has_no_embeddings_here():
    checkpoint = shared("pretrained-cgcnn/formation-energy-per-atom.pth.tar")
    model = cgcnn.load(checkpoint, shared("atom_init.json"))
    with pytest.raises(InputError, match="reads the original's own graphs"):
        model.embed(shared("sample-regression"))


def test_the_unit_given_in_training_is_in_the_tables(runs):
    data = shared("sample-regression")
    model = cgcnn.load(runs["extensive"])
    assert model.units == {"target": "eV/cell"}
    assert model.predict(data).attrs["units"] == {"target": "eV/cell"}
    assert model.contributions(data).attrs["units"] == {"target": "eV/cell"}
    assert cgcnn.load(runs["single"]).predict(data).attrs["units"] == {"target": ""}


def test_a_unit_per_target_is_required(tmp_path, capsys):
    data = shared("sample-regression")
    argv = ["train", data, "--out", tmp_path / "two", *TINY, "--ensemble", "1", "--unit", "eV,eV"]
    assert main([str(a) for a in argv]) == 2
    assert "--unit: gives 2 unit(s) for 1 target(s) (target)" in capsys.readouterr().err


def test_embeddings_as_parquet_or_a_clear_line_before_any_work(runs, tmp_path, capsys):
    import importlib.util

    data = shared("sample-regression")
    out = tmp_path / "p.csv"
    argv = ["predict", runs["single"], data, "--out", out, "--cache", tmp_path / "cache"]
    argv += ["--embeddings", tmp_path / "e.parquet"]
    code = main([str(a) for a in argv])
    if importlib.util.find_spec("pyarrow") is None:
        assert code == 2 and "writing Parquet needs pyarrow" in capsys.readouterr().err
        assert not out.exists()  # refused before predicting
        return
    import pandas as pd

    assert code == 0
    table = pd.read_parquet(tmp_path / "e.parquet")
    np.testing.assert_allclose(
        table.drop(columns="id").to_numpy(), cgcnn.load(runs["single"]).embed(data), rtol=1e-6
    )


def test_predict_warns_when_targets_are_per_cell_and_the_model_per_atom(runs, tmp_path, capsys):
    """The model learnt sample-regression's numbers as they are (an intensive model); the
    same crystals with their targets multiplied by their atom counts look per cell."""
    import shutil

    from pymatgen.core import Structure

    source = Path(shared("sample-regression"))
    folder = tmp_path / "per-cell"
    shutil.copytree(source, folder)
    rows = [line.split(",") for line in (source / "id_prop.csv").read_text().split()]
    scaled = [
        f"{rid},{float(y) * len(Structure.from_file(source / f'{rid}.cif'))}" for rid, y in rows
    ]
    (folder / "id_prop.csv").write_text("\n".join(scaled) + "\n")
    _cli_predictions(tmp_path, runs["single"], folder)
    assert "warning: the targets look per cell while the model predicts per atom" in (
        capsys.readouterr().err
    )
    _cli_predictions(tmp_path, runs["single"], source)
    assert "per cell" not in capsys.readouterr().err


def test_predict_takes_a_run_folder(runs, tmp_path, capsys):
    data = shared("sample-regression")
    single = runs["single"].parent  # holds best.ckpt and last.ckpt
    ensemble = runs["ensemble"].parent  # holds ensemble.json and member folders
    assert _cli_predictions(tmp_path, single, data) == _cli_predictions(
        tmp_path, runs["single"], data
    )
    via_folder = _cli_predictions(tmp_path, ensemble, data)
    assert "uncertainty" in next(iter(via_folder.values()))  # the ensemble, not a member
    assert via_folder == _cli_predictions(tmp_path, runs["ensemble"], data)
    assert main(["predict", str(tmp_path / "cache"), str(data)]) == 2
    assert "is a folder without ensemble.json, best.ckpt or last.ckpt" in capsys.readouterr().err


def test_a_missing_checkpoint_is_answered_before_torch_is_imported(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys; from cgcnn.cli import main; "
        f"status = main(['predict', {str(tmp_path / 'nope.ckpt')!r}, 'data']); "
        "print(status, 'torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.split() == ["2", "False"]
    assert "nope.ckpt: no such checkpoint file or run folder" in done.stderr
