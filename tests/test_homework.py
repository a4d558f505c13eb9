"""The homework kit (homework/): generation, student version, grader, notebooks."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HOMEWORK = ROOT / "homework"
SOURCE = HOMEWORK / "source"
STUDENT = HOMEWORK / "student"
SHARED = ROOT.parent / "shared" / "data"

nbformat = pytest.importorskip("nbformat", reason="the homework extra is not installed")
sys.path.insert(0, str(HOMEWORK))
import generate  # noqa: E402
import grade  # noqa: E402

NOTEBOOKS = sorted(p.name for p in SOURCE.glob("*.ipynb"))


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts and ".ipynb_checkpoints" not in p.parts
    }


def _text(cell) -> str:
    return "".join(cell.source) if isinstance(cell.source, list) else cell.source


# --------------------------------------------------------------------------- generation


def test_notebooks_exist():
    assert NOTEBOOKS == ["hw1_crystal_graphs.ipynb", "hw2_training.ipynb"]


def test_committed_student_version_is_what_the_generator_writes(tmp_path):
    generate.generate(SOURCE, tmp_path / "student")
    fresh, committed = _files(tmp_path / "student"), _files(STUDENT)
    assert sorted(fresh) == sorted(committed), "run: python homework/generate.py"
    changed = [name for name in fresh if fresh[name] != committed[name]]
    assert not changed, f"stale student files {changed}; run: python homework/generate.py"


def test_generation_is_deterministic(tmp_path):
    generate.generate(SOURCE, tmp_path / "a")
    generate.generate(SOURCE, tmp_path / "b")
    assert _files(tmp_path / "a") == _files(tmp_path / "b")


def _solution_fragments() -> list[str]:
    """Lines only the solutions hold (code in solution blocks, written answers)."""
    fragments: set[str] = set()
    others: list[str] = []
    sources = [p.read_text() for p in SOURCE.glob("*.py")]
    for path in SOURCE.glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        _, cells = generate.parse_notebook(nb)
        for role, cell in cells:
            text = _text(cell)
            if role == "manual":
                fragments.update(line for line in text.split("\n") if len(line.strip()) > 30)
            elif cell.cell_type == "code":
                fragments.update(generate.solution_lines(text))
                others.append(generate.strip_solutions(text))
            else:
                others.append(text)
    for text in sources:
        fragments.update(generate.solution_lines(text))
        others.append(generate.strip_solutions(text))
    given = "\n".join(others)
    # a fragment that also appears outside the solutions (e.g. in given code) proves nothing
    return sorted(f.strip() for f in fragments if len(f.strip()) >= 12 and f.strip() not in given)


def test_student_version_has_todos_and_no_solution_code():
    fragments = _solution_fragments()
    assert len(fragments) > 50
    student = {name: data.decode() for name, data in _files(STUDENT).items()}
    for name, text in student.items():
        if name.startswith("tests/"):
            continue  # the checks (compared with the package, not with the solutions)
        leaked = [f for f in fragments if f in text]
        assert not leaked, f"{name} holds solution lines: {leaked[:3]}"
    for name in [*NOTEBOOKS, "cgcnn_hw.py"]:
        assert "TODO" in student[name], name
    assert student["cgcnn_hw.py"].count("# TODO") == 4
    for name in NOTEBOOKS:
        nb = nbformat.reads(student[name], as_version=4)
        answers = [c for c in nb.cells if c.metadata.get("homework", {}).get("role") == "answer"]
        code = [c for c in answers if c.cell_type == "code"]
        assert code and all("# TODO" in _text(c) and "..." in _text(c) for c in code), name
        assert "BEGIN SOLUTION" not in student[name] and "# SOLUTION" not in student[name]


def test_every_todo_says_what_to_produce():
    """Each TODO says what to return (type or shape) and names a library call to use."""
    todos = []
    for path in [*STUDENT.glob("*.ipynb"), STUDENT / "cgcnn_hw.py"]:
        text = path.read_text()
        if path.suffix == ".ipynb":
            nb = nbformat.reads(text, as_version=4)
            text = "\n\n".join(_text(c) for c in nb.cells if c.cell_type == "code")
        lines = text.split("\n")
        for k, line in enumerate(lines):
            if "# TODO:" in line:
                comment = [line]
                for nxt in lines[k + 1 :]:
                    if not nxt.strip().startswith("#"):
                        break
                    comment.append(nxt)
                todos.append((path.name, " ".join(c.strip().lstrip("#") for c in comment)))
    assert len(todos) == 18
    for name, todo in todos:
        what = ("shape", "float", "dict", "DataFrame", "list", "Structure", "structure", "tensor")
        assert any(w in todo for w in what), f"{name}: TODO does not say what to produce: {todo}"
        assert "(" in todo and "." in todo, f"{name}: TODO names no library call: {todo}"


def test_strip_solutions():
    source = "\n".join(
        [
            "def f(x):",
            "    # TODO: return x squared",
            "    # BEGIN SOLUTION",
            "    y = x * x",
            "    return y",
            "    # END SOLUTION",
            "",
            "answer = 42  # SOLUTION",
            "print(answer)  # SOLUTION",
            "hidden = 1  # SOLUTION NO PROMPT",
            "debug()  # IGNORE",
            "# BEGIN SOLUTION NO PROMPT",
            "secret = 2",
            "# END SOLUTION",
        ]
    )
    assert generate.strip_solutions(source) == "\n".join(
        ["def f(x):", "    # TODO: return x squared", "    ...", "", "answer = ...", "..."]
    )
    assert generate.solution_lines(source) == [
        "    y = x * x",
        "    return y",
        "answer = 42",
        "print(answer)",
        "hidden = 1",
        "secret = 2",
    ]
    with pytest.raises(ValueError, match="without # END SOLUTION"):
        generate.strip_solutions("# BEGIN SOLUTION\nx = 1")


def test_parse_rejects_malformed_questions():
    v4 = nbformat.v4
    open_question = v4.new_notebook(cells=[v4.new_raw_cell("# BEGIN QUESTION\nname: q1")])
    with pytest.raises(ValueError, match="not closed"):
        generate.parse_notebook(open_question)
    no_checks = v4.new_notebook(
        cells=[v4.new_raw_cell("# BEGIN QUESTION\nname: q1"), v4.new_raw_cell("# END QUESTION")]
    )
    with pytest.raises(ValueError, match="no checks"):
        generate.parse_notebook(no_checks)


def test_questions_and_points():
    questions = {
        nb: generate.parse_notebook(nbformat.read(SOURCE / nb, as_version=4))[0] for nb in NOTEBOOKS
    }
    names = [q.name for qs in questions.values() for q in qs]
    assert len(names) == len(set(names)) == 26
    for q in (q for qs in questions.values() for q in qs):
        assert q.points > 0
        assert q.manual == (not q.tests), q.name
        if q.manual:
            assert q.solutions and len(" ".join(q.solutions).split()) > 40, q.name


# --------------------------------------------------------------------------- outputs


def test_committed_notebooks_have_no_outputs():
    tracked = [*SOURCE.glob("*.ipynb"), *STUDENT.glob("*.ipynb")]
    assert len(tracked) == 4
    for path in tracked:
        nb = json.loads(path.read_text())
        for k, cell in enumerate(nb["cells"]):
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [], f"{path.name} cell {k} has outputs: strip them"
                assert cell["execution_count"] is None, f"{path.name} cell {k}"


# --------------------------------------------------------------------------- grader


@pytest.fixture(scope="module")
def grades():
    """Grades of the solution and the untouched student notebooks (no training)."""
    results = {}
    for folder in (SOURCE, STUDENT):
        for nb in NOTEBOOKS:
            results[(folder.name, nb)] = grade.grade_notebook(folder / nb)
    return results


@pytest.mark.parametrize("nb", NOTEBOOKS)
def test_grader_passes_every_question_of_the_solutions(grades, nb):
    failed = [(r.question, r.message) for r in grades[("source", nb)] if not r.passed]
    assert not failed


@pytest.mark.parametrize("nb", NOTEBOOKS)
def test_grader_fails_every_question_of_the_untouched_student_version(grades, nb):
    results = grades[("student", nb)]
    assert len(results) == 13
    passed = [r.question for r in results if r.passed]
    assert not passed, f"vacuous checks: {passed}"
    for r in results:
        if r.manual:
            assert "no answer written" in r.message
        else:  # a message that says what is wrong, not a crash inside the check
            assert "check 1 of" in r.message and ("TODO" in r.message or "got" in r.message), (
                r.question,
                r.message,
            )


def test_grader_on_a_partly_solved_notebook(tmp_path):
    """Answering one question in the student version makes exactly that one pass."""
    nb = nbformat.read(STUDENT / "hw1_crystal_graphs.ipynb", as_version=4)
    for cell in nb.cells:
        meta = cell.metadata.get("homework", {})
        if meta.get("question") == "q2a" and meta.get("role") == "answer":
            cell.source = (
                "def atom_features(structure, embedding):\n"
                "    return np.array([embedding[str(s.specie.Z)] for s in structure], float)\n"
            )
        if meta.get("question") == "q1a" and cell.cell_type == "markdown":
            cell.source = "About 512 times the cost, since 8 times the atoms cubed."
    for name in ("cgcnn_hw.py", "hw_check.py"):
        (tmp_path / name).write_bytes((STUDENT / name).read_bytes())
    nbformat.write(nb, tmp_path / "hw1_crystal_graphs.ipynb")
    results = grade.grade_notebook(tmp_path / "hw1_crystal_graphs.ipynb")
    assert sorted(r.question for r in results if r.passed) == ["q1a", "q2a"]
    text = grade.report(results)
    assert "automatic: 2/16 points, 1/7 questions pass" in text


def test_grade_command_line(tmp_path, capsys):
    (tmp_path / "hw1_crystal_graphs.ipynb").write_bytes(
        (STUDENT / "hw1_crystal_graphs.ipynb").read_bytes()
    )
    for name in ("cgcnn_hw.py", "hw_check.py"):
        (tmp_path / name).write_bytes((STUDENT / name).read_bytes())
    out = tmp_path / "grades.json"
    assert grade.main([str(tmp_path), "--json", str(out)]) == 1
    printed = capsys.readouterr().out
    assert "q3a   FAIL" in printed and "automatic: 0/16 points" in printed
    assert len(json.loads(out.read_text())) == 13
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="not a homework notebook"):
        grade.main(
            [str(tmp_path / "hw1_crystal_graphs.ipynb"), "--source", str(tmp_path / "empty")]
        )
    with pytest.raises(ValueError, match="not a solution notebook"):
        grade.main([str(tmp_path / "hw1_crystal_graphs.ipynb"), "--source", str(tmp_path)])


def _hand_in(tmp_path: Path, edit=None) -> Path:
    """A copy of the untouched student folder; ``edit(cell, question, role)`` may change
    the notebooks' cells (return a new source, or None to keep it)."""
    folder = tmp_path / "submission"
    for name, data in _files(STUDENT).items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    if edit is not None:
        for nb_name in NOTEBOOKS:
            nb = nbformat.read(folder / nb_name, as_version=4)
            for cell in nb.cells:
                meta = cell.metadata.get("homework", {})
                new = edit(cell, meta.get("question"), meta.get("role"))
                if new is not None:
                    cell.source = new
            nbformat.write(nb, folder / nb_name)
    return folder


