"""run_in_processes: results in task order, threads shared out, the first error re-raised."""

from __future__ import annotations

import pytest
import torch

from cgcnn.errors import InputError
from cgcnn.parallel import available_cores, run_in_processes


def threads_and_square(x: int) -> tuple[int, int]:
    """The worker's torch thread count and x squared (module level: picklable)."""
    if x < 0:
        raise InputError(f"task {x}", "negative")
    return torch.get_num_threads(), x * x


@pytest.mark.parametrize("jobs", [1, 2])
def test_results_come_back_in_task_order(jobs):
    seen = []
    before = torch.get_num_threads()
    results = run_in_processes(
        threads_and_square, [3, 1, 2], jobs, cores=4, on_done=lambda *a: seen.append(a[:3])
    )
    assert [r[1] for r in results] == [9, 1, 4]
    assert {r[0] for r in results} == {4 // jobs}  # cores // jobs threads each
    assert sorted(f for f, _, _ in seen) == [1, 2, 3]
    assert sorted(t for _, t, _ in seen) == [1, 2, 3]
    assert all(threads_and_square(t)[1] == r[1] for _, t, r in seen)
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("jobs", [1, 2])
def test_the_first_failure_is_raised_as_it_was(jobs):
    with pytest.raises(InputError, match="task -1: negative"):
        run_in_processes(threads_and_square, [2, -1, 3], jobs, cores=2)


def test_nothing_to_do_and_more_jobs_than_tasks():
    assert run_in_processes(threads_and_square, [], 4) == []
    assert run_in_processes(threads_and_square, [5], 8, cores=8)[0] == (8, 25)
    assert available_cores() >= 1


def sleep_then_return(seconds: float) -> float:
    import time

    time.sleep(seconds)
    return seconds


def test_each_call_is_reported_as_it_ends():
    # the short task ends first and is reported at once, not when the long one ends
    reported = []

    def done(_finished, task, _result, seconds):
        reported.append((task, seconds))

    run_in_processes(sleep_then_return, [3.0, 0.1], 2, cores=2, on_done=done)
    (first, first_seconds), (second, second_seconds) = reported
    assert (first, second) == (0.1, 3.0)
    assert first_seconds < second_seconds - 1.0
