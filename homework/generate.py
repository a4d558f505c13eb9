"""Generate the student version of the homework from the solution sources.

    python homework/generate.py [--source homework/source] [--out homework/student]

The sources are written in otter-grader's notebook format (Otter Assign, v1 format):

* a raw cell ``# ASSIGNMENT CONFIG`` (YAML, for otter; ignored here);
* each question opens with a raw cell ``# BEGIN QUESTION`` holding ``name:``, ``points:`` and,
  for a written answer, ``manual: true``, and closes with a raw cell ``# END QUESTION``;
* in code, the lines between ``# BEGIN SOLUTION`` and ``# END SOLUTION`` become ``...`` (with
  ``# BEGIN SOLUTION NO PROMPT`` they vanish), a line ending in ``# SOLUTION`` becomes ``...``
  (an assignment keeps its left side: ``x = ...``), lines ending in ``# IGNORE`` vanish, and the
  lines of a ``""\" # BEGIN PROMPT`` / ``""\" # END PROMPT`` string become code;
* a question's answer cells sit between raw cells ``# BEGIN SOLUTION`` and ``# END SOLUTION``:
  code cells keep their given lines (the markers above remove the solution), a markdown cell
  is a written answer, which the student gets as a placeholder to replace;
* a question's checks are the code cells between raw cells ``# BEGIN TESTS`` and
  ``# END TESTS``; each cell is one check, which passes when it runs without an exception.
  A check may open with otter's ``""\" # BEGIN TEST CONFIG`` / ``""\" # END TEST CONFIG``
  string holding ``points: P``; checks without it share the rest of the question's points
  equally.  Each check earns its points on its own (partial credit).

The student version gets, in place of each question's checks, a cell ``check("NAME")`` that runs
them from ``tests/NAME.py`` (written here).  Python files beside the notebooks (the student
module ``cgcnn_hw.py``) get the same treatment of solution markers; every other file is copied
as it is.  Cells of a question that hold the student's answer carry the metadata
``{"homework": {"question": NAME, "role": "answer"}}``, the check cells ``"role": "check"``
and the given code cells outside the setup (demonstrations, training, plots) ``"role":
"demo"``; ``homework/grade.py`` reads them (a cell without this metadata was added by the
student).

Only the standard library and nbformat are needed; the output is deterministic, so running the
command again changes nothing.
"""

from __future__ import annotations

import argparse
import copy
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "source"
STUDENT = HERE / "student"

#: What a student finds in place of a written answer.
MANUAL_PLACEHOLDER = "_Type your answer here, replacing this text._"

_BEGIN_SOLUTION = re.compile(r"^(\s*)#\s*BEGIN SOLUTION(\s+NO PROMPT)?\s*$")
_END_SOLUTION = re.compile(r"^\s*#\s*END SOLUTION\s*$")
_SOLUTION_LINE = re.compile(r"^(\s*)(.*?)\s*#\s*SOLUTION(\s+NO PROMPT)?\s*$")
_ASSIGNMENT = re.compile(r"^([\w\.\[\]\"', ]+?)\s*(?<![=!<>+\-*/%&|^@:])=(?!=)")
_BEGIN_PROMPT = re.compile(r'^\s*("""|\'\'\')\s*#\s*BEGIN PROMPT\s*$')
_END_PROMPT = re.compile(r'^\s*("""|\'\'\')\s*#\s*END PROMPT\s*$')
_IGNORE = re.compile(r"#\s*IGNORE\s*$")
_TEST_CONFIG = re.compile(
    r'^\s*("""|\'\'\')\s*#\s*BEGIN TEST CONFIG\s*\n(.*?)\n\s*\1\s*#\s*END TEST CONFIG\s*\n',
    re.DOTALL,
)


# --------------------------------------------------------------------------- code


def strip_solutions(text: str) -> str:
    """The student version of a piece of Python source (see the module docstring)."""
    out: list[str] = []
    lines = text.split("\n")
    k = 0
    while k < len(lines):
        line = lines[k]
        begin = _BEGIN_SOLUTION.match(line)
        if begin:
            indent, no_prompt = begin.group(1), begin.group(2)
            k += 1
            while k < len(lines) and not _END_SOLUTION.match(lines[k]):
                k += 1
            if k == len(lines):
                raise ValueError(f"# BEGIN SOLUTION without # END SOLUTION: {line.strip()!r}")
            if not no_prompt:
                out.append(f"{indent}...")
            k += 1
            continue
        if _END_SOLUTION.match(line):
            raise ValueError("# END SOLUTION without # BEGIN SOLUTION")
        if _BEGIN_PROMPT.match(line) or _END_PROMPT.match(line) or _IGNORE.search(line):
            k += 1
            continue
        single = _SOLUTION_LINE.match(line)
        if single:
            indent, body, no_prompt = single.groups()
            if not no_prompt:
                assignment = _ASSIGNMENT.match(body)
                out.append(
                    f"{indent}{assignment.group(1).strip()} = ..." if assignment else f"{indent}..."
                )
            k += 1
            continue
        out.append(line)
        k += 1
    return "\n".join(out)


