"""Checks of the CGCNN homework, run from the notebook: ``check("q2a")``.

Each question's checks are small pieces of Python in ``tests/<question>.py`` (written by
``homework/generate.py`` from the solution notebooks), each worth part of the question's
points.  ``check`` runs all of them on the names your notebook defines and prints which pass,
with a message saying what is wrong, and the points they earn.  The helpers below give the
checks their messages.

The grader (``homework/grade.py``) uses the instructor's copy of this file, loaded from the
instructor's folder, never the one beside your notebook, and the same rule as ``check``: every
check runs, each earns its points on its own.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import os
import traceback
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parent / "tests"

# cgcnn's progress bars use tqdm.auto: in a Jupyter kernel without widgets (not needed here)
# tqdm falls back to text bars and warns "IProgress not found" when it is first imported.  The
# notebooks import this module before cgcnn, pymatgen and torch_geometric, so that one warning
# is silenced here, by its message; every other warning is shown.
warnings.filterwarnings("ignore", message="IProgress not found", category=Warning)


class CheckFailure(AssertionError):
    """A check that failed, with a message for the student."""


def load_cases(name: str, tests_dir: str | Path | None = None) -> tuple[float, list[tuple]]:
    """(points, [(points of the check, its code), ...]) of question ``name``.

    Read from ``tests/<name>.py``; a file without ``CASE_POINTS`` shares the question's
    points equally among its checks.
    """
    path = Path(tests_dir or TESTS) / f"{name}.py"
    if not path.is_file():
        raise FileNotFoundError(f"no checks for {name!r}: {path} is missing")
    values: dict[str, Any] = {}
    exec(compile(path.read_text(), str(path), "exec"), values)
    points = float(values.get("POINTS", 1))
    cases = list(values["CASES"])
    shares = values.get("CASE_POINTS") or [points / len(cases)] * len(cases)
    return points, list(zip(shares, cases, strict=True))


def run_case(code: str, namespace: dict[str, Any]) -> tuple[bool, str]:
    """Run one check in a copy of ``namespace``: (passed, message)."""
    scope = dict(namespace)
    try:
        exec(compile(code, "<check>", "exec"), scope)
    except AssertionError as exc:
        return False, str(exc) or "a check failed (no message)"
    except Exception as exc:
        frames = traceback.extract_tb(exc.__traceback__)
        where = next(
            (f" (in {f.name}, line {f.lineno})" for f in reversed(frames) if f.name != "<module>"),
            "",
        )
        return False, f"{type(exc).__name__}: {exc}{where}"
    return True, "passed"


def run_question(
    cases: Sequence[tuple[float, str]], namespace: dict[str, Any]
) -> tuple[float, bool, str]:
    """Run every check of one question: (points earned, all passed, message).

    Each check runs on its own, whatever the others did, and earns its share of the points;
    the message lists the checks that failed (``check 2 of 4: why``).
    """
    earned, failures = 0.0, []
    for k, (points, code) in enumerate(cases, 1):
        sink = io.StringIO()
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            ok, why = run_case(code, namespace)
        if ok:
            earned += points
        else:
            failures.append(f"check {k} of {len(cases)}: {why}")
    if not failures:
        return earned, True, f"all {len(cases)} checks passed"
    return earned, False, "; ".join(failures)


def python_source(code: str) -> str:
    """Notebook code as plain Python: IPython magics and shell lines commented out."""
    return "\n".join(
        f"# {line}" if line.lstrip().startswith(("%", "!")) else line for line in code.split("\n")
    )


def grade_cells(
    cells: Sequence[tuple[str, str]],
    questions: Sequence[tuple[str, Sequence[tuple[float, str]]]],
    filename: str = "<notebook>",
) -> dict[str, tuple[float, bool, str]]:
    """Run a notebook's graded cells in a fresh namespace, then every question's checks.

    The one grading rule of ``homework/grade.py``, with or without ``--execute``.

    Args:
        cells: ``(question or "", code)`` of the cells to run, in notebook order (setup
            cells, answer cells and cells the student added; see ``grade.cells_to_run``).
        questions: ``(name, [(points, check code), ...])`` of the automatically checked
            questions.
        filename: shown in tracebacks.

    Returns:
        ``{question: (points earned, all passed, message)}``; a question whose own answer
        cell raised earns nothing, with the error as its message.
    """
    namespace: dict[str, Any] = {"__name__": "__main__"}
    errors: dict[str, str] = {}
    for question, code in cells:
        sink = io.StringIO()
        try:
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                exec(compile(python_source(code), filename, "exec"), namespace)
        except Exception as exc:
            if question and question not in errors:
                errors[question] = f"{type(exc).__name__}: {exc}"
    # the checks run with a fresh copy of this file: the student's cells cannot have
    # changed the helpers they use
    fresh = _fresh_copy()
    results = {}
    for name, cases in questions:
        if name in errors:
            results[name] = (0.0, False, f"your answer cell raised {errors[name]}")
        else:
            results[name] = fresh.run_question(cases, namespace)
    return results


def _fresh_copy() -> Any:
    """This file loaded again as a new module, installed as ``hw_check``."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("hw_check", __file__)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.TESTS = TESTS
    sys.modules["hw_check"] = module
    return module


