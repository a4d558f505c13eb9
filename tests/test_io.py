"""Readers: every supported layout, tolerant parsing of id_prop.csv, row-level errors."""

from __future__ import annotations

import gzip
import json
import warnings

import numpy as np
import pytest

from cgcnn import Crystal, InputError
from cgcnn.examples import example_structures
from cgcnn.io import content_hash, read_structures
from conftest import GOOD_CIF, make_cif, write_cgcnn_folder
from helpers import shared

EXAMPLES = example_structures()


def test_cgcnn_folder_tolerates_bom_blank_lines_spaces_and_no_final_newline(tmp_path):
    rows = " a , 1.5 , 3\n\n b,2.5,  7 \n\n"
    folder = write_cgcnn_folder(
        tmp_path / "d", {"a": GOOD_CIF, "b": GOOD_CIF}, "\ufeff" + rows.rstrip("\n")
    )
    records = read_structures(folder)
    assert [r.id for r in records] == ["a", "b"]
    assert [r.target for r in records] == [(1.5, 3.0), (2.5, 7.0)]
    assert all(r.error is None for r in records)
    # pick one column (1-based target columns)
    assert [r.target for r in read_structures(folder, target="2")] == [(3.0,), (7.0,)]
    with pytest.raises(InputError, match="column numbers"):
        read_structures(folder, target="energy")


def test_cgcnn_folder_for_prediction(tmp_path):
    folder = write_cgcnn_folder(tmp_path / "d", {"a": GOOD_CIF, "b": GOOD_CIF}, "a\nb")
    records = read_structures(folder)
    assert [(r.id, r.target) for r in records] == [("a", None), ("b", None)]
    (folder / "id_prop.csv").unlink()
    (folder / "c.vasp").write_text(EXAMPLES["CsCl"].to(fmt="poscar"))
    records = read_structures(folder)
    assert [(r.id, r.fmt) for r in records] == [("a", "cif"), ("b", "cif"), ("c", "poscar")]
    assert records[2].load().num_atoms == 2


def test_homework_folder_reads_all_rows():
    folder = shared("perovskite-energy")
    records = read_structures(folder)
    assert len(records) == 670
    assert all(r.error is None and len(r.target) == 1 for r in records)
    first = (folder / "id_prop.csv").read_text().splitlines()[0].split(",")
    assert records[0].id == first[0] and records[0].target == (float(first[1]),)


def test_csv_with_cif_strings():
    path = shared("perov5-dev.csv")
    records = []
    for record in read_structures(path, target="heat_ref,dir_gap"):
        records.append(record)
    assert len(records) == 3787
    assert records[0].id == "18517"  # material_id is the default id column
    assert records[0].target == pytest.approx((2.709152583232041, 0.0))
    crystal = records[0].load()
    assert crystal.num_atoms == 5
    no_targets = read_structures(path, id_column="formula")
    assert no_targets[0].id == "CuCdN3" and no_targets[0].target is None