def solution_lines(text: str) -> list[str]:
    """The lines of ``text`` that only the solutions hold (inside solution blocks or marked)."""
    found: list[str] = []
    inside = False
    for line in text.split("\n"):
        if _BEGIN_SOLUTION.match(line):
            inside = True
        elif _END_SOLUTION.match(line):
            inside = False
        elif inside:
            found.append(line)
        elif _SOLUTION_LINE.match(line):
            found.append(_SOLUTION_LINE.match(line).group(2))
    return found


# --------------------------------------------------------------------------- notebooks


@dataclass
class Question:
    """One question of a source notebook."""

    name: str
    points: float
    manual: bool = False
    tests: list[str] = field(default_factory=list)
    solutions: list[str] = field(default_factory=list)  # markdown answers (manual questions)
    #: points of each check given by its TEST CONFIG (None: a share of the rest)
    given_points: list[float | None] = field(default_factory=list)

    @property
    def test_points(self) -> list[float]:
        """The points of each check: given ones, the rest shared equally."""
        given = [p for p in self.given_points if p is not None]
        rest = self.points - sum(given)
        open_ = sum(p is None for p in self.given_points)
        if rest < -1e-9 or (open_ == 0 and abs(rest) > 1e-9):
            raise ValueError(
                f"question {self.name!r}: its checks' points add up to {sum(given):g}, "
                f"not {self.points:g}"
            )
        return [rest / open_ if p is None else p for p in self.given_points]


def split_test_config(code: str) -> tuple[float | None, str]:
    """(points given by the check's ``TEST CONFIG`` or None, the check without it)."""
    match = _TEST_CONFIG.match(code)
    if not match:
        return None, code
    values = _metadata("\n" + match.group(2))
    points = float(values["points"]) if "points" in values else None
    return points, code[match.end() :]


def _source(cell: Any) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _raw_directive(cell: Any) -> str | None:
    """``BEGIN QUESTION``, ``END TESTS``, ... for a raw boundary cell, else None."""
    if cell.get("cell_type") != "raw":
        return None
    first = _source(cell).strip().split("\n", 1)[0].strip()
    match = re.fullmatch(
        r"#\s*(ASSIGNMENT CONFIG|(?:BEGIN|END) (?:QUESTION|SOLUTION|TESTS))", first
    )
    return match.group(1) if match else None


def _metadata(text: str) -> dict[str, str]:
    """``key: value`` lines of a raw cell (the small YAML subset the question cells use)."""
    values = {}
    for line in text.split("\n")[1:]:
        if ":" in line and not line.lstrip().startswith("#"):
            key, value = line.split(":", 1)
            values[key.strip()] = value.strip()
    return values


def _boolean(value: str | None) -> bool:
    return str(value).strip().lower() in {"true", "yes", "1"}


def parse_notebook(nb: Any) -> tuple[list[Question], list[tuple[str, Any]]]:
    """The questions of a source notebook and its cells, each labelled with its role.

    Roles: ``plain`` (outside questions), ``prompt`` (a question's text or given code),
    ``answer`` (a question's code that holds solutions), ``manual`` (a written answer),
    ``test`` (a check).  Boundary cells are dropped.
    """
    questions: list[Question] = []
    cells: list[tuple[str, Any]] = []
    current: Question | None = None
    mode = None  # None | "solution" | "tests"
    for cell in nb.cells:
        directive = _raw_directive(cell)
        text = _source(cell)
        if directive == "ASSIGNMENT CONFIG":
            continue
        if directive == "BEGIN QUESTION":
            if current is not None:
                raise ValueError(f"question {current.name!r} is not closed by # END QUESTION")
            meta = _metadata(text)
            if "name" not in meta:
                raise ValueError(f"a # BEGIN QUESTION cell has no name: {text!r}")
            current = Question(
                meta["name"], float(meta.get("points", 1)), _boolean(meta.get("manual"))
            )
            if any(q.name == current.name for q in questions):
                raise ValueError(f"two questions are called {current.name!r}")
            questions.append(current)
            continue
        if directive == "END QUESTION":
            if current is None or mode is not None:
                raise ValueError("# END QUESTION without an open question (or inside a block)")
            current = None
            continue
        if directive in ("BEGIN SOLUTION", "BEGIN TESTS"):
            if current is None or mode is not None:
                raise ValueError(f"# {directive} outside a question or inside another block")
            mode = "solution" if directive == "BEGIN SOLUTION" else "tests"
            continue
        if directive in ("END SOLUTION", "END TESTS"):
            if mode != ("solution" if directive == "END SOLUTION" else "tests"):
                raise ValueError(f"# {directive} does not close an open block")
            mode = None
            continue
        if mode == "tests":
            if cell.cell_type != "code":
                raise ValueError(f"question {current.name!r}: only code cells may be checks")
            points, code = split_test_config(text)
            current.tests.append(code)
            current.given_points.append(points)
            cells.append(("test", cell))
        elif mode == "solution" and cell.cell_type == "code":
            cells.append(("answer", cell))
        elif mode == "solution":
            current.solutions.append(text)
            cells.append(("manual", cell))
        elif current is not None and cell.cell_type == "code" and solution_lines(text):
            cells.append(("answer", cell))
        elif current is not None:
            cells.append(("prompt", cell))
        else:
            cells.append(("plain", cell))
    if current is not None:
        raise ValueError(f"question {current.name!r} is not closed by # END QUESTION")
    for q in questions:
        if not q.manual and not q.tests:
            raise ValueError(f"question {q.name!r} has no checks and is not manual")
        if q.tests:
            q.test_points  # noqa: B018  (raises when the checks' points do not add up)
    return questions, cells