def _auto_points(results) -> float:
    return sum(r.score for r in results if not r.manual)


_ALWAYS_PASS = """

def run_case(code, namespace):
    return True, "passed"


def run_question(cases, namespace):
    return sum(p for p, _ in cases), True, "all checks passed"


def grade_cells(cells, questions, filename="<notebook>"):
    return {name: (sum(p for p, _ in cases), True, "passed") for name, cases in questions}


def expect(*args, **kwargs):
    pass


expect_array = expect_close = expect_same_parameters = expect

from pathlib import Path as _Path

_Path(__file__).with_name("IMPORTED").write_text("the submission's hw_check.py was imported")
"""


def test_a_submission_whose_hw_check_always_passes_scores_as_unsolved(tmp_path, capsys):
    """The grader never imports the submission's hw_check.py nor reads its tests/."""
    folder = _hand_in(tmp_path)
    checks = folder / "hw_check.py"
    checks.write_text(checks.read_text() + _ALWAYS_PASS)
    for test in (folder / "tests").glob("q*.py"):
        test.write_text(f"NAME = {test.stem!r}\nPOINTS = 3\nCASES = ['pass']\n")
    results = [r for nb in NOTEBOOKS for r in grade.grade_notebook(folder / nb)]
    assert _auto_points(results) == 0
    assert [r.question for r in results if r.passed] == []
    assert not (folder / "IMPORTED").exists()
    # the grader's command line says where the checks come from
    assert grade.main([str(folder)]) == 1
    printed = capsys.readouterr().out
    assert f"from {SOURCE}" in printed and "hw_check.py and tests/ are not used" in printed
    assert "automatic: 0/27 points, 0/15 questions pass" in printed


