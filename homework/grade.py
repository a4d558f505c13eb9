"""Grade homework notebooks: run each question's checks on the student's answers.

    python homework/grade.py NOTEBOOK_OR_FOLDER [...] [--execute] [--json FILE]

A folder means every ``hw*.ipynb`` in it; the student module (``cgcnn_hw.py``) is taken from
the notebook's folder.  The checks come from the solution notebook of the same name in
``homework/source`` (not from the student's copy, which could have been edited).

By default the grader runs, in a fresh namespace, the notebook's setup cells (tagged
``setup``: imports, the example structures) and its answer cells (the code cells of each
question), then each question's checks: seconds per notebook, no training.  A code
question passes when all its checks run without an exception.  A written question
(``manual``) passes the automatic check when its answer cell has been filled in; its points
are then given by a person, from the model answers in the solution notebooks.

``--execute`` instead runs the whole notebook top to bottom in a Jupyter kernel (errors
allowed, as otter-grader does) and runs the checks in that kernel afterwards; it needs
nbclient and ipykernel and takes as long as the notebook.

Exit status: 0 when every question passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from generate import MANUAL_PLACEHOLDER, SOURCE, Question, parse_notebook  # noqa: E402

#: The student's modules, reloaded from the notebook's folder for every notebook graded.
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

    @property
    def score(self) -> float:
        return self.points if self.passed and not self.manual else 0.0


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


def answer_cells(nb: Any) -> tuple[list[Any], dict[str, list[Any]]]:
    """(cells to run in order, {question: its answer cells}) of a student or source notebook.

    A student notebook marks answers with ``metadata.homework.question``; a source notebook
    (the solutions, in otter's format) is parsed.  Cells to run: setup cells and code
    answers, in notebook order.
    """
    answers: dict[str, list[Any]] = {}
    run: list[Any] = []
    if any(
        _source(c).lstrip().startswith("# BEGIN QUESTION") for c in nb.cells if c.cell_type == "raw"
    ):
        _, cells = parse_notebook(nb)
        labelled = []
        current = None
        roles = {id(cell): role for role, cell in cells}
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
                labelled.append((roles[id(cell)], current, cell))
    else:
        labelled = []
        for cell in nb.cells:
            meta = cell.get("metadata", {}).get("homework", {})
            role = "answer" if meta.get("role") == "answer" else "other"
            if role == "answer" and cell.cell_type == "markdown":
                role = "manual"
            labelled.append((role, meta.get("question"), cell))
    for role, question, cell in labelled:
        if role in ("answer", "manual") and question:
            answers.setdefault(question, []).append(cell)
        tags = cell.get("metadata", {}).get("tags", [])
        if cell.cell_type == "code" and ("setup" in tags or role == "answer"):
            run.append(cell)
    return run, answers


def _python(code: str) -> str:
    """Notebook code as plain Python: IPython magics and shell lines commented out."""
    return "\n".join(
        f"# {line}" if line.lstrip().startswith(("%", "!")) else line for line in code.split("\n")
    )


@contextlib.contextmanager
def _student_environment(folder: Path):
    """Run with ``folder`` as the working directory and first on sys.path, fresh modules."""
    saved_modules = {m: sys.modules.pop(m) for m in STUDENT_MODULES if m in sys.modules}
    old_cwd, old_path = Path.cwd(), list(sys.path)
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.path.insert(0, str(folder))
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


def grade_notebook(path: str | Path, source_dir: Path = SOURCE) -> list[Result]:
    """Grade one notebook without executing it all (see the module docstring)."""
    import nbformat

    path = Path(path).resolve()
    questions = source_questions(path.name, source_dir)
    nb = nbformat.read(path, as_version=4)
    run, answers = answer_cells(nb)
    namespace: dict[str, Any] = {"__name__": "__main__"}
    results: list[Result] = []
    with _student_environment(path.parent):
        from hw_check import run_case

        errors: dict[int, str] = {}
        for cell in run:
            code = _python(_source(cell))
            sink = io.StringIO()
            try:
                with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                    exec(compile(code, f"<{path.name}>", "exec"), namespace)
            except Exception as exc:
                errors[id(cell)] = f"{type(exc).__name__}: {exc}"
        for q in questions:
            cells = answers.get(q.name, [])
            if q.manual:
                ok, message = _written([c for c in cells if c.cell_type == "markdown"])
                results.append(Result(path.name, q.name, q.points, True, ok, message))
                continue
            failure = next((errors[id(c)] for c in cells if id(c) in errors), None)
            if failure:
                message = f"your answer cell raised {failure}"
                results.append(Result(path.name, q.name, q.points, False, False, message))
                continue
            ok, message = True, f"all {len(q.tests)} checks passed"
            for k, code in enumerate(q.tests, 1):
                sink = io.StringIO()
                with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                    passed, why = run_case(code, namespace)
                if not passed:
                    ok, message = False, f"check {k} of {len(q.tests)}: {why}"
                    break
            results.append(Result(path.name, q.name, q.points, False, ok, message))
    return results


def grade_notebook_executed(
    path: str | Path, source_dir: Path = SOURCE, timeout: int = 1800
) -> list[Result]:
    """Grade one notebook by running all of it in a kernel, then its checks."""
    import nbformat
    from nbclient import NotebookClient

    path = Path(path).resolve()
    questions = source_questions(path.name, source_dir)
    nb = nbformat.read(path, as_version=4)
    _, answers = answer_cells(nb)
    marker = "@@homework-result@@"
    for q in questions:
        if q.manual:
            continue
        runner = (
            "import json as _json\nfrom hw_check import run_case as _run_case\n"
            f"_cases = {q.tests!r}\n_result = [True, 'all {len(q.tests)} checks passed']\n"
            "for _k, _code in enumerate(_cases, 1):\n"
            "    _ok, _why = _run_case(_code, globals())\n"
            "    if not _ok:\n"
            "        _result = [False, f'check {_k} of {len(_cases)}: {_why}']\n"
            "        break\n"
            f"print({marker!r} + _json.dumps([{q.name!r}] + _result))"
        )
        nb.cells.append(nbformat.v4.new_code_cell(runner))
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    found: dict[str, tuple[bool, str]] = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            for line in output.get("text", "").split("\n"):
                if line.startswith(marker):
                    name, ok, why = json.loads(line[len(marker) :])
                    found[name] = (ok, why)
    results = []
    for q in questions:
        if q.manual:
            ok, message = _written(
                [c for c in answers.get(q.name, []) if c.cell_type == "markdown"]
            )
            results.append(Result(path.name, q.name, q.points, True, ok, message))
        else:
            ok, message = found.get(q.name, (False, "the checks did not run (kernel died?)"))
            results.append(Result(path.name, q.name, q.points, False, ok, message))
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
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
