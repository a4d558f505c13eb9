"""Compatibility mode: the original CGCNN checkpoints, run through our model, give the numbers
the original code gives.

The expected values come from an independent implementation written below from the
equations of the original model, in plain torch with dense (N, M) neighbour tensors as the
original lays them out, using the raw state_dict tensors and the original featurization
(pymatgen CIF parsing, ``get_all_neighbors`` + stable sort + padding, Gaussian expansion in
float64).  Our path (our CIF reader, :func:`cgcnn.compat.featurize_original`, edge lists,
:class:`cgcnn.nn.model.CGCNN`) must agree within 1e-4.
"""

from __future__ import annotations

import json
import pickle
import warnings
from fractions import Fraction
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cgcnn.compat import (
    featurize_original,
    is_original_checkpoint,
    iter_original_graphs,
    load_original,
    load_original_checkpoint,
    model_from_original,
    original_architecture,
    predict_graphs,
    predict_original,
)
from cgcnn.crystal import Crystal
from cgcnn.elements import AtomFeatures
from cgcnn.errors import InputError

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
CHECKPOINTS = ("formation-energy-per-atom", "band-gap", "semi-metal-classification")
TOL = 1e-4


def shared(name: str) -> Path:
    path = SHARED / name
    if not path.exists():
        pytest.skip(f"shared data {path} is absent (these tests read ../shared/data)")
    return path


def checkpoint_path(name: str) -> Path:
    return shared(f"pretrained-cgcnn/{name}.pth.tar")


@cache
def _checkpoint(name: str) -> dict:
    return load_original_checkpoint(checkpoint_path(name))


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Batches here are tiny: one thread avoids OpenMP spin-waits on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --------------------------------------------------------------------------- reference
# Written from the paper's equations and the original data layout, sharing no code with
# cgcnn.compat / cgcnn.nn.


def _read_atom_init(path: Path) -> dict[int, np.ndarray]:
    raw = json.loads(path.read_text())
    return {int(k): np.asarray(v, dtype=np.float64) for k, v in raw.items()}


def reference_inputs(structure, atom_init: dict[int, np.ndarray], radius=8.0, m=12, step=0.2):
    """Original featurization -> (atom_fea (N, A), nbr_fea (N, M, G), nbr_idx (N, M))."""
    atom_fea = np.vstack([atom_init[site.specie.Z] for site in structure])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        all_nbrs = structure.get_all_neighbors(radius, include_index=True)
    idx, dist = [], []
    for nbrs in all_nbrs:
        nbrs = sorted(nbrs, key=lambda x: x[1])[:m]  # x = (site, distance, index, image)
        pad = m - len(nbrs)
        idx.append([x[2] for x in nbrs] + [0] * pad)
        dist.append([x[1] for x in nbrs] + [radius + 1.0] * pad)
    centres = np.arange(0.0, radius + step, step)  # (G,)
    gauss = np.exp(-((np.asarray(dist)[..., None] - centres) ** 2) / step**2)  # (N, M, G)
    return (
        torch.tensor(atom_fea, dtype=torch.float32),
        torch.tensor(gauss, dtype=torch.float32),
        torch.tensor(idx, dtype=torch.long),
    )


def _bn(x: torch.Tensor, sd: dict, prefix: str) -> torch.Tensor:
    """Eval-mode batch norm over the last dimension, written out."""
    mean, var = sd[prefix + "running_mean"], sd[prefix + "running_var"]
    return (x - mean) / torch.sqrt(var + 1e-5) * sd[prefix + "weight"] + sd[prefix + "bias"]