def test_answer_cells_cannot_change_the_checks(tmp_path):
    """An answer cell that rewires hw_check (or the module the checks import) earns nothing."""
    sabotage = (
        "import sys\n"
        "import hw_check\n"
        "for _m in (hw_check, sys.modules['hw_check']):\n"
        "    _m.run_case = lambda code, namespace: (True, 'passed')\n"
        "    _m.run_question = lambda cases, ns: (sum(p for p, _ in cases), True, 'ok')\n"
        "    _m.expect = _m.expect_close = _m.expect_array = lambda *a, **k: None\n"
    )

    def edit(cell, question, role):
        if role == "answer" and cell.cell_type == "code" and question in ("q2a", "q4a"):
            return sabotage + cell.source
        return None

    folder = _hand_in(tmp_path, edit)
    results = [r for nb in NOTEBOOKS for r in grade.grade_notebook(folder / nb)]
    assert _auto_points(results) == 0
    assert [r.question for r in results if r.passed] == []


def _helper_in_an_added_cell(tmp_path: Path) -> Path:
    """hw1 with q2a answered through a helper that a cell the student inserted defines."""
    folder = _hand_in(tmp_path)
    path = folder / "hw1_crystal_graphs.ipynb"
    nb = nbformat.read(path, as_version=4)
    k = next(
        k
        for k, c in enumerate(nb.cells)
        if c.metadata.get("homework") == {"question": "q2a", "role": "answer"}
    )
    nb.cells[k].source = (
        "def atom_features(structure, embedding):\n"
        "    return np.array([_row(site, embedding) for site in structure], dtype=float)\n"
    )
    helper = "def _row(site, embedding):\n    return embedding[str(site.specie.Z)]\n"
    nb.cells.insert(k, nbformat.v4.new_code_cell(helper))  # no metadata: added by the student
    # a given demonstration cell (the last one, after every answer) is not run: the correct
    # gaussian_expand written there does not count for q2d
    demo = [c for c in nb.cells if c.metadata.get("homework", {}).get("role") == "demo"][-1]
    demo.source = (
        "def gaussian_expand(distances, radius=8.0, step=0.2, sigma=None):\n"
        "    d = np.asarray(distances, dtype=float).reshape(-1)\n"
        "    centres = np.arange(round(radius / step) + 1) * step\n"
        "    return np.exp(-((d[:, None] - centres) ** 2) / (sigma or step) ** 2)\n"
    )
    nbformat.write(nb, path)
    return path