def check(name: str, namespace: dict[str, Any] | None = None) -> bool:
    """Run question ``name``'s checks on the caller's names; print and return the result."""
    if namespace is None:
        frame = inspect.currentframe()
        namespace = frame.f_back.f_globals if frame and frame.f_back else {}
    points, cases = load_cases(name)
    earned, ok, message = run_question(cases, namespace)
    if ok:
        print(f"{name}: all {len(cases)} checks passed ({points:g} points)")
    else:
        print(f"{name}: {earned:g} of {points:g} points; FAILED {message}")
    return ok


@contextlib.contextmanager
def demo(question: str) -> Iterator[None]:
    """Run a demonstration cell that needs ``question``'s answer; if it fails, say so.

    *Run All* then goes on to the question's ``check`` cell (which says what is wrong)
    instead of stopping at a bare error.  With the environment variable
    ``HW_CHECK_STRICT=1`` (the tests that execute the solutions set it) errors are raised.
    """
    try:
        yield
    except Exception as exc:
        if os.environ.get("HW_CHECK_STRICT") == "1":
            raise
        print(
            f"(this cell needs your answer to {question}, which raised "
            f"{type(exc).__name__}: {exc}; run check({question!r}) to see what is wrong)"
        )


# ------------------------------------------------------------------ helpers for the checks


def expect(condition: Any, message: str) -> None:
    """Fail with ``message`` unless ``condition`` holds."""
    if not condition:
        raise CheckFailure(message)


def expect_array(value: Any, shape: tuple[int | None, ...], what: str) -> Any:
    """``value`` as a float numpy array of ``shape`` (None = any size), else a clear failure."""
    import numpy as np

    if value is None or value is Ellipsis:
        raise CheckFailure(f"{what} returned {value!r}: fill in the TODO so it returns an array")
    try:
        import torch

        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
    except ImportError:  # pragma: no cover
        pass
    array = np.asarray(value)
    if array.dtype == object:
        raise CheckFailure(f"{what} should be a numeric array, got {type(value).__name__}")
    wanted = "(" + ", ".join("any" if s is None else str(s) for s in shape) + ")"
    if array.ndim != len(shape) or any(
        s is not None and s != a for s, a in zip(shape, array.shape, strict=False)
    ):
        raise CheckFailure(f"{what} should have shape {wanted}, got {array.shape}")
    return array.astype(float)


def expect_close(got: Any, want: Any, what: str, atol: float = 1e-5, rtol: float = 1e-4) -> None:
    """Fail unless two arrays agree within floating-point tolerance (np.allclose)."""
    import numpy as np

    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    if got.shape != want.shape:
        raise CheckFailure(f"{what}: shape {got.shape}, expected {want.shape}")
    if not np.allclose(got, want, atol=atol, rtol=rtol):
        k = int(np.argmax(np.abs(got - want)))
        raise CheckFailure(
            f"{what}: differs from the reference by up to {np.max(np.abs(got - want)):.3g} "
            f"(at flat index {k}: {got.flat[k]:.6g} instead of {want.flat[k]:.6g})"
        )


def expect_same_parameters(mine: Any, reference: Any, what: str, complete: bool = True) -> None:
    """Fail with a clear message unless two torch modules have the same parameter names and
    shapes (so that ``reference.load_state_dict(mine.state_dict())`` works).

    With ``complete=False`` the reference may hold more (its own buffers), not ``mine``.
    """
    theirs = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    ours = {k: tuple(v.shape) for k, v in mine.state_dict().items()}
    extra = sorted(set(ours) - set(theirs))
    missing = sorted(set(theirs) - set(ours)) if complete else []
    if extra:
        raise CheckFailure(
            f"{what} has parameters the reference lacks: {', '.join(extra[:4])}"
            f"{' ...' if len(extra) > 4 else ''}; keep the layers __init__ creates, add none"
        )
    if missing:
        raise CheckFailure(
            f"{what} lacks the parameters {', '.join(missing[:4])}"
            f"{' ...' if len(missing) > 4 else ''}; keep the layers __init__ creates"
        )
    for key, shape in ours.items():
        if shape != theirs[key]:
            raise CheckFailure(
                f"{what}: {key} has shape {shape}, the reference's has {theirs[key]}; "
                "keep the layer sizes __init__ sets"
            )
