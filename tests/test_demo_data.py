"""The embedded demo data set: determinism, physics of the target, files, reading back."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from pymatgen.analysis.ewald import EwaldSummation
from pymatgen.core import Lattice, Structure

from cgcnn.demo_data import (
    MANIFEST,
    STRUCTURE_TYPES,
    generate_demo_dataset,
    structure_type_of,
    write_demo_dataset,
)
from cgcnn.graph import featurize
from cgcnn.io import read_structures

N = 64  # 8 crystals per structure type

COULOMB = 14.399645  # e^2 / (4 pi eps0), eV Å
MADELUNG_NACL = 1.747565


@pytest.fixture(scope="module")
def data() -> list[tuple[str, Structure, float]]:
    return generate_demo_dataset(N, seed=0)


@pytest.fixture(scope="module")
def decorated() -> list[tuple[str, Structure, float]]:
    return generate_demo_dataset(N, seed=0, oxidation_states=True)


def _same(a: list[tuple[str, Structure, float]], b: list[tuple[str, Structure, float]]) -> bool:
    """Bit-for-bit equality of two generated data sets."""
    if len(a) != len(b):
        return False
    for (id_a, s_a, t_a), (id_b, s_b, t_b) in zip(a, b, strict=True):
        if (
            id_a != id_b
            or t_a != t_b
            or [str(x.specie) for x in s_a] != [str(x.specie) for x in s_b]
        ):
            return False
        if not np.array_equal(s_a.lattice.matrix, s_b.lattice.matrix):
            return False
        if not np.array_equal(s_a.frac_coords, s_b.frac_coords):
            return False
    return True


# --------------------------------------------------------------------------- generation


def test_deterministic_for_a_seed(data: list[tuple[str, Structure, float]]) -> None:
    assert _same(data, generate_demo_dataset(N, seed=0))


def test_other_seed_other_crystals(data: list[tuple[str, Structure, float]]) -> None:
    other = generate_demo_dataset(16, seed=1)
    assert [rid for rid, _, _ in other] == [rid for rid, _, _ in data[:16]]
    assert all(t != u for (_, _, t), (_, _, u) in zip(other, data[:16], strict=False))


def test_a_prefix_does_not_depend_on_n(data: list[tuple[str, Structure, float]]) -> None:
    assert _same(generate_demo_dataset(10, seed=0), data[:10])


def test_every_structure_type_is_present(data: list[tuple[str, Structure, float]]) -> None:
    counts = Counter(structure_type_of(rid) for rid, _, _ in data)
    assert len(STRUCTURE_TYPES) >= 6
    assert counts == dict.fromkeys(STRUCTURE_TYPES, N // len(STRUCTURE_TYPES))
    assert len({rid for rid, _, _ in data}) == N


def test_crystals_are_small_plain_and_charge_balanced(
    data: list[tuple[str, Structure, float]], decorated: list[tuple[str, Structure, float]]
) -> None:
    for (rid, plain, _), (_, ionic, _) in zip(data, decorated, strict=True):
        assert 2 <= len(plain) <= 16, rid
        assert all(getattr(site.specie, "oxi_state", None) in (None, 0) for site in plain), rid
        assert ionic.charge == pytest.approx(0.0, abs=1e-10), rid
        assert [s.specie.symbol for s in ionic] == [s.specie.symbol for s in plain], rid
        assert len({site.label for site in plain}) == len(plain), rid  # valid CIF labels


def test_targets_are_finite_and_plausible(data: list[tuple[str, Structure, float]]) -> None:
    targets = np.array([t for _, _, t in data])
    assert np.isfinite(targets).all()
    # point-charge lattices are bound: between ~ -3 eV/atom (CsI-like) and ~ -60 (AlN-like)
    assert targets.max() < -2.0
    assert targets.min() > -80.0
    assert targets.std() > 3.0  # the chemistry and structure matter


def test_target_is_the_ewald_energy_per_atom(
    decorated: list[tuple[str, Structure, float]],
) -> None:
    for rid, structure, target in decorated[:: len(STRUCTURE_TYPES) - 1]:
        energy = EwaldSummation(structure).total_energy / len(structure)
        assert energy == pytest.approx(target, rel=1e-12), rid


def test_rock_salt_madelung_energy() -> None:
    """Undistorted NaCl, a = 5.64 Å: E = -M e^2 / (a/2) per ion pair, 4 pairs per cell."""
    from cgcnn.demo_data import _template

    lattice, roles, coords = _template("rocksalt", np.random.default_rng(0))
    a = 5.64
    nacl = Structure(Lattice(lattice * a), [["Na+", "Cl-"][r] for r in roles], coords)
    expected = 4 * -MADELUNG_NACL * COULOMB / (a / 2)  # -35.69 eV per 8-atom cell
    assert EwaldSummation(nacl).total_energy == pytest.approx(expected, rel=1e-3)
    assert expected / 4 == pytest.approx(-8.92, abs=0.01)


def test_generated_rock_salt_scales_like_coulomb(
    decorated: list[tuple[str, Structure, float]],
) -> None:
    """A generated crystal with every length doubled has half the (Coulomb) energy."""
    rid, structure, target = next(x for x in decorated if structure_type_of(x[0]) == "rocksalt")
    bigger = structure.copy()
    bigger.scale_lattice(structure.volume * 8)
    assert EwaldSummation(bigger).total_energy / len(bigger) == pytest.approx(target / 2, 1e-9)
    # a distorted rock salt is close to, and above, the ideal Madelung energy at its density
    charge = abs(structure[0].specie.oxi_state)
    a = (structure.volume) ** (1 / 3)
    ideal = -MADELUNG_NACL * COULOMB * charge**2 / (a / 2) / 2
    assert target == pytest.approx(ideal, rel=0.05), rid


def test_every_structure_featurizes(data: list[tuple[str, Structure, float]]) -> None:
    for rid, structure, _ in data:
        graph = featurize(structure, source=rid)  # no atoms < 0.5 Å, neighbours within 8 Å
        assert graph.num_atoms == len(structure)
        assert graph.neighbor_counts().min() >= 1


def test_bad_n() -> None:
    assert generate_demo_dataset(0) == []
    with pytest.raises(ValueError, match="n must be"):
        generate_demo_dataset(-1)


# --------------------------------------------------------------------------- files


def test_write_and_read_back(tmp_path: Path, decorated: list[tuple[str, Structure, float]]) -> None:
    n = 24
    folder = write_demo_dataset(tmp_path / "demo", n=n, seed=0)
    assert folder == tmp_path / "demo"
    records = read_structures(folder)
    assert [r.id for r in records] == [rid for rid, _, _ in decorated[:n]]
    for record, (rid, ionic, target) in zip(records, decorated[:n], strict=True):
        assert record.error is None, rid
        assert record.target == (target,)  # repr() round-trips floats exactly
        crystal = record.load()
        assert crystal.atomic_numbers.tolist() == [site.specie.Z for site in ionic]
        # the CIF holds the very crystal the target was computed for
        again = crystal.to_structure()
        again.add_oxidation_state_by_site([site.specie.oxi_state for site in ionic])
        energy = EwaldSummation(again).total_energy / len(again)
        assert energy == pytest.approx(target, rel=1e-7), rid
        featurize(crystal, source=rid)

    readme = (folder / "README.txt").read_text(encoding="utf-8")
    assert "not DFT" in readme
    assert "EwaldSummation" in readme
    assert "seed: 0" in readme
    assert f"count: {n} crystals" in readme
    assert json.loads((folder / MANIFEST).read_text(encoding="utf-8"))["n"] == n


def test_write_is_idempotent(tmp_path: Path) -> None:
    folder = write_demo_dataset(tmp_path, n=16, seed=3)
    stamps = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    assert write_demo_dataset(tmp_path, n=16, seed=3) == folder
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == stamps


def test_write_replaces_another_or_incomplete_demo_set(tmp_path: Path) -> None:
    write_demo_dataset(tmp_path, n=16, seed=3)
    write_demo_dataset(tmp_path, n=8, seed=4)
    assert len(list(tmp_path.glob("*.cif"))) == 8  # the crystals of the old set are gone
    targets = [r.target[0] for r in read_structures(tmp_path)]
    assert targets == [t for _, _, t in generate_demo_dataset(8, seed=4)]

    next(tmp_path.glob("*.cif")).unlink()  # incomplete: written again
    write_demo_dataset(tmp_path, n=8, seed=4)
    assert len(list(tmp_path.glob("*.cif"))) == 8
    assert all(r.error is None for r in read_structures(tmp_path))


def test_write_refuses_a_foreign_data_set(tmp_path: Path) -> None:
    (tmp_path / "id_prop.csv").write_text("mp-1,1.0\n", encoding="utf-8")
    with pytest.raises(FileExistsError, match="not a cgcnn demo"):
        write_demo_dataset(tmp_path, n=8)
    assert (tmp_path / "id_prop.csv").read_text(encoding="utf-8") == "mp-1,1.0\n"