def test_one_rule_helpers_in_added_cells_count_demo_cells_do_not(tmp_path):
    results = grade.grade_notebook(_helper_in_an_added_cell(tmp_path))
    assert [r.question for r in results if r.passed] == ["q2a"]
    assert {r.question: r.score for r in results if not r.manual}["q2a"] == 2


# --------------------------------------------------------------------------- end to end


def _kernel_available() -> str | None:
    for module in ("nbclient", "ipykernel"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install '.[homework]')"
    if not (SHARED / "perovskite-energy").is_dir() or not (SHARED / "perov5-dev.csv").is_file():
        return f"the course data is not at {SHARED}"
    return None


@pytest.mark.slow
@pytest.mark.parametrize("nb", NOTEBOOKS)
def test_solution_notebooks_execute_end_to_end(nb, tmp_path, monkeypatch):
    reason = _kernel_available()
    if reason:
        pytest.skip(reason)
    from nbclient import NotebookClient

    monkeypatch.setenv("CGCNN_HW_WORK", str(tmp_path / "runs"))
    monkeypatch.setenv("CGCNN_HW_SHARED", str(SHARED))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("HW_CHECK_STRICT", "1")  # demo cells raise instead of explaining
    notebook = nbformat.read(SOURCE / nb, as_version=4)
    # then the model answers' claims about the run (homework/answer_claims.py), in the kernel
    marker = "@@claims@@"
    notebook.cells.append(
        nbformat.v4.new_code_cell(
            f"import sys as _sys\n_sys.path.insert(0, {str(HOMEWORK)!r})\n"
            "import answer_claims as _claims\n"
            f"print({marker!r} + repr(_claims.failed_claims({nb!r}, globals())))"
        )
    )
    started = time.perf_counter()
    NotebookClient(
        notebook,
        timeout=1800,
        kernel_name="python3",
        resources={"metadata": {"path": str(SOURCE)}},
    ).execute()
    seconds = time.perf_counter() - started
    errors = [
        o for c in notebook.cells for o in c.get("outputs", []) if o.get("output_type") == "error"
    ]
    assert not errors
    printed = [o.get("text", "") for o in notebook.cells[-1].get("outputs", [])]
    failed = [line for text in printed for line in text.split("\n") if line.startswith(marker)]
    assert failed == [f"{marker}[]"], failed
    # the time is reported, not asserted: on a loaded machine it says nothing about the code
    # (the 10-minute budget is measured with other work beside it; see homework/README.md)
    print(f"{nb} executed in {seconds:.0f} s")