def reference_forward(checkpoint: dict, crystals: list[tuple]) -> np.ndarray:
    """The original model on a batch of crystals -> (B,) values or (B, 2) probabilities."""
    sd = {k: v.float() for k, v in checkpoint["state_dict"].items()}
    n_conv = len({k.split(".")[1] for k in sd if k.startswith("convs.")})
    n_fcs = len({k.split(".")[1] for k in sd if k.startswith("fcs.")})
    crystal_rows = []
    for atom_fea, nbr_fea, nbr_idx in crystals:
        v = F.linear(atom_fea, sd["embedding.weight"], sd["embedding.bias"])  # (N, F)
        n, m = nbr_idx.shape
        for k in range(n_conv):
            p = f"convs.{k}."
            z = torch.cat([v.unsqueeze(1).expand(n, m, v.shape[1]), v[nbr_idx], nbr_fea], dim=2)
            g = F.linear(z, sd[p + "fc_full.weight"], sd[p + "fc_full.bias"])  # (N, M, 2F)
            g = _bn(g.reshape(n * m, -1), sd, p + "bn1.").reshape(n, m, -1)
            filt, core = g.chunk(2, dim=2)
            summed = (torch.sigmoid(filt) * F.softplus(core)).sum(dim=1)  # (N, F)
            v = F.softplus(v + _bn(summed, sd, p + "bn2."))
        crystal_rows.append(v.mean(dim=0))
    h = torch.stack(crystal_rows)  # (B, F)
    h = F.softplus(F.linear(F.softplus(h), sd["conv_to_fc.weight"], sd["conv_to_fc.bias"]))
    for k in range(n_fcs):
        h = F.softplus(F.linear(h, sd[f"fcs.{k}.weight"], sd[f"fcs.{k}.bias"]))
    out = F.linear(h, sd["fc_out.weight"], sd["fc_out.bias"])
    if checkpoint["args"]["task"] == "classification":
        return torch.exp(F.log_softmax(out, dim=1)).double().numpy()
    norm = checkpoint["normalizer"]
    return (out[:, 0].double() * float(norm["std"]) + float(norm["mean"])).numpy()


@cache
def _reference_crystals(folder: str, ids: tuple[str, ...]) -> dict[str, tuple]:
    """Reference inputs of the CIFs ``ids`` of a data folder, parsed by pymatgen."""
    from pymatgen.core import Structure

    atom_init = _read_atom_init(Path(folder) / "atom_init.json")
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for cid in ids:
            structure = Structure.from_file(str(Path(folder) / f"{cid}.cif"))
            out[cid] = reference_inputs(structure, atom_init)
    return out


def _ids(folder: Path) -> list[str]:
    rows = (folder / "id_prop.csv").read_text().split()
    return [row.split(",")[0].strip() for row in rows if row.strip()]


@cache
def _our_graphs(folder: str, ids: tuple[str, ...]) -> tuple:
    """(id, target, graph) of the CIFs ``ids`` of a folder, featurized once for all models."""
    paths = [Path(folder) / f"{cid}.cif" for cid in ids]
    return tuple((rec.id, rec.target, graph) for rec, graph in iter_original_graphs(paths))


def _compare(name: str, folder: Path, ids: list[str] | None = None) -> float:
    """Max |ours - reference| of checkpoint ``name`` on ``folder``.

    Without ``ids``: the whole folder through :func:`predict_original` (its own
    atom_init.json).  With ``ids``: those CIFs, featurized once and shared by the
    checkpoints, through :func:`model_from_original` + :func:`predict_graphs`.
    """
    checkpoint = _checkpoint(name)
    if ids is None:
        ids = _ids(folder)
        ours = predict_original(checkpoint_path(name), folder)
    else:
        model = model_from_original(
            checkpoint, AtomFeatures.from_json(folder / "atom_init.json"), name
        )
        ours = list(predict_graphs(model, _our_graphs(str(folder), tuple(ids))))
    assert [p.id for p in ours] == ids
    inputs = _reference_crystals(str(folder), tuple(ids))
    expected = np.concatenate(
        [
            reference_forward(checkpoint, [inputs[cid] for cid in ids[k : k + 64]])
            for k in range(0, len(ids), 64)
        ]
    )
    if checkpoint["args"]["task"] == "classification":
        got = np.array([p.probabilities for p in ours])
        assert [p.prediction for p in ours] == list(np.argmax(got, axis=1))
        np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-6)
    else:
        got = np.array([p.prediction for p in ours])
        assert all(p.probabilities is None for p in ours)
    assert got.shape == expected.shape
    diff = float(np.max(np.abs(got - expected)))
    print(f"{name} on {folder.name} ({len(ids)} crystals): max |diff| = {diff:.3g}")
    assert diff < TOL, f"{name} on {folder.name}: max |diff| = {diff:.3g}"
    return diff


