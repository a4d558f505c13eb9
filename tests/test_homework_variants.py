# ruff: noqa: E501  (one line per variant, like a table)
"""The homework grader on planted bugs and correct alternatives (slow: about 4 minutes).

Each variant starts from a fully solved student folder (the student version with the
solutions filled in), changes one function, and is graded: a bug must cost exactly the
points of the checks it breaks, in its own question only (partial credit per function, no
cascade: q3c checks ``CrystalGraphNet.forward`` with the package's convolutions and pooling,
so a bug in q3a or q3b does not fail it); a correct alternative must keep every point.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HOMEWORK = ROOT / "homework"
SOURCE = HOMEWORK / "source"
STUDENT = HOMEWORK / "student"

nbformat = pytest.importorskip("nbformat", reason="the homework extra is not installed")
sys.path.insert(0, str(HOMEWORK))
import generate  # noqa: E402
import grade  # noqa: E402

HW1, HW2 = "hw1_crystal_graphs.ipynb", "hw2_training.ipynb"
MODULE = "cgcnn_hw.py"

#: the points of every automatically checked question
FULL = {
    "q2a": 2,
    "q2b": 2,
    "q2d": 2,
    "q3e": 3,
    "q3a": 3,
    "q3b": 1,
    "q3c": 3,
    "q4a": 1,
    "q4b": 1,
    "q4e": 2,
    "q5a": 1,
    "q6a": 2,
    "q6b": 1,
    "q7a": 1,
    "q7b": 2,
}

# fmt: off
# (name, notebook, where: a question's answer cell or cgcnn_hw.py, old text, new text,
#  {question: points it should keep}); every other question keeps all its points
BUGS = [
    # q2a atom features
    ("q2a off by one Z", HW1, "q2a", "str(site.specie.Z)", "str(site.specie.Z - 1)", {"q2a": 0}),
    ("q2a integer keys", HW1, "q2a", "str(site.specie.Z)", "site.specie.Z", {"q2a": 0}),
    ("q2a transposed", HW1, "q2a", "dtype=float)", "dtype=float).T", {"q2a": 0}),
    ("q2a first site only", HW1, "q2a", "str(site.specie.Z)", "str(structure[0].specie.Z)", {"q2a": 0}),
    # q2b neighbour list
    ("q2b no cut", HW1, "q2b", "pairs[:max_neighbors]", "pairs", {"q2b": 0}),
    ("q2b cut one short", HW1, "q2b", "pairs[:max_neighbors]", "pairs[: max_neighbors - 1]", {"q2b": 0}),
    ("q2b farthest first", HW1, "q2b", "for n in neighbors)", "for n in neighbors)[::-1]", {"q2b": 0}),
    ("q2b (j, d) swapped", HW1, "q2b", "(float(n.nn_distance), int(n.index))", "(int(n.index), float(n.nn_distance))", {"q2b": 0}),
    ("q2b centre as neighbour", HW1, "q2b", "for neighbors in structure.get_all_neighbors(radius):\n        pairs = sorted((float(n.nn_distance), int(n.index))", "for i, neighbors in enumerate(structure.get_all_neighbors(radius)):\n        pairs = sorted((float(n.nn_distance), i)", {"q2b": 0}),
    ("q2b distances in fractions", HW1, "q2b", "float(n.nn_distance)", "float(n.nn_distance) / structure.lattice.a", {"q2b": 0}),
    # q2d Gaussian expansion
    ("q2d sigma default 0.5", HW1, "q2d", "sigma = step if", "sigma = 0.5 if", {"q2d": 0}),
    ("q2d sigma not squared", HW1, "q2d", "/ sigma**2", "/ sigma", {"q2d": 0}),
    ("q2d one centre short", HW1, "q2d", "round(radius / step) + 1", "round(radius / step)", {"q2d": 0}),
    ("q2d centres from step", HW1, "q2d", "np.arange(round(radius / step) + 1) * step", "(np.arange(round(radius / step) + 1) + 1) * step", {"q2d": 0}),
    # q3e gated convolution (cgcnn_hw.py); the shuffled-edges check still passes, q3c keeps its points
    ("q3e no residual", HW1, MODULE, "self.softplus_out(atom_fea + self.bn2(summed))", "self.softplus_out(self.bn2(summed))", {"q3e": 1}),
    ("q3e filter and core swapped", HW1, MODULE, "filt, core = gated.chunk(2, dim=1)", "core, filt = gated.chunk(2, dim=1)", {"q3e": 1}),
    ("q3e centre and neighbour swapped in z", HW1, MODULE, "torch.cat([atom_fea[i], atom_fea[j], edge_fea], dim=1)", "torch.cat([atom_fea[j], atom_fea[i], edge_fea], dim=1)", {"q3e": 1}),
    # q3a shared convolution (cgcnn_hw.py); q3c keeps its points (no cascade)
    ("q3a no batch norm", HW1, MODULE, "self.softplus(self.bn(self.fc_neighbors(summed) + self.fc_self(atom_fea)))", "self.softplus(self.fc_neighbors(summed) + self.fc_self(atom_fea))", {"q3a": 1}),
    ("q3a summed on the neighbour", HW1, MODULE, "pair.new_zeros(atom_fea.shape[0], pair.shape[1]).index_add(0, i, pair)", "pair.new_zeros(atom_fea.shape[0], pair.shape[1]).index_add(0, j, pair)", {"q3a": 1}),
    ("q3a centre instead of neighbour", HW1, MODULE, "torch.cat([atom_fea[j], edge_fea], dim=1)", "torch.cat([atom_fea[i], edge_fea], dim=1)", {"q3a": 1}),
    ("q3a relu", HW1, MODULE, "return self.softplus(self.bn(", "return torch.relu(self.bn(", {"q3a": 1}),
    ("q3a mean over neighbours", HW1, MODULE, "index_add(0, i, pair)\n", "index_add(0, i, pair)\n        summed = summed / torch.bincount(i, minlength=len(atom_fea)).clamp(min=1)[:, None]\n", {"q3a": 1}),
    # q3b pooling
    ("q3b mean is a sum", HW1, MODULE, '{"mean": global_mean_pool,', '{"mean": global_add_pool,', {"q3b": 0}),
    ("q3b max is a mean", HW1, MODULE, '"max": global_max_pool,', '"max": global_mean_pool,', {"q3b": 0}),
    ("q3b unknown mode accepted", HW1, MODULE, "    if mode not in functions:\n", "    if mode not in functions and False:\n", {"q3b": 0}),
    # q3c the network
    ("q3c no softplus", HW1, MODULE, "self.fc_out(self.softplus(self.conv_to_fc(crystal)))", "self.fc_out(self.conv_to_fc(crystal))", {"q3c": 0}),
    ("q3c one convolution", HW1, MODULE, "for conv in self.convs:", "for conv in self.convs[:1]:", {"q3c": 0}),
    ("q3c always mean", HW1, MODULE, "pool(x, crystal_index, self.pooling)", "pool(x, crystal_index)", {"q3c": 2}),
    ("q3c an extra layer", HW1, MODULE, "        self.fc_out = nn.Linear(h_fea_len, 1)\n", "        self.fc_out = nn.Linear(h_fea_len, 1)\n        self.extra = nn.Linear(h_fea_len, h_fea_len)\n", {"q3c": 0}),
    # q4a, q4b
    ("q4a signed error", HW2, "q4a", "np.abs(results", "(results", {"q4a": 0}),
    ("q4a rmse", HW2, "q4a", 'float(np.mean(np.abs(results["prediction"] - results["target"])))', 'float(np.sqrt(np.mean((results["prediction"] - results["target"]) ** 2)))', {"q4a": 0}),
    ("q4b smallest first", HW2, "q4b", "ascending=False", "ascending=True", {"q4b": 0}),
    ("q4b signed error", HW2, "q4b", '(results["prediction"] - results["target"]).abs()', '(results["prediction"] - results["target"])', {"q4b": 0}),
    ("q4b one row more", HW2, "q4b", ".head(k)", ".head(k + 1)", {"q4b": 0}),
    # q4e the training loop: each check costs its own point
    ("q4e validation in training mode", HW2, "q4e", "        net.eval()\n        with torch.no_grad():", "        with torch.no_grad():", {"q4e": 1}),
    ("q4e no optimizer step", HW2, "q4e", "            optimizer.step()\n", "", {"q4e": 1}),
    ("q4e epochs from 0", HW2, "q4e", "for epoch in range(1, epochs + 1):", "for epoch in range(epochs):", {"q4e": 0}),
    # q5a
    ("q5a strings for ints", HW2, "q5a", '"max_neighbors": [4, 8, 12]', '"max_neighbors": ["4", "8", "12"]', {"q5a": 0}),
    ("q5a shared, not none", HW2, "q5a", '["gated", "none"]', '["gated", "shared"]', {"q5a": 0}),
    ("q5a batchnorm strings", HW2, "q5a", '"batchnorm": [True, False]', '"batchnorm": ["True", "False"]', {"q5a": 0}),
    # q6a: one function wrong costs its own half point
    ("q6a permuted keeps the order", HW2, "q6a", "permutation(len(structure))", "permutation(len(structure)) * 0 + np.arange(len(structure))", {"q6a": 1.5}),
    ("q6a rotated in place", HW2, "q6a", "    new = structure.copy()\n    new.apply_operation(", "    new = structure\n    new.apply_operation(", {"q6a": 1.5}),
    ("q6a translated not wrapped", HW2, "q6a", "list(range(len(new))), shift, frac_coords=False, to_unit_cell=True", "list(range(len(new))), shift, frac_coords=False, to_unit_cell=False", {"q6a": 1.5}),
    ("q6a supercell fixed", HW2, "q6a", "return structure * scaling", "return structure * (2, 1, 1)", {"q6a": 1.5}),
    # q6b, q7a, q7b
    ("q6b default graph settings", HW2, "q6b", 'cgcnn.featurize(structure, **info["graph_settings"])', "cgcnn.featurize(structure)", {"q6b": 0}),
    ("q6b returns the tensor", HW2, "q6b", "return float(model.predict(Batch.from_data_list([graph.to_data()]))[0, 0].item())", "return model.predict(Batch.from_data_list([graph.to_data()]))", {"q6b": 0}),
    ("q7a gap >= 0", HW2, "q7a", '(table["ind_gap"] > 0)', '(table["ind_gap"] >= 0)', {"q7a": 0}),
    ("q7a index written", HW2, "q7a", "labels.to_csv(dst_csv, index=False)", "labels.to_csv(dst_csv)", {"q7a": 0}),
    ("q7a count, not fraction", HW2, "q7a", 'float(labels["has_gap"].mean())', 'float(labels["has_gap"].sum())', {"q7a": 0}),
    ("q7b pr is roc", HW2, "q7b", '"pr_auc": float(average_precision_score(labels, prob))', '"pr_auc": float(roc_auc_score(labels, prob))', {"q7b": 0}),
    ("q7b plain accuracy", HW2, "q7b", "float(balanced_accuracy_score(labels, prob >= 0.5))", "float(np.mean(labels == (prob >= 0.5)))", {"q7b": 0}),
]

ALTERNATIVES = [
    ("q2a np.stack", HW1, "q2a", "return np.array([embedding[str(site.specie.Z)] for site in structure], dtype=float)", "return np.stack([np.asarray(embedding[f'{s.specie.Z}'], float) for s in structure])"),
    ("q2b ties in any order", HW1, "q2b", "sorted((float(n.nn_distance), int(n.index)) for n in neighbors)", "sorted(((float(n.nn_distance), int(n.index)) for n in neighbors), key=lambda p: (round(p[0], 6), -p[1]))"),
    ("q2b distances 2e-7 A off", HW1, "q2b", "float(n.nn_distance)", "float(n.nn_distance) + 2e-7"),
    ("q2b from get_neighbor_list", HW1, "q2b", "    result = []\n    for neighbors in structure.get_all_neighbors(radius):\n        pairs = sorted((float(n.nn_distance), int(n.index)) for n in neighbors)\n        result.append(pairs[:max_neighbors])\n    return result", "    centres, neighbours, _, distances = structure.get_neighbor_list(radius)\n    result = [[] for _ in structure]\n    for c, j, d in zip(centres, neighbours, distances):\n        result[int(c)].append((float(d), int(j)))\n    return [sorted(p, key=lambda x: x[0])[:max_neighbors] for p in result]"),
    ("q2d torch", HW1, "q2d", "    return np.exp(-((d[:, None] - centres[None, :]) ** 2) / sigma**2)", "    t = torch.as_tensor(d)[:, None] - torch.as_tensor(centres)[None, :]\n    return torch.exp(-(t**2) / sigma**2).numpy()"),
    ("q3a sum then concatenate", HW1, MODULE, "        pair = torch.cat([atom_fea[j], edge_fea], dim=1)  # (E, F + G)\n        summed = pair.new_zeros(atom_fea.shape[0], pair.shape[1]).index_add(0, i, pair)", "        n = atom_fea.shape[0]\n        v = torch.zeros(n, atom_fea.shape[1]).index_add(0, i, atom_fea[j])\n        u = torch.zeros(n, edge_fea.shape[1]).index_add(0, i, edge_fea)\n        summed = torch.cat([v, u], dim=1)"),
    ("q3a a loop over edges", HW1, MODULE, "        summed = pair.new_zeros(atom_fea.shape[0], pair.shape[1]).index_add(0, i, pair)", "        summed = [pair.new_zeros(pair.shape[1]) for _ in range(atom_fea.shape[0])]\n        for k in range(len(i)):\n            summed[int(i[k])] = summed[int(i[k])] + pair[k]\n        summed = torch.stack(summed)"),
    ("q3b scatter_reduce", HW1, MODULE, "    return functions[mode](atom_fea, crystal_index, size)", "    index = crystal_index[:, None].expand_as(atom_fea)\n    reduce = {'mean': 'mean', 'max': 'amax', 'sum': 'sum'}[mode]\n    return atom_fea.new_zeros(size, atom_fea.shape[1]).scatter_reduce(0, index, atom_fea, reduce, include_self=False)"),
    ("q3c functional softplus", HW1, MODULE, "return self.fc_out(self.softplus(self.conv_to_fc(crystal)))", "return self.fc_out(torch.nn.functional.softplus(self.conv_to_fc(crystal)))"),
    ("q3e functional sigmoid and softplus", HW1, MODULE, "messages = self.sigmoid(filt) * self.softplus_core(core)", "messages = torch.sigmoid(filt) * torch.nn.functional.softplus(core)"),
    ("q4e summed squared errors", HW2, "q4e", "float((errors**2).mean())", "float(sum(e**2 for e in errors.tolist()) / len(errors))"),
    ("q4a sklearn", HW2, "q4a", 'float(np.mean(np.abs(results["prediction"] - results["target"])))', '__import__("sklearn.metrics").metrics.mean_absolute_error(results.target, results.prediction)'),
    ("q4b nlargest", HW2, "q4b", 'return results.sort_values("abs_error", ascending=False).head(k).reset_index(drop=True)', 'return results.nlargest(k, "abs_error")'),
    ("q5a other order", HW2, "q5a", '"max_neighbors": [4, 8, 12]', '"max_neighbors": [12, 8, 4]'),
    ("q6a make_supercell", HW2, "q6a", "    return structure * scaling", "    new = structure.copy()\n    new.make_supercell(scaling)\n    return new"),
    ("q7a numpy where", HW2, "q7a", '(table["ind_gap"] > 0).astype(int)', 'np.where(table["ind_gap"].to_numpy() > 0, 1, 0)'),
    ("q7b recalls by hand", HW2, "q7b", "float(balanced_accuracy_score(labels, prob >= 0.5))", "float(np.mean([np.mean((prob >= 0.5)[labels == c] == c) for c in (0, 1)]))"),
]
# fmt: on


def _source(cell) -> str:
    return "".join(cell.source) if isinstance(cell.source, list) else cell.source


@pytest.fixture(scope="module")
def solved(tmp_path_factory) -> Path:
    """The student folder with every answer of the solutions filled in."""
    folder = tmp_path_factory.mktemp("solved")
    shutil.copytree(STUDENT, folder, dirs_exist_ok=True)
    shutil.copyfile(SOURCE / MODULE, folder / MODULE)
    for name in (HW1, HW2):
        src = nbformat.read(SOURCE / name, as_version=4)
        _, cells = generate.parse_notebook(src)
        owner = generate._question_of(cells, src)
        answers: dict[str, list[str]] = {}
        for role, cell in cells:
            if role in ("answer", "manual"):
                answers.setdefault(owner[id(cell)], []).append(_source(cell))
        nb = nbformat.read(folder / name, as_version=4)
        for cell in nb.cells:
            meta = cell.metadata.get("homework", {})
            if meta.get("role") == "answer":
                cell.source = answers[meta["question"]].pop(0)
        nbformat.write(nb, folder / name)
    return folder


def _replace_in_solution(text: str, old: str, new: str) -> str:
    """``text`` with ``old`` replaced by ``new`` once, after its first ``BEGIN SOLUTION``
    (the TODO comments before it quote the same calls)."""
    cut = text.index("BEGIN SOLUTION") if "BEGIN SOLUTION" in text else 0
    head, tail = text[:cut], text[cut:]
    assert tail.count(old) == 1, f"{old!r} is not once in the solution"
    return head + tail.replace(old, new)


def _variant(solved: Path, tmp_path: Path, notebook: str, where: str, old: str, new: str):
    folder = tmp_path / "variant"
    shutil.copytree(solved, folder)
    if where == MODULE:
        text = (folder / MODULE).read_text()
        if text.count(old) != 1:  # the same text in several functions: the solution's
            text = _replace_in_solution(text, old, new)
        else:
            text = text.replace(old, new)
        (folder / MODULE).write_text(text)
    else:
        nb = nbformat.read(folder / notebook, as_version=4)
        cells = [
            c
            for c in nb.cells
            if c.metadata.get("homework") == {"question": where, "role": "answer"}
        ]
        assert len(cells) == 1, where
        cells[0].source = _replace_in_solution(_source(cells[0]), old, new)
        nbformat.write(nb, folder / notebook)
    results = grade.grade_notebook(folder / notebook)
    return {r.question: r for r in results if not r.manual}


def test_the_matrix_is_large_enough():
    assert len(BUGS) >= 30 and len(ALTERNATIVES) >= 10
    assert len({b[0] for b in BUGS}) == len(BUGS)
    # every automatically checked question has planted bugs
    assert {b[2] for b in BUGS if b[2] != MODULE} | {"q3e", "q3a", "q3b", "q3c"} == set(FULL)


@pytest.mark.slow
def test_the_solved_folder_scores_full_marks(solved):
    for notebook in (HW1, HW2):
        results = grade.grade_notebook(solved / notebook)
        assert {r.question: r.score for r in results if not r.manual} == {
            q: FULL[q] for q in FULL if any(r.question == q for r in results)
        }
        assert all(r.passed for r in results)


@pytest.mark.slow
@pytest.mark.parametrize("bug", BUGS, ids=[b[0] for b in BUGS])
def test_every_planted_bug_costs_exactly_its_points(bug, solved, tmp_path):
    _name, notebook, where, old, new, keeps = bug
    results = _variant(solved, tmp_path, notebook, where, old, new)
    scores = {q: r.score for q, r in results.items()}
    assert scores == {q: keeps.get(q, FULL[q]) for q in results}, {
        q: r.message for q, r in results.items() if not r.passed
    }
    for q in keeps:
        assert not results[q].passed and "check " in results[q].message


@pytest.mark.slow
@pytest.mark.parametrize("alternative", ALTERNATIVES, ids=[a[0] for a in ALTERNATIVES])
def test_every_correct_alternative_passes(alternative, solved, tmp_path):
    _name, notebook, where, old, new = alternative
    results = _variant(solved, tmp_path, notebook, where, old, new)
    failed = {q: r.message for q, r in results.items() if not r.passed}
    assert not failed
    assert {q: r.score for q, r in results.items()} == {q: FULL[q] for q in results}


@pytest.mark.slow
def test_messages_say_what_is_wrong(solved, tmp_path):
    """Swapped (j, d) tuples and an extra layer get messages that name the mistake."""
    bugs = {b[0]: b for b in BUGS}
    swapped = _variant(solved, tmp_path / "a", HW1, *bugs["q2b (j, d) swapped"][2:5])
    message = swapped["q2b"].message
    assert "yours look like (j, distance)" in message and "not sorted" not in message
    extra = _variant(solved, tmp_path / "b", HW1, *bugs["q3c an extra layer"][2:5])["q3c"].message
    assert "has parameters the reference lacks: extra.bias, extra.weight" in extra
    assert "load_state_dict" not in extra and "Error(s)" not in extra