@pytest.mark.slow
@pytest.mark.parametrize("nb", NOTEBOOKS)
def test_run_all_on_the_untouched_student_version_reaches_every_check(nb, tmp_path, monkeypatch):
    """Run All does not stop at a demonstration cell: every cell runs without an error, each
    check cell says what is missing, and no stray warning is printed."""
    reason = _kernel_available()
    if reason:
        pytest.skip(reason)
    from nbclient import NotebookClient

    monkeypatch.setenv("CGCNN_HW_WORK", str(tmp_path / "runs"))
    monkeypatch.setenv("CGCNN_HW_SHARED", str(SHARED))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("HW_CHECK_STRICT", raising=False)
    notebook = nbformat.read(STUDENT / nb, as_version=4)
    NotebookClient(  # raises at the first cell with an error
        notebook,
        timeout=1800,
        kernel_name="python3",
        resources={"metadata": {"path": str(STUDENT)}},
    ).execute()
    checks = [c for c in notebook.cells if c.metadata.get("homework", {}).get("role") == "check"]
    assert len(checks) == (7 if nb.startswith("hw1") else 8)
    for cell in checks:
        printed = "".join(o.get("text", "") for o in cell.get("outputs", []))
        assert "FAILED check 1 of" in printed and "0 of" in printed, printed
    stderr = [
        o.get("text", "")
        for c in notebook.cells
        for o in c.get("outputs", [])
        if o.get("name") == "stderr"
    ]
    assert not any("Warning" in text for text in stderr), stderr


@pytest.mark.slow
def test_grader_executing_part_1():
    """--execute runs the whole notebook in a kernel, then the checks there."""
    for module in ("nbclient", "ipykernel"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (pip install '.[homework]')")
    name = "hw1_crystal_graphs.ipynb"
    solved = grade.grade_notebook_executed(SOURCE / name)
    assert [r.question for r in solved if not r.passed] == []
    untouched = grade.grade_notebook_executed(STUDENT / name)
    assert [r.question for r in untouched if r.passed] == []
    assert all("check 1 of" in r.message for r in untouched if not r.manual)


@pytest.mark.slow
def test_both_grading_modes_agree(tmp_path):
    """The helper in an added cell passes, the edited demo cell does not count, in both modes;
    an always-passing hw_check.py changes nothing in the kernel either."""
    for module in ("nbclient", "ipykernel"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (pip install '.[homework]')")
    path = _helper_in_an_added_cell(tmp_path)
    (path.parent / "hw_check.py").write_text(
        (path.parent / "hw_check.py").read_text() + _ALWAYS_PASS
    )
    default = grade.grade_notebook(path)
    executed = grade.grade_notebook_executed(path)
    assert [(r.question, r.passed, r.score) for r in executed] == [
        (r.question, r.passed, r.score) for r in default
    ]
    assert [r.question for r in executed if r.passed] == ["q2a"]
    assert not (path.parent / "IMPORTED").exists()