def _perovskite_subset(n: int = 60) -> list[str]:
    ids = _ids(shared("perovskite-energy"))
    return ids[:: max(1, len(ids) // n)][:n]


# --------------------------------------------------------------------------- agreement


@pytest.mark.parametrize("name", ["formation-energy-per-atom", "band-gap"])
def test_regression_matches_reference_on_sample_regression(name: str) -> None:
    _compare(name, shared("sample-regression"))


def test_classification_matches_reference_on_sample_classification() -> None:
    _compare("semi-metal-classification", shared("sample-classification"))


@pytest.mark.parametrize("name", ["formation-energy-per-atom", "band-gap"])
def test_regression_matches_reference_on_perovskite_subset(name: str) -> None:
    _compare(name, shared("perovskite-energy"), _perovskite_subset())


@pytest.mark.slow
@pytest.mark.parametrize("name", CHECKPOINTS)
def test_matches_reference_on_all_perovskites(name: str) -> None:
    _compare(name, shared("perovskite-energy"), _ids(shared("perovskite-energy")))


def test_padded_and_tied_structures_match_reference(tmp_path: Path) -> None:
    """Atoms with fewer than 12 neighbours (padding) and ties at the cutoff."""
    from pymatgen.core import Lattice, Structure

    atom_init_path = shared("atom_init.json")
    structures = {
        # one atom, 6 neighbours within 8 Å: 6 padded slots per atom
        "sparse-po": Structure(Lattice.cubic(7.0), ["Po"], [[0, 0, 0]]),
        # a slab-like cell: the Na atoms see few neighbours within 8 Å
        "sparse-nacl": Structure(
            Lattice.orthorhombic(7.5, 9.0, 12.0), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
        ),
        # cubic perovskite: O has 12 atoms at the same distance for its last 10 slots
        "srtio3": Structure(
            Lattice.cubic(3.905),
            ["Sr", "Ti", "O", "O", "O"],
            [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
        ),
    }
    atom_init = _read_atom_init(atom_init_path)
    for name in CHECKPOINTS:
        checkpoint = _checkpoint(name)
        ours = predict_original(checkpoint_path(name), structures, atom_init_path)
        expected = reference_forward(
            checkpoint, [reference_inputs(s, atom_init) for s in structures.values()]
        )
        got = np.array(
            [p.probabilities if p.probabilities is not None else p.prediction for p in ours]
        )
        np.testing.assert_allclose(got, expected, atol=TOL, rtol=0, err_msg=name)


# --------------------------------------------------------------------------- graphs


def _reference_neighbours(structure, radius=8.0, m=12):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        all_nbrs = structure.get_all_neighbors(radius, include_index=True)
    out = []
    for nbrs in all_nbrs:
        nbrs = sorted(nbrs, key=lambda x: x[1])[:m]
        out.append(
            [(x[2], tuple(round(c) for c in x[3]), x[1]) for x in nbrs]
            + [(0, (0, 0, 0), radius + 1.0)] * (m - len(nbrs))
        )
    return out


def test_featurize_original_keeps_pymatgen_tie_order() -> None:
    from pymatgen.core import Lattice, Structure

    structure = Structure(
        Lattice.cubic(3.905),
        ["Sr", "Ti", "O", "O", "O"],
        [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
    )
    graph = featurize_original(structure)
    assert graph.num_edges == 5 * 12
    np.testing.assert_array_equal(graph.edge_index[1], np.repeat(np.arange(5), 12))
    reference = _reference_neighbours(structure)
    for i, expected in enumerate(reference):
        sl = slice(12 * i, 12 * (i + 1))
        assert graph.edge_index[0][sl].tolist() == [j for j, _, _ in expected], f"atom {i}"
        assert [tuple(o) for o in graph.offsets[sl].tolist()] == [img for _, img, _ in expected]
        np.testing.assert_allclose(graph.distances[sl], [d for _, _, d in expected], atol=1e-6)
    # O (atom 2): 2 Ti, then 10 of the 12 atoms (4 Sr + 8 O) at a / sqrt(2): a real tie
    o_dist = graph.distances[24:36]
    assert np.allclose(o_dist[2:], 3.905 / np.sqrt(2), atol=1e-5)
    # offsets follow the graph convention: d = |r_j + offset @ cell - r_i|
    j, i = graph.edge_index
    d = np.linalg.norm(graph.pos[j] + graph.offsets @ graph.cell - graph.pos[i], axis=1)
    np.testing.assert_allclose(d, graph.distances, atol=1e-5)
    # the same from a Crystal
    again = featurize_original(Crystal.from_structure(structure))
    np.testing.assert_array_equal(again.edge_index, graph.edge_index)


def test_featurize_original_pads_with_atom_zero_beyond_the_radius() -> None:
    from pymatgen.core import Lattice, Structure

    structure = Structure(Lattice.cubic(7.0), ["Po", "Po"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    graph = featurize_original(structure, radius=8.0)
    counts = graph.neighbor_counts()
    assert counts.tolist() == [12, 12]
    real = graph.distances < 8.0 + 1e-6
    # each atom: 8 body-diagonal neighbours at 6.06 Å + 6 at 7 Å > 12: no padding here
    assert real.all()
    graph = featurize_original(structure, radius=6.5)
    d = graph.distances.reshape(2, 12)
    assert (d[:, :8] < 6.5).all() and np.allclose(d[:, 8:], 7.5)
    assert (graph.edge_index[0].reshape(2, 12)[:, 8:] == 0).all()
    assert (graph.offsets.reshape(2, 12, 3)[:, 8:] == 0).all()


def test_featurize_original_rejects_bad_settings() -> None:
    from pymatgen.core import Lattice, Structure

    structure = Structure(Lattice.cubic(4.0), ["Po"], [[0, 0, 0]])
    with pytest.raises(InputError, match="radius"):
        featurize_original(structure, radius=-1.0)
    with pytest.raises(InputError, match="max_num_nbr"):
        featurize_original(structure, max_num_nbr=0)


# --------------------------------------------------------------------------- loading


def test_plain_weights_only_load_fails_but_ours_succeeds() -> None:
    path = checkpoint_path("semi-metal-classification")
    with pytest.raises(pickle.UnpicklingError), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.load(path, map_location="cpu", weights_only=True)
    checkpoint = load_original_checkpoint(path)
    assert checkpoint["args"]["task"] == "classification"
    assert is_original_checkpoint(checkpoint)
    assert is_original_checkpoint(path)


@pytest.mark.parametrize("name", CHECKPOINTS)
def test_architecture_is_inferred_from_shapes(name: str) -> None:
    checkpoint = _checkpoint(name)
    arch = original_architecture(checkpoint)
    assert (arch.atom_input_len, arch.atom_fea_len, arch.n_conv, arch.h_fea_len, arch.n_h) == (
        92,
        64,
        4,
        32,
        1,
    )
    assert (arch.edge_fea_len, arch.radius, arch.step) == (41, 8.0, 0.2)
    model = model_from_original(checkpoint, AtomFeatures.from_json(shared("atom_init.json")))
    assert not model.training
    assert model.config.original_head
    if name == "semi-metal-classification":
        assert model.config.task == "classification" and model.config.dropout == 0.5
        assert model.config.n_classes == 2
    else:
        norm = checkpoint["normalizer"]
        assert model.config.task == "regression" and model.config.dropout == 0.0
        assert float(model.target_mean) == pytest.approx(float(norm["mean"]), abs=1e-6)
        assert float(model.target_std) == pytest.approx(float(norm["std"]), abs=1e-6)
    # every original tensor is in the model, unchanged
    ours = model.state_dict()
    for key, value in checkpoint["state_dict"].items():
        assert torch.equal(ours[key], value.float()), key


def test_num_batches_tracked_and_dataparallel_prefix_are_accepted() -> None:
    checkpoint = dict(_checkpoint("band-gap"))
    state = dict(checkpoint["state_dict"])
    for key in [k for k in state if k.endswith("running_mean")]:
        state[key.replace("running_mean", "num_batches_tracked")] = torch.tensor(7)
    checkpoint["state_dict"] = {f"module.{k}": v for k, v in state.items()}
    model = model_from_original(checkpoint, AtomFeatures.from_json(shared("atom_init.json")))
    assert int(model.convs[0].bn1.num_batches_tracked) == 7


def test_a_file_that_is_not_a_checkpoint_names_the_file(tmp_path: Path) -> None:
    junk = tmp_path / "notes.pth.tar"
    junk.write_text("this is not a checkpoint\n")
    with pytest.raises(InputError, match="notes.pth.tar") as info:
        load_original_checkpoint(junk)
    assert "\n" not in str(info.value)
    assert not is_original_checkpoint(junk)
    with pytest.raises(InputError, match="no such"):
        load_original_checkpoint(tmp_path / "missing.pth.tar")
    empty = tmp_path / "empty.pth.tar"
    empty.touch()
    with pytest.raises(InputError, match="empty.pth.tar: the checkpoint file is empty"):
        load_original_checkpoint(empty)
    with pytest.raises(InputError, match="folder"):
        load_original_checkpoint(tmp_path)
    assert not is_original_checkpoint({})
    assert not is_original_checkpoint({"state_dict": {"embedding.weight": torch.zeros(1)}})


def test_other_torch_files_are_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {"layer.weight": torch.zeros(2, 2)}}, other)
    with pytest.raises(InputError, match="other.pt.*not an original CGCNN checkpoint"):
        load_original_checkpoint(other)
    tensor = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), tensor)
    with pytest.raises(InputError, match="tensor.pt.*not an original CGCNN checkpoint"):
        load_original_checkpoint(tensor)
    assert not is_original_checkpoint(torch.zeros(3))
    unsafe = tmp_path / "unsafe.pt"
    torch.save({"state_dict": {}, "extra": Fraction(1, 3)}, unsafe)
    with pytest.raises(InputError, match=r"unsafe.pt.*fractions.Fraction.*allow-list"):
        load_original_checkpoint(unsafe)


def test_strict_mapping_reports_missing_extra_and_misshaped_tensors() -> None:
    atom_features = AtomFeatures.from_json(shared("atom_init.json"))
    base = _checkpoint("formation-energy-per-atom")

    def variant(edit) -> dict:
        state = dict(base["state_dict"])
        edit(state)
        return {**base, "state_dict": state}

    with pytest.raises(InputError, match="lacks convs.1.bn2.running_var"):
        model_from_original(
            variant(lambda s: s.pop("convs.1.bn2.running_var")), atom_features, "x.pth.tar"
        )
    with pytest.raises(InputError, match="not an original"):
        model_from_original(
            variant(lambda s: s.update({"other.weight": torch.zeros(1)})), atom_features
        )
    with pytest.raises(InputError, match=r"conv_to_fc.bias has shape \(31,\)"):
        model_from_original(
            variant(lambda s: s.update({"conv_to_fc.bias": torch.zeros(31)})), atom_features
        )


def test_atom_init_of_the_wrong_width_is_a_clear_error(tmp_path: Path) -> None:
    narrow = tmp_path / "atom_init.json"
    narrow.write_text(json.dumps({str(z): [0.0] * 10 for z in range(1, 101)}))
    with pytest.raises(InputError, match=r"atom_init.json.*10 values.*expects 92") as info:
        load_original(checkpoint_path("band-gap"), narrow)
    assert "\n" not in str(info.value)


def test_atom_init_is_required_when_the_source_has_none(tmp_path: Path) -> None:
    cif = shared("sample-regression") / "1000041.cif"
    with pytest.raises(InputError, match="atom_init"):
        predict_original(checkpoint_path("band-gap"), [cif])


def test_element_missing_from_atom_init_is_a_clear_error(tmp_path: Path) -> None:
    from pymatgen.core import Lattice, Structure

    few = tmp_path / "few.json"
    table = _read_atom_init(shared("atom_init.json"))
    few.write_text(json.dumps({"8": table[8].tolist(), "22": table[22].tolist()}))
    structure = Structure(Lattice.cubic(3.9), ["Sr", "Ti"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    with pytest.raises(InputError, match="Sr"):
        predict_original(checkpoint_path("band-gap"), {"srti": structure}, few)
