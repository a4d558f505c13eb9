"""cgcnn explain: roles from the structure, the periodic-table grid, and every file written."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cgcnn
from cgcnn.cli import main
from cgcnn.errors import InputError
from cgcnn.explain import (
    element_table,
    explain,
    model_unit,
    principal_components,
    read_test_ids,
    site_roles,
)
from cgcnn.periodic_table import ACTINIDE_ROW, LANTHANIDE_ROW, GridCell, grid_cell
from conftest import make_cif, write_cgcnn_folder
from helpers import shared

TINY = ["--atom-fea-len", "8", "--h-fea-len", "8", "--n-conv", "2", "--epochs", "2"]


def _structure(species, coords, a, c=None):
    from pymatgen.core import Lattice, Structure

    lattice = Lattice.cubic(a) if c is None else Lattice.tetragonal(a, c)
    return Structure(lattice, species, coords)


def _perovskite(a_el: str, b_el: str, x_el: str = "O", a: float = 3.905):
    """The cubic ABX3 cell: A at the corner, B at the centre, X at the face centres."""
    coords = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    return _structure([a_el, b_el, x_el, x_el, x_el], coords, a)


def _roles(structure) -> dict[str, set[str]]:
    """element -> the roles its sites got."""
    found: dict[str, set[str]] = {}
    for site, role in zip(structure, site_roles(structure), strict=True):
        found.setdefault(site.specie.symbol, set()).add(role)
    return found


# --------------------------------------------------------------------------- roles


def test_srtio3_roles_whichever_site_is_at_the_origin():
    assert site_roles(_perovskite("Sr", "Ti")) == ["A", "B", "X", "X", "X"]
    # the same crystal with Ti at the origin and Sr at the centre, sites in another order
    shifted = _structure(
        ["O", "Ti", "O", "Sr", "O"],
        [[0.5, 0, 0], [0, 0, 0], [0, 0.5, 0], [0.5, 0.5, 0.5], [0, 0, 0.5]],
        3.905,
    )
    assert site_roles(shifted) == ["X", "B", "X", "A", "X"]
    # a 2x2x2 supercell: 8 A, 8 B, 24 X
    supercell = _perovskite("Sr", "Ti").make_supercell([2, 2, 2], in_place=False)
    assert _roles(supercell) == {"Sr": {"A"}, "Ti": {"B"}, "O": {"X"}}


@pytest.mark.parametrize(
    ("a_el", "b_el", "x_el", "a"),
    [
        ("Ba", "Zr", "O", 4.19),
        ("K", "Nb", "O", 4.02),
        ("Cs", "Pb", "I", 6.29),
        ("K", "Mg", "F", 3.99),
    ],
)
def test_unusual_perovskites(a_el, b_el, x_el, a):
    assert _roles(_perovskite(a_el, b_el, x_el, a)) == {a_el: {"A"}, b_el: {"B"}, x_el: {"X"}}


def test_a_distorted_knbo3_and_roles_that_follow_the_geometry_not_the_elements():
    # tetragonal KNbO3 with Nb and the oxygens shifted along c (ferroelectric displacements)
    tetragonal = _structure(
        ["K", "Nb", "O", "O", "O"],
        [[0, 0, 0], [0.5, 0.5, 0.52], [0.5, 0.5, 0.96], [0.5, 0, 0.48], [0, 0.5, 0.48]],
        3.997,
        4.063,
    )
    assert site_roles(tetragonal) == ["A", "B", "X", "X", "X"]
    # a small cation in the cuboctahedral cage and a large one in the octahedron: the
    # octahedral site is B whatever sits in it
    assert _roles(_perovskite("Ti", "Sr")) == {"Ti": {"A"}, "Sr": {"B"}, "O": {"X"}}


def test_crystals_that_are_not_perovskites_have_one_role():
    sodium = [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    chlorine = [[0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5], [0.5, 0.5, 0.5]]
    rock_salt = _structure(["Na"] * 4 + ["Cl"] * 4, [*sodium, *chlorine], 5.64)
    assert set(site_roles(rock_salt)) == {"site"}
    # ReO3: octahedra but no A cation (1:3)
    reo3 = _structure(
        ["Re", "O", "O", "O"], [[0, 0, 0], [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5]], 3.75
    )
    assert set(site_roles(reo3)) == {"site"}
    # an ABX3 formula without octahedra: both cations in the same 12-fold cage kind
    two_cages = _structure(
        ["Sr", "Ba", "O", "O", "O"],
        [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0.5, 0, 0]],
        3.9,
    )
    assert set(site_roles(two_cages)) == {"site"}


@pytest.mark.parametrize(
    ("material_id", "expected"),
    [
        ("18517", {"Cu": {"A"}, "Cd": {"B"}, "N": {"X"}}),  # CuCdN3, ideal positions
        ("15400", {"V": {"A"}, "Ir": {"B"}, "O": {"X"}}),  # VIrO3, V 0.7 Å off its corner
        ("11339", {"Sc": {"A"}, "Co": {"B"}, "O": {"X"}, "F": {"X"}}),  # ScCoO2F, two anions
        ("6108", {"Zr": {"site"}, "Sr": {"site"}, "O": {"site"}, "N": {"site"}}),  # no octahedron
    ],
)
def test_perov5_crystals(material_id, expected):
    from pymatgen.core import Structure

    table = pd.read_csv(shared("perov5-dev.csv"), dtype={"material_id": str})
    row = table[table["material_id"] == material_id].iloc[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pymatgen notes the coordinates it rounds
        structure = Structure.from_str(row["cif"], fmt="cif")
    assert _roles(structure) == expected


# --------------------------------------------------------------------------- the grid


@pytest.mark.parametrize(
    ("element", "cell"),
    [
        ("H", GridCell(1, 1, 1, 1)),
        ("He", GridCell(1, 18, 1, 18)),
        ("B", GridCell(2, 13, 2, 13)),
        ("Fe", GridCell(4, 8, 4, 8)),
        ("Ba", GridCell(6, 2, 6, 2)),
        ("La", GridCell(6, None, LANTHANIDE_ROW, 3)),
        ("Lu", GridCell(6, None, LANTHANIDE_ROW, 17)),
        ("Hf", GridCell(6, 4, 6, 4)),
        ("Pb", GridCell(6, 14, 6, 14)),
        ("U", GridCell(7, None, ACTINIDE_ROW, 6)),
        ("Og", GridCell(7, 18, 7, 18)),
        (26, GridCell(4, 8, 4, 8)),
    ],
)
def test_periodic_table_grid(element, cell):
    assert grid_cell(element) == cell


def test_every_element_has_its_own_cell():
    cells = {(grid_cell(z).row, grid_cell(z).column) for z in range(1, 119)}
    assert len(cells) == 118
    with pytest.raises(ValueError, match="Xx"):
        grid_cell("Xx")
    with pytest.raises(ValueError, match="119"):
        grid_cell(119)


# --------------------------------------------------------------------------- helpers


def test_principal_components_match_the_svd():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5)) * np.array([5.0, 2.0, 1.0, 0.5, 0.1])
    coords, explained = principal_components(x, 2)
    centred = x - x.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    np.testing.assert_allclose(explained, s[:2] ** 2 / (s**2).sum(), rtol=1e-8)
    np.testing.assert_allclose(np.abs(coords), np.abs(centred @ vt[:2].T), atol=1e-8)
    assert explained[0] > 0.8


def test_units_from_the_checkpoint_or_its_registered_dataset():
    class Old:  # a checkpoint written before units were recorded
        def __init__(self, data):
            self.target_names = ["target"]
            self.checkpoint = self
            self.data = data

        def info(self):
            return {"meta": {"data": self.data}}

    assert model_unit(Old("/data/perovskite-energy"), "target") == "eV/cell"
    assert model_unit(Old("/x/my_cifs"), "target") is None
    recorded = Old("/x/my_cifs")
    recorded.units = {"target": "meV/atom"}
    assert model_unit(recorded, "target") == "meV/atom"


def test_test_ids_files(tmp_path):
    good = tmp_path / "test_results.csv"
    good.write_text("id,target,prediction\na1,1.0,1.1\nb2,2.0,2.2\n")
    assert read_test_ids(good) == {"a1", "b2"}
    bad = tmp_path / "bad.csv"
    bad.write_text("name,value\na,1\n")
    with pytest.raises(InputError, match="bad.csv: has no 'id' column"):
        read_test_ids(bad)
    with pytest.raises(InputError, match="missing.csv: no such file"):
        read_test_ids(tmp_path / "missing.csv")


# --------------------------------------------------------------------------- explain

_PAIRS = [
    ("Sr", "Ti", 3.905),
    ("Ba", "Zr", 4.19),
    ("K", "Nb", 4.02),
    ("Ca", "Ti", 3.84),
    ("La", "Al", 3.79),
    ("Ba", "Ti", 4.00),
    ("Sr", "Zr", 4.11),
    ("Na", "Nb", 3.95),
    ("La", "Fe", 3.93),
    ("Sr", "Sn", 4.03),
    ("Ba", "Sn", 4.12),
    ("Ca", "Zr", 4.02),
]


def _data(folder: Path) -> Path:
    """Twelve cubic ABO3 perovskites and two rock-salt crystals in the CGCNN layout."""
    cifs = {}
    for a_el, b_el, a in _PAIRS:
        sites = [
            (a_el, 0.0, 0.0, 0.0, 1),
            (b_el, 0.5, 0.5, 0.5, 1),
            ("O", 0.5, 0.5, 0.0, 1),
            ("O", 0.5, 0.0, 0.5, 1),
            ("O", 0.0, 0.5, 0.5, 1),
        ]
        cifs[f"{a_el}{b_el}O3"] = make_cif(sites, a=a, name=f"{a_el}{b_el}O3")
    for salt, a in (("NaCl", 5.64), ("KCl", 6.29)):
        metal, anion = salt[:-2], "Cl"
        sites = [(metal, x, y, z, 1) for x, y, z in ((0, 0, 0), (0.5, 0.5, 0), (0.5, 0, 0.5))]
        sites += [(metal, 0, 0.5, 0.5, 1)]
        sites += [(anion, x, y, z, 1) for x, y, z in ((0.5, 0, 0), (0, 0.5, 0), (0, 0, 0.5))]
        sites += [(anion, 0.5, 0.5, 0.5, 1)]
        cifs[salt] = make_cif(sites, a=a, name=salt)
    rows = "\n".join(f"{rid},{-2.0 - 0.1 * k}" for k, rid in enumerate(cifs))
    return write_cgcnn_folder(folder, cifs, rows)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("explain")
    data = _data(tmp / "data")
    found = {"data": data}
    kinds = (
        ("site", ["--readout", "site", "--unit", "eV/cell"]),
        ("pooled", ["--readout", "pooled"]),
        ("extensive", ["--extensive"]),
    )
    for name, extra in kinds:
        out = tmp / name
        argv = ["train", data, "--out", out, *TINY, "--cache", tmp / "cache", "--workers", "0"]
        argv += ["--ensemble", "1", *extra]
        assert main([str(a) for a in argv]) == 0
        found[name] = out / "best.ckpt"
    return found


def test_a_site_model_writes_every_file(runs, tmp_path):
    import matplotlib.pyplot as plt

    out = tmp_path / "explained"
    test_ids = runs["site"].parent / "test_results.csv"
    summary = explain(runs["site"], runs["data"], out, test_ids=test_ids, progress=False)
    names = sorted(p.name for p in out.iterdir())
    expected = [
        "contributions.csv",
        "crystal_SrTiO3.png",
        "element_contributions.csv",
        "embedding_map.png",
        "periodic_table_A.png",
        "periodic_table_B.png",
        "periodic_table_X.png",
        "periodic_table_site.png",
    ]
    assert names == expected
    assert sorted(Path(p).name for p in summary["files"]) == expected
    assert summary["crystals"] == 14 and summary["sites"] == 12 * 5 + 2 * 8
    assert summary["roles"] == {"A": 12, "B": 12, "X": 36, "site": 16}
    assert summary["perovskite_like"] == 12 and summary["no_contributions"] is None
    assert summary["unit"] == "eV/cell"  # recorded in the checkpoint by cgcnn train --unit
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert plt.get_fignums() == []

    sites = pd.read_csv(out / "contributions.csv", keep_default_na=False)
    assert list(sites.columns) == ["id", "site", "element", "role", "a", "b", "c", "target"]
    assert set(sites.loc[sites["id"] == "SrTiO3", "role"]) == {"A", "B", "X"}
    assert sites.loc[(sites["id"] == "SrTiO3") & (sites["element"] == "Ti"), "role"].item() == "B"
    assert set(sites.loc[sites["id"] == "NaCl", "role"]) == {"site"}
    table = pd.read_csv(out / "element_contributions.csv", keep_default_na=False)
    direct = sites.groupby(["role", "element"])["target"].agg(["mean", "std", "count"])
    assert len(table) == len(direct)
    for row in table.itertuples():
        assert row.mean == pytest.approx(direct.loc[(row.role, row.element), "mean"], abs=1e-12)
        assert row.count == direct.loc[(row.role, row.element), "count"]
    assert set(table.loc[table["role"] == "B", "element"]) == {"Ti", "Zr", "Nb", "Al", "Fe", "Sn"}
    # the contributions average to the model's predictions (--readout site)
    predicted = cgcnn.load(runs["site"]).predict(runs["data"]).set_index("id")["target"]
    for rid, mean in sites.groupby("id")["target"].mean().items():
        assert mean == pytest.approx(predicted[rid], rel=1e-5)


def test_element_table_by_hand():
    sites = pd.DataFrame(
        {
            "id": ["a", "a", "b", "b"],
            "element": ["O", "Ti", "O", "O"],
            "role": ["X", "B", "X", "X"],
            "y": [1.0, 5.0, 2.0, 6.0],
        }
    )
    table = element_table(sites, "y")
    assert list(table["role"]) == ["B", "X"] and list(table["count"]) == [1, 3]
    assert table["mean"].tolist() == [5.0, 3.0]
    assert table["std"].iloc[1] == pytest.approx(np.std([1.0, 2.0, 6.0], ddof=1))


def test_the_command_line_and_a_chosen_crystal(runs, tmp_path, capsys):
    out = tmp_path / "cli"
    argv = ["explain", runs["site"], runs["data"], "--out", out, "--crystal", "BaZrO3"]
    argv += ["--unit", "eV"]
    assert main([str(a) for a in argv]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("crystals: 14 (12 perovskite-like), sites: 76 (A site 12")
    assert "crystal_BaZrO3.png" in printed[-1]
    assert (out / "crystal_BaZrO3.png").is_file() and not (out / "crystal_SrTiO3.png").exists()
    assert (
        explain(runs["pooled"], runs["data"], tmp_path / "u", unit="meV", progress=False)["unit"]
        == "meV"
    )


def test_a_pooled_model_draws_the_map_and_says_why_there_is_nothing_else(runs, tmp_path, capsys):
    out = tmp_path / "pooled"
    summary = explain(runs["pooled"], runs["data"], out, progress=False)
    assert [p.name for p in out.iterdir()] == ["embedding_map.png"]
    assert "has no per-site contributions: it pools the atoms" in summary["no_contributions"]
    assert main([str(a) for a in ["explain", runs["pooled"], runs["data"], "--out", out]]) == 0
    lines = capsys.readouterr().out.splitlines()
    said = [line for line in lines if line.startswith("no contribution figures: ")]
    assert len(said) == 1 and "--readout site" in said[0]


def test_bad_inputs_name_the_value(runs, tmp_path, capsys):
    missing = tmp_path / "nowhere" / "best.ckpt"
    with pytest.raises(InputError, match="nowhere"):
        explain(missing, runs["data"], tmp_path / "a", progress=False)
    with pytest.raises(InputError, match="--crystal: no crystal with id 'nosuch'"):
        explain(runs["site"], runs["data"], tmp_path / "b", crystal="nosuch", progress=False)
    assert not (tmp_path / "b").exists()
    with pytest.raises(InputError, match="--target: 'gap' is not a target"):
        explain(runs["site"], runs["data"], tmp_path / "c", target="gap", progress=False)
    with pytest.raises(InputError, match="ids.csv: no such file"):
        explain(runs["site"], runs["data"], tmp_path / "d", test_ids=tmp_path / "ids.csv")
    code = main([str(a) for a in ["explain", runs["site"], runs["data"], "--crystal", "zz9"]])
    assert code == 2 and "--crystal: no crystal with id 'zz9'" in capsys.readouterr().err


def test_a_csv_with_and_without_the_target_column(runs, tmp_path):
    rows = [("SrTiO3", -1.5), ("BaZrO3", -2.5)]
    folder = runs["data"]
    with_target = tmp_path / "with.csv"
    without = tmp_path / "without.csv"
    for path, header in ((with_target, ["id", "cif", "target"]), (without, ["id", "cif"])):
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            for rid, value in rows:
                cells = [rid, (folder / f"{rid}.cif").read_text()]
                writer.writerow([*cells, value] if "target" in header else cells)
    for path in (with_target, without):
        summary = explain(runs["site"], path, tmp_path / path.stem, progress=False)
        assert summary["crystals"] == 2 and summary["roles"] == {"A": 2, "B": 2, "X": 6}


def test_batches_give_the_same_tables(runs, tmp_path):
    whole = explain(runs["site"], runs["data"], tmp_path / "whole", progress=False)
    pieces = explain(runs["site"], runs["data"], tmp_path / "pieces", batch_size=3, progress=False)
    assert whole["roles"] == pieces["roles"]
    for name in ("contributions.csv", "element_contributions.csv"):
        a = pd.read_csv(tmp_path / "whole" / name, keep_default_na=False)
        b = pd.read_csv(tmp_path / "pieces" / name, keep_default_na=False)
        pd.testing.assert_frame_equal(a, b, rtol=1e-5)


def test_an_extensive_model_sums_its_sites(runs, tmp_path):
    out = tmp_path / "extensive"
    summary = explain(runs["extensive"], runs["data"], out, progress=False)
    assert summary["roles"] == {"A": 12, "B": 12, "X": 36, "site": 16}
    sites = pd.read_csv(out / "contributions.csv", keep_default_na=False)
    predicted = cgcnn.load(runs["extensive"]).predict(runs["data"]).set_index("id")["target"]
    for rid, total in sites.groupby("id")["target"].sum().items():
        assert total == pytest.approx(predicted[rid], rel=1e-5, abs=1e-5)
    assert (out / "embedding_map.png").is_file() and (out / "crystal_SrTiO3.png").is_file()


def test_every_option_of_the_command_reaches_explain(monkeypatch, tmp_path, capsys):
    import cgcnn.explain

    seen: dict[str, object] = {}

    def recorder(checkpoint, data, out, **options):
        seen.update(checkpoint=checkpoint, data=data, out=out, **options)
        return {"crystals": 1, "sites": None, "no_contributions": "why", "files": []}

    monkeypatch.setattr(cgcnn.explain, "explain", recorder)
    data = tmp_path / "data.csv"
    data.write_text("id,cif\n")
    given = {
        "--out": ("out", "d"),
        "--target": ("target", "t"),
        "--unit": ("unit", "u"),
        "--crystal": ("crystal", "c"),
        "--test-ids": ("test_ids", "ids.csv"),
        "--atom-init": ("atom_init", "a.json"),
        "--device": ("device", "cpu"),
        "--id-column": ("id_column", "i"),
        "--structure-column": ("structure_column", "s"),
    }
    argv = ["explain", "m.ckpt", str(data)]
    for option, (_, value) in given.items():
        argv += [option, value]
    assert main(argv) == 0
    assert seen["checkpoint"] == "m.ckpt" and seen["data"] == str(data)
    for option, (name, value) in given.items():
        assert seen[name] == value, option
    parser = next(
        action.choices["explain"]
        for action in cgcnn.cli.build_parser()._actions
        if getattr(action, "choices", None) and "explain" in action.choices
    )
    offered = {a.option_strings[-1] for a in parser._actions if a.option_strings}
    assert offered - {"--help", "--root"} == set(given)
    assert capsys.readouterr().out.splitlines()[1] == "no contribution figures: why"