def test_csv_errors(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("name,cif\na,xx\n")
    with pytest.raises(
        InputError, match=r"x.csv: has no column 'material_id' or 'id' \(columns: 'name', 'cif'\)"
    ):
        read_structures(path)
    assert read_structures(path, id_column="name")[0].id == "a"
    path.write_text("id,structure\na,xx\n")
    with pytest.raises(InputError, match="no column 'cif'.*--structure-column"):
        read_structures(path)
    path.write_text("")
    with pytest.raises(InputError, match="the file is empty"):
        read_structures(path)
    path.write_text('id,cif,e\na,"x",1\nb,"y"\nc,"z",oops\n')
    records = read_structures(path, target="e")
    assert records[0].error is None
    assert "has 2 fields, the header has 3" in records[1].error
    assert "target 'oops' is not a number" in records[2].error


def _structure_dicts():
    return {name: s.as_dict() for name, s in list(EXAMPLES.items())[:3]}


def test_json_layouts(tmp_path):
    dicts = _structure_dicts()
    names = list(dicts)
    # a list of records with ids and targets
    listed = [{"material_id": n, "structure": d, "e": k} for k, (n, d) in enumerate(dicts.items())]
    (tmp_path / "list.json").write_text(json.dumps(listed))
    records = read_structures(tmp_path / "list.json", target="e")
    assert [(r.id, r.target) for r in records] == [(n, (float(k),)) for k, n in enumerate(names)]
    # JSON lines, gzipped
    with gzip.open(tmp_path / "lines.jsonl.gz", "wt") as handle:
        for row in listed:
            handle.write(json.dumps(row) + "\n")
    assert [r.id for r in read_structures(tmp_path / "lines.jsonl.gz")] == names
    # Matbench's pandas "split" layout
    matbench = {
        "index": [f"mb-{k}" for k in range(3)],
        "columns": ["structure", "e_form"],
        "data": [[d, 0.1 * k] for k, d in enumerate(dicts.values())],
    }
    with gzip.open(tmp_path / "matbench.json.gz", "wt") as handle:
        json.dump(matbench, handle)
    records = read_structures(tmp_path / "matbench.json.gz", target="e_form")
    assert [r.id for r in records] == ["mb-0", "mb-1", "mb-2"]
    assert records[2].target == pytest.approx((0.2,))
    # bare structure dicts and a single structure
    (tmp_path / "bare.json").write_text(json.dumps(list(dicts.values())))
    assert [r.id for r in read_structures(tmp_path / "bare.json")] == ["0", "1", "2"]
    (tmp_path / "one.json").write_text(json.dumps(dicts[names[0]]))
    (record,) = read_structures(tmp_path / "one.json")
    loaded = record.load()
    expected = Crystal.from_structure(EXAMPLES[names[0]])
    np.testing.assert_allclose(loaded.frac_coords, expected.frac_coords)
    np.testing.assert_array_equal(loaded.atomic_numbers, expected.atomic_numbers)


def test_json_errors(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    with pytest.raises(InputError, match="bad.json: not valid JSON"):
        read_structures(path)
    path.write_text(json.dumps({"a": 1}))
    with pytest.raises(InputError, match="expected a list of records"):
        read_structures(path)
    path.write_text(
        json.dumps([{"id": "x", "structure": {"lattice": 3, "sites": []}}, {"id": "y"}])
    )
    first, second = read_structures(path)
    with pytest.raises(InputError, match=r"bad.json:x: not a valid pymatgen Structure dict"):
        first.load()
    assert "has no structure dict under 'structure'" in second.error
    lines = tmp_path / "bad.jsonl"
    lines.write_text('{"id": "a"}\n{oops\n')
    with pytest.raises(InputError, match="bad.jsonl:2: not valid JSON"):
        read_structures(lines)


def test_poscar_and_extxyz_files(tmp_path):
    from ase.io import write as ase_write
    from pymatgen.io.ase import AseAtomsAdaptor

    structure = EXAMPLES["TiO2-rutile"]
    (tmp_path / "POSCAR").write_text(structure.to(fmt="poscar"))
    (record,) = read_structures(tmp_path / "POSCAR")
    crystal = record.load()
    np.testing.assert_allclose(crystal.lattice, structure.lattice.matrix, atol=1e-6)
    np.testing.assert_array_equal(crystal.atomic_numbers, [s.specie.Z for s in structure])

    frames = [AseAtomsAdaptor.get_atoms(EXAMPLES[n]) for n in ("CsCl", "Cu-fcc")]
    ase_write(tmp_path / "two.extxyz", frames, format="extxyz")
    records = read_structures(tmp_path / "two.extxyz")
    assert [r.id for r in records] == ["two:0", "two:1"]
    np.testing.assert_array_equal(records[1].load().atomic_numbers, [29] * 4)

    (tmp_path / "bad.vasp").write_text("not a poscar\n1.0\n")
    (bad,) = read_structures(tmp_path / "bad.vasp")
    with pytest.raises(InputError, match="bad.vasp: not a readable POSCAR file"):
        bad.load()


def test_python_objects():
    records = read_structures(EXAMPLES)
    assert [r.id for r in records] == list(EXAMPLES)
    records = read_structures([EXAMPLES["CsCl"], EXAMPLES["Cu-fcc"]])
    assert [r.id for r in records] == ["0", "1"]
    assert read_structures(EXAMPLES["CsCl"])[0].load().num_atoms == 2
    with pytest.raises(InputError, match="cannot read structures from a float"):
        read_structures(3.5)


def test_content_hash_tracks_content():
    a = content_hash("cif", GOOD_CIF.encode())
    assert a == content_hash("cif", GOOD_CIF.encode())
    assert a != content_hash("cif", make_cif(a=3.9).encode())
    assert a != content_hash("poscar", GOOD_CIF.encode())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c1 = Crystal.from_structure(EXAMPLES["CsCl"])
    c2 = Crystal(c1.lattice * 1.01, c1.atomic_numbers, c1.frac_coords)
    assert content_hash("crystal", c1) != content_hash("crystal", c2)
