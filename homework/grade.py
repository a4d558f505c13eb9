"""Grade homework notebooks: run each question's checks on the student's answers.

    python homework/grade.py NOTEBOOK_OR_FOLDER [...] [--execute] [--json FILE]

A folder means every ``hw*.ipynb`` in it; the student module (``cgcnn_hw.py``) is taken from
the notebook's folder.  **Nothing else is taken from the submission**: the checks come from the
solution notebook of the same name in ``homework/source``, and the code that runs them and the
helpers they use from the instructor's ``homework/source/hw_check.py``, installed as the module
``hw_check`` before any of the student's code runs (the submission's ``hw_check.py`` and
``tests/`` are never imported or read; after the student's cells, a fresh copy runs the checks).

One rule, with or without ``--execute``: the grader runs, in notebook order and in a fresh
namespace, the setup cells (imports, example structures), the answer cells and every code
cell the student added, but not the given demonstration cells (training, plots; marked
``"role": "demo"`` in the cell metadata) nor the ``check`` cells; then every check of every
question.  Each check earns its share of the question's points on its own (partial credit);
a question whose answer cell raised earns nothing.  A written question (``manual``) passes
the automatic check when its answer cell has been filled in; its points are then given by a
person, from the model answers in the solution notebooks.

``--execute`` first runs the whole notebook top to bottom in a Jupyter kernel, as *Run All*
would (errors allowed, as otter-grader does; the cells that raised are reported), then grades
by the same rule in that kernel; it needs nbclient and ipykernel and takes as long as the
notebook.  Without it: seconds per notebook, no training.

Exit status: 0 when every question passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from generate import MANUAL_PLACEHOLDER, SOURCE, Question, parse_notebook  # noqa: E402

#: The student's module, reloaded from the notebook's folder for every notebook graded.
STUDENT_MODULES = ("cgcnn_hw", "hw_check")

#: A written answer needs at least this many words to count as filled in.
MIN_WORDS = 5


@dataclass
class Result:
    """The outcome of one question."""

    notebook: str
    question: str
    points: float
    manual: bool
    passed: bool
    message: str
    #: points earned by the checks that passed (0 for written questions: graded by hand)
    score: float = 0.0


def _source(cell: Any) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def source_questions(name: str, source_dir: Path = SOURCE) -> list[Question]:
    """The questions (with their checks) of the solution notebook called ``name``."""
    import nbformat

    path = Path(source_dir) / name
    if not path.is_file():
        known = ", ".join(sorted(p.name for p in Path(source_dir).glob("*.ipynb")))
        raise FileNotFoundError(f"{name}: not a homework notebook (known: {known})")
    questions, _ = parse_notebook(nbformat.read(path, as_version=4))
    if not questions:
        raise ValueError(f"{path} holds no questions: not a solution notebook")
    return questions


def trusted_checks(source_dir: Path = SOURCE) -> ModuleType:
    """A fresh copy of the instructor's ``hw_check`` module (``source_dir/hw_check.py``)."""
    path = Path(source_dir) / "hw_check.py"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: the grader runs the checks with it")
    spec = importlib.util.spec_from_file_location("hw_check", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _is_source(nb: Any) -> bool:
    return any(
        _source(c).lstrip().startswith("# BEGIN QUESTION") for c in nb.cells if c.cell_type == "raw"
    )


def _labelled(nb: Any) -> list[tuple[str, str | None, Any]]:
    """(role, question, cell) of every cell: roles answer, manual, check, demo, setup, added."""
    labelled = []
    if _is_source(nb):
        _, cells = parse_notebook(nb)
        roles = {id(cell): role for role, cell in cells}
        current = None
        for cell in nb.cells:
            text = _source(cell).lstrip()
            if cell.cell_type == "raw" and text.startswith("# BEGIN QUESTION"):
                current = next(
                    line.split(":", 1)[1].strip()
                    for line in text.split("\n")
                    if line.strip().startswith("name:")
                )
            elif cell.cell_type == "raw" and text.startswith("# END QUESTION"):
                current = None
            elif id(cell) in roles:
                role = roles[id(cell)]
                if role == "test":
                    role = "check"
                elif role in ("plain", "prompt"):
                    role = (
                        "setup" if "setup" in cell.get("metadata", {}).get("tags", []) else "demo"
                    )
                labelled.append((role, current, cell))
        return labelled
    for cell in nb.cells:
        meta = cell.get("metadata", {})
        info = meta.get("homework", {})
        role = info.get("role")
        if role == "answer" and cell.cell_type == "markdown":
            role = "manual"
        elif "setup" in meta.get("tags", []):
            role = "setup"
        elif role not in ("answer", "check", "demo"):
            role = "added"  # a cell the student inserted
        labelled.append((role, info.get("question"), cell))
    return labelled


def answer_cells(nb: Any) -> tuple[list[Any], dict[str, list[Any]]]:
    """(cells the grader runs, in order; {question: its answer cells}) of a notebook.

    The cells run are the setup cells, the code answers and the code cells the student
    added; never the given demonstration cells nor the check cells.  A student notebook
    marks its cells with ``metadata.homework``; a source notebook (the solutions, in otter's
    format) is parsed.
    """
    answers: dict[str, list[Any]] = {}
    run: list[Any] = []
    for role, question, cell in _labelled(nb):
        if role in ("answer", "manual") and question:
            answers.setdefault(question, []).append(cell)
        if cell.cell_type == "code" and role in ("setup", "answer", "added"):
            run.append(cell)
    return run, answers


def cells_to_run(nb: Any) -> list[tuple[str, str]]:
    """``(question or "", code)`` of the cells the grader runs (see :func:`answer_cells`)."""
    run, answers = answer_cells(nb)
    owner = {id(c): q for q, cells in answers.items() for c in cells}
    return [(owner.get(id(c), ""), _source(c)) for c in run]


def _cases(q: Question) -> list[tuple[float, str]]:
    return list(zip(q.test_points, q.tests, strict=True))


@contextlib.contextmanager
def _student_environment(folder: Path, checks: ModuleType):
    """Run in ``folder`` (first on sys.path, fresh modules), ``checks`` as ``hw_check``."""
    saved_modules = {m: sys.modules.pop(m) for m in STUDENT_MODULES if m in sys.modules}
    old_cwd, old_path = Path.cwd(), list(sys.path)
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.path.insert(0, str(folder))
    sys.modules["hw_check"] = checks  # the submission's hw_check.py is never imported
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(old_cwd)
        sys.path[:] = old_path
        for m in STUDENT_MODULES:
            sys.modules.pop(m, None)
        sys.modules.update(saved_modules)


def _written(cells: list[Any]) -> tuple[bool, str]:
    text = "\n".join(_source(c) for c in cells).strip()
    if not text or text == MANUAL_PLACEHOLDER:
        return False, "no answer written: replace the placeholder text with your answer"
    if len(text.split()) < MIN_WORDS:
        return False, f"the answer has fewer than {MIN_WORDS} words"
    return True, "answered; to be graded by hand against the model answer"


def _results(
    path: Path, questions: list[Question], answers: dict[str, list[Any]], found: dict[str, Any]
) -> list[Result]:
    results = []
    for q in questions:
        if q.manual:
            ok, message = _written(
                [c for c in answers.get(q.name, []) if c.cell_type == "markdown"]
            )
            results.append(Result(path.name, q.name, q.points, True, ok, message))
            continue
        earned, ok, message = found.get(
            q.name, (0.0, False, "the checks did not run (kernel died?)")
        )
        results.append(Result(path.name, q.name, q.points, False, ok, message, float(earned)))
    return results


def grade_notebook(path: str | Path, source_dir: Path = SOURCE) -> list[Result]:
    """Grade one notebook without executing it all (see the module docstring)."""
    import nbformat

    path = Path(path).resolve()
    questions = source_questions(path.name, source_dir)
    nb = nbformat.read(path, as_version=4)
    _, answers = answer_cells(nb)
    checks = trusted_checks(source_dir)
    checks.TESTS = path.parent / "tests"  # for check() cells only; grading never reads them
    graded = [(q.name, _cases(q)) for q in questions if not q.manual]
    with _student_environment(path.parent, checks):
        found = checks.grade_cells(cells_to_run(nb), graded, f"<{path.name}>")
    return _results(path, questions, answers, found)


def grade_notebook_executed(
    path: str | Path, source_dir: Path = SOURCE, timeout: int = 1800
) -> list[Result]:
    """Grade one notebook by running all of it in a kernel, then grading as without
    ``--execute`` (same cells, same checks) in that kernel."""
    import nbformat
    from nbclient import NotebookClient

    path = Path(path).resolve()
    questions = source_questions(path.name, source_dir)
    nb = nbformat.read(path, as_version=4)
    _, answers = answer_cells(nb)
    cells = cells_to_run(nb)
    graded = [(q.name, _cases(q)) for q in questions if not q.manual]
    trusted = str((Path(source_dir) / "hw_check.py").resolve())
    if not Path(trusted).is_file():
        raise FileNotFoundError(f"{trusted} is missing: the grader runs the checks with it")
    install = (
        "import importlib.util as _u, pathlib as _p, sys as _s\n"
        "def _trusted_checks():\n"
        f"    _spec = _u.spec_from_file_location('hw_check', {trusted!r})\n"
        "    _module = _u.module_from_spec(_spec)\n"
        "    _spec.loader.exec_module(_module)\n"
        f"    _module.TESTS = _p.Path({str(path.parent / 'tests')!r})\n"
        "    _s.modules['hw_check'] = _module\n"
        "    return _module\n"
        "_trusted_checks()\n"
    )
    marker = "@@homework-result@@"
    runner = (
        "import json as _json\n"
        f"_found = _trusted_checks().grade_cells({cells!r}, {graded!r}, {path.name!r})\n"
        f"print({marker!r} + _json.dumps(_found))"
    )
    given = len(nb.cells)
    nb.cells.insert(0, nbformat.v4.new_code_cell(install))
    nb.cells.append(nbformat.v4.new_code_cell(runner))
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    found: dict[str, Any] = {}
    raised = []
    for k, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error" and 0 < k <= given:
                raised.append(f"cell {k - 1}: {output.get('ename')}")
            for line in output.get("text", "").split("\n"):
                if line.startswith(marker):
                    found = json.loads(line[len(marker) :])
    results = _results(path, questions, answers, found)
    if raised:
        shown = ", ".join(raised[:5]) + (" ..." if len(raised) > 5 else "")
        for r in results:
            if not r.manual and not r.passed:
                r.message += f" (Run All raised in {shown})"
    return results


def notebooks(paths: list[str | Path]) -> list[Path]:
    """The notebooks named by files and folders (a folder: its ``hw*.ipynb``)."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found.extend(
                sorted(x for x in p.glob("hw*.ipynb") if ".ipynb_checkpoints" not in x.parts)
            )
        elif p.is_file():
            found.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such notebook or folder")
    return found


def report(results: list[Result]) -> str:
    """A table of the results, one line per question, and the totals."""
    lines = []
    for r in results:
        status = "PASS" if r.passed else "FAIL"
        kind = "written" if r.manual else f"{r.score:g}/{r.points:g}"
        lines.append(f"{r.notebook:26} {r.question:5} {status}  {kind:8} {r.message}")
    auto = [r for r in results if not r.manual]
    manual = [r for r in results if r.manual]
    lines.append(
        f"automatic: {sum(r.score for r in auto):g}/{sum(r.points for r in auto):g} points, "
        f"{sum(r.passed for r in auto)}/{len(auto)} questions pass; written: "
        f"{sum(r.passed for r in manual)}/{len(manual)} answered "
        f"({sum(r.points for r in manual):g} points to grade by hand)"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", help="notebooks or folders of notebooks")
    parser.add_argument("--execute", action="store_true", help="run each whole notebook first")
    parser.add_argument("--source", type=Path, default=SOURCE, help="solution notebooks (checks)")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    results: list[Result] = []
    for nb in notebooks(args.paths):
        grade = grade_notebook_executed if args.execute else grade_notebook
        results.extend(grade(nb, args.source))
    print(
        f"checks, and the code and helpers that run them, from {args.source.resolve()} "
        "(hw_check.py and the solution notebooks); the submission's hw_check.py and tests/ "
        "are not used"
    )
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
