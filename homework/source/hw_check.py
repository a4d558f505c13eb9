"""Checks of the CGCNN homework, run from the notebook: ``check("q2a")``.

Each question's checks are small pieces of Python in ``tests/<question>.py`` (written by
``homework/generate.py`` from the solution notebooks).  ``check`` runs them on the names
your notebook defines and prints whether they pass, with a message saying what is wrong.
The helpers below give the checks their messages.
"""

from __future__ import annotations

import inspect
import traceback
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parent / "tests"


class CheckFailure(AssertionError):
    """A check that failed, with a message for the student."""


def load_cases(name: str, tests_dir: str | Path | None = None) -> tuple[int, list[str]]:
    """(points, [test code, ...]) of question ``name`` from ``tests/<name>.py``."""
    path = Path(tests_dir or TESTS) / f"{name}.py"
    if not path.is_file():
        raise FileNotFoundError(f"no checks for {name!r}: {path} is missing")
    values: dict[str, Any] = {}
    exec(compile(path.read_text(), str(path), "exec"), values)
    return int(values.get("POINTS", 1)), list(values["CASES"])


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


def check(name: str, namespace: dict[str, Any] | None = None) -> bool:
    """Run question ``name``'s checks on the caller's names; print and return the result."""
    if namespace is None:
        frame = inspect.currentframe()
        namespace = frame.f_back.f_globals if frame and frame.f_back else {}
    points, cases = load_cases(name)
    for k, code in enumerate(cases, 1):
        ok, message = run_case(code, namespace)
        if not ok:
            print(f"{name}: FAILED check {k} of {len(cases)}: {message}")
            return False
    print(f"{name}: all {len(cases)} checks passed ({points} points)")
    return True


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