def _question_of(cells: list[tuple[str, Any]], nb: Any) -> dict[int, str]:
    """Index of each cell of ``cells`` in the source -> the question it belongs to."""
    owner: dict[int, str] = {}
    current = None
    for cell in nb.cells:
        if _raw_directive(cell) == "BEGIN QUESTION":
            current = _metadata(_source(cell))["name"]
        elif _raw_directive(cell) == "END QUESTION":
            current = None
        elif current is not None:
            owner[id(cell)] = current
    return owner


def student_notebook(nb: Any) -> tuple[Any, list[Question]]:
    """The student version of a source notebook, and its questions."""
    import nbformat

    questions, cells = parse_notebook(nb)
    owner = _question_of(cells, nb)
    out = nbformat.v4.new_notebook()
    out.metadata = copy.deepcopy(nb.metadata)
    out.nbformat, out.nbformat_minor = 4, 4
    checked: set[str] = set()
    answered: set[str] = set()
    for role, cell in cells:
        name = owner.get(id(cell))
        if role == "test":
            if name in checked:
                continue
            checked.add(name)
            new = nbformat.v4.new_code_cell(f'check("{name}")')
            new.metadata["homework"] = {"question": name, "role": "check"}
        elif role == "manual":
            if name in answered:
                continue
            answered.add(name)
            new = nbformat.v4.new_markdown_cell(MANUAL_PLACEHOLDER)
            new.metadata["homework"] = {"question": name, "role": "answer"}
        else:
            new = copy.deepcopy(cell)
            if new.cell_type == "code":
                new.source = strip_solutions(_source(new))
                new.outputs = []
                new.execution_count = None
            if role == "answer":
                new.metadata["homework"] = {"question": name, "role": "answer"}
            elif new.cell_type == "code" and "setup" not in new.metadata.get("tags", []):
                new.metadata["homework"] = {"role": "demo"}
        new.pop("id", None)
        out.cells.append(new)
    return out, questions


# --------------------------------------------------------------------------- files


def tests_file(question: Question) -> str:
    """``tests/NAME.py``: the checks of one question as data for ``hw_check``."""
    lines = [
        f'"""Checks of question {question.name} (generated by homework/generate.py)."""',
        "",
        f"NAME = {question.name!r}",
        f"POINTS = {question.points:g}",
        f"CASE_POINTS = [{', '.join(f'{p:g}' for p in question.test_points)}]",
        "CASES = [",
    ]
    for case in question.tests:
        lines.append(f"    {case!r},")
    lines.append("]")
    return "\n".join(lines) + "\n"


def generate(source: Path = SOURCE, out: Path = STUDENT) -> list[Path]:
    """Write the student version of ``source`` to ``out``; return the files written."""
    import nbformat

    source, out = Path(source), Path(out)
    if out.resolve() == source.resolve():
        raise ValueError("the output folder must differ from the source folder")
    written: list[Path] = []
    files: dict[Path, str] = {}
    all_questions: dict[str, Question] = {}
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source)
        if path.is_dir() or any(
            part.startswith(".") or part == "__pycache__" for part in rel.parts
        ):
            continue
        if any(part.endswith("-runs") for part in rel.parts):
            continue
        if path.suffix == ".ipynb":
            nb = nbformat.read(path, as_version=4)
            student, questions = student_notebook(nb)
            for q in questions:
                if q.name in all_questions:
                    raise ValueError(f"question {q.name!r} appears in two notebooks")
                all_questions[q.name] = q
            files[rel] = nbformat.writes(student) + "\n"
        elif path.suffix == ".py":
            files[rel] = strip_solutions(path.read_text())
        else:
            files[rel] = None  # copied as it is
    for q in all_questions.values():
        if q.tests:
            files[Path("tests") / f"{q.name}.py"] = tests_file(q)
    if out.exists():
        shutil.rmtree(out)
    for rel, text in sorted(files.items()):
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if text is None:
            shutil.copyfile(source / rel, target)
        else:
            target.write_text(text)
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--source", type=Path, default=SOURCE, help="solution sources (default: %(default)s)"
    )
    parser.add_argument(
        "--out", type=Path, default=STUDENT, help="student version (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    written = generate(args.source, args.out)
    print(f"wrote {len(written)} files to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
