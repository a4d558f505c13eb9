"""The command line: one clear error line and exit status 2; --skip-invalid; a light --help."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from cgcnn.cli import main
from conftest import BAD_CIFS, GOOD_CIF, make_cif, write_cgcnn_folder
from helpers import shared


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *words: str) -> None:
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("cgcnn: error: "), err
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0], (word, lines[0])


@pytest.mark.parametrize("case", sorted(BAD_CIFS))
def test_each_bad_cif_is_one_clear_line(case, tmp_path, cache_dir, capsys):
    content, words = BAD_CIFS[case]
    folder = write_cgcnn_folder(tmp_path / "data", {"good": GOOD_CIF, "bad": content})
    code, _, err = run(capsys, "featurize", folder, "--cache", cache_dir)
    assert_one_line_error(code, err, str(folder / "bad.cif"), words)


@pytest.mark.parametrize(
    ("rows", "words"),
    [
        ("good,1.0\nmissing,2.0", ["id 'missing' has no structure file missing.cif"]),
        ("good,1.0\ngood,2.0", ["duplicate id 'good'"]),
        ("good,abc", ["target 'abc' is not a number"]),
        ("good,nan", ["target 'nan' is not finite"]),
        ("good,inf", ["target 'inf' is not finite"]),
        ("good,-Infinity", ["is not finite"]),
        ("good,1.0\nother,2.0,3.0", ["has 2 target(s), earlier rows have 1"]),
    ],
)
def test_bad_id_prop_rows(rows, words, tmp_path, cache_dir, capsys):
    folder = write_cgcnn_folder(tmp_path / "data", {"good": GOOD_CIF, "other": GOOD_CIF}, rows)
    code, _, err = run(capsys, "featurize", folder, "--cache", cache_dir)
    assert_one_line_error(code, err, "id_prop.csv", *words)


@pytest.mark.parametrize(
    ("option", "value", "words"),
    [
        ("--radius", "0", "radius: must be a positive number"),
        ("--radius", "-2", "radius: must be a positive number"),
        ("--max-neighbors", "0", "max_neighbors: must be >= 1"),
        ("--workers", "-1", "--workers: must be a whole number >= 0"),
    ],
)
def test_bad_settings(option, value, words, tmp_path, cache_dir, capsys):
    folder = write_cgcnn_folder(tmp_path / "data", {"good": GOOD_CIF})
    code, _, err = run(capsys, "featurize", folder, "--cache", cache_dir, option, value)
    assert_one_line_error(code, err, words)


def test_missing_source_and_unknown_type(tmp_path, cache_dir, capsys):
    code, _, err = run(capsys, "featurize", tmp_path / "nowhere", "--cache", cache_dir)
    assert_one_line_error(code, err, "nowhere", "no such file or directory")
    odd = tmp_path / "data.parquet"
    odd.write_bytes(b"PAR1")
    code, _, err = run(capsys, "featurize", odd, "--cache", cache_dir)
    assert_one_line_error(code, err, "data.parquet", "unknown file type")
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run(capsys, "featurize", empty, "--cache", cache_dir)
    assert_one_line_error(code, err, "has no id_prop.csv and no structure files")


def test_skip_invalid_on_a_mixed_folder(tmp_path, cache_dir, capsys, monkeypatch):
    cifs = {"good1": GOOD_CIF, "good2": make_cif(a=4.1)}
    cifs.update({f"bad-{name}": content for name, (content, _) in BAD_CIFS.items()})
    rows = "\n".join(f"{rid},1.0" for rid in cifs) + "\nmissing,1.0\ngood1,3.0\nnotnum,x"
    folder = write_cgcnn_folder(tmp_path / "data", cifs, rows)
    (folder / "notnum.cif").write_text(GOOD_CIF)
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "featurize", folder, "--cache", cache_dir, "--skip-invalid")
    assert code == 0
    n_bad = len(BAD_CIFS) + 3
    assert f"2 structures ready: 2 featurized, 0 reused from the cache, {n_bad} skipped" in out
    with open(tmp_path / "cgcnn-skipped.csv", newline="") as handle:
        skipped = list(csv.DictReader(handle))
    assert len(skipped) == n_bad
    ids = {row["id"] for row in skipped}
    assert ids == {f"bad-{name}" for name in BAD_CIFS} | {"missing", "good1", "notnum"}
    assert all(row["reason"] for row in skipped)
    # the good graphs were cached: a second run reuses them
    code, out, _ = run(capsys, "featurize", folder, "--cache", cache_dir, "--skip-invalid")
    assert "2 structures ready: 0 featurized, 2 reused" in out


def test_failure_half_way_keeps_the_cache(tmp_path, cache_dir, capsys):
    cifs = {f"ok{k}": make_cif(a=3.8 + 0.01 * k) for k in range(5)}
    cifs["zz-bad"] = BAD_CIFS["junk"][0]
    folder = write_cgcnn_folder(tmp_path / "data", cifs)
    code, _, _ = run(capsys, "featurize", folder, "--cache", cache_dir)
    assert code == 2
    (folder / "zz-bad.cif").write_text(make_cif(a=4.5))
    code, out, _ = run(capsys, "featurize", folder, "--cache", cache_dir)
    assert code == 0
    assert "6 structures ready: 1 featurized, 5 reused" in out


def test_debug_shows_the_traceback(tmp_path, cache_dir):
    folder = write_cgcnn_folder(tmp_path / "data", {"bad": b""})
    cmd = [sys.executable, "-m", "cgcnn", "featurize", str(folder), "--cache", str(cache_dir)]
    plain = subprocess.run(cmd, capture_output=True, text=True)
    assert plain.returncode == 2
    assert "Traceback" not in plain.stderr and "bad.cif" in plain.stderr
    debug = subprocess.run([*cmd[:3], "--debug", *cmd[3:]], capture_output=True, text=True)
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_example_and_reuse(cache_dir, capsys):
    code, out, _ = run(capsys, "featurize", "--example", "--cache", cache_dir)
    assert code == 0
    assert "10 structures ready: 10 featurized, 0 reused" in out
    assert "SrTiO3-perovskite" in out
    code, out, _ = run(capsys, "featurize", "--example", "--cache", cache_dir)
    assert "10 structures ready: 0 featurized, 10 reused" in out


def test_help_imports_neither_torch_nor_pymatgen():
    code = (
        "import sys\n"
        "from cgcnn.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "try:\n    main(['featurize', '--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = {'torch', 'pymatgen', 'numpy', 'torch_geometric'}\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in heavy)\n"
        "print('HEAVY', loaded)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert "HEAVY []" in result.stdout
    assert "featurize" in result.stdout and "--max-neighbors" in result.stdout


def test_featurize_csv_with_targets(tmp_path, cache_dir, capsys):
    source = shared("perov5-dev.csv")
    with open(source, newline="") as handle:
        rows = [row for _, row in zip(range(30), csv.reader(handle), strict=False)]
    small = tmp_path / "small.csv"
    with open(small, "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    code, out, _ = run(
        capsys, "featurize", small, "--target", "heat_ref,dir_gap", "--cache", cache_dir
    )
    assert code == 0, out
    assert "29 structures ready: 29 featurized" in out
    code, _, err = run(capsys, "featurize", small, "--target", "nope", "--cache", cache_dir)
    assert_one_line_error(code, err, "small.csv", "no column 'nope'", "heat_ref")


def test_cli_reads_a_path(tmp_path: Path, cache_dir, capsys):
    cif = tmp_path / "one.cif"
    cif.write_text(GOOD_CIF)
    code, out, _ = run(capsys, "featurize", cif, "--cache", cache_dir, "--show")
    assert code == 0
    assert "one" in out and "1 structure ready" in out


def test_import_cgcnn_is_light():
    code = (
        "import sys, cgcnn\n"
        "print(sorted(m for m in ('torch', 'pymatgen') if m in sys.modules))\n"
        "cgcnn.Crystal\n"
        "print('torch' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["[]", "False"]


def test_preset_original_fills_defaults_but_explicit_options_win():
    from cgcnn.cli import apply_preset, build_parser

    parser = build_parser()
    args = parser.parse_args(["train", "x", "--preset", "original", "--epochs", "5"])
    apply_preset(args, args.parser)
    assert (args.optim, args.lr, args.batch_size, args.loss, args.patience) == (
        "sgd",
        0.01,
        256,
        "mse",
        0,
    )
    assert args.epochs == 5  # given explicitly
    # the original's model: one, without a weight average, on the 92 features
    assert (args.ensemble, args.ema, args.atom_features) == (1, 0.0, "cgcnn92")
    assert (args.conv, args.activation) == ("gated", "softplus")  # the paper's eq. 4
    plain = parser.parse_args(["train", "x"])
    apply_preset(plain, plain.parser)
    assert (plain.optim, plain.epochs, plain.batch_size, plain.patience) == ("adamw", 100, 32, 30)
    assert (plain.ema, plain.atom_features) == (0.99, "cgcnn92+onehot")
    assert (plain.conv, plain.activation) == ("edgegated", "silu")
    from cgcnn.cli import _ensemble_size

    assert _ensemble_size(plain) == 4 and _ensemble_size(args) == 1
    resumed = parser.parse_args(["train", "x", "--resume", "OUT/last.ckpt"])
    assert _ensemble_size(resumed) == 1  # a resume continues one model
    assert _ensemble_size(parser.parse_args(["train", "x", "--ensemble", "3"])) == 3
    # compare has no --ensemble: the preset fills in what the command has
    compare = parser.parse_args(["compare", "x", "--grid", "conv=gated", "--preset", "original"])
    apply_preset(compare, compare.parser)
    assert (compare.batch_size, compare.atom_features) == (256, "cgcnn92")


def test_train_command_defaults_are_the_python_defaults():
    """`cgcnn train DATA` and `cgcnn.train(DATA)` train the same model: every option the two
    share has one default (but the ensemble size, which the command line raises to 4, and
    two options whose command-line spelling differs)."""
    import inspect

    from cgcnn.cli import build_parser
    from cgcnn.training import train

    args = vars(build_parser().parse_args(["train", "x"]))
    python = {
        k: p for k, p in inspect.signature(train).parameters.items() if p.default is not p.empty
    }
    spelled_differently = {"ensemble", "devices", "lr_milestones"}
    shared_options = sorted(set(args) & set(python) - spelled_differently)
    assert {"conv", "activation", "pooling", "atom_features", "epochs"} <= set(shared_options)
    differ = {
        k: (args[k], python[k].default) for k in shared_options if args[k] != python[k].default
    }
    assert not differ, f"command line against cgcnn.train defaults: {differ}"
    assert args["devices"] == str(python["devices"].default)
