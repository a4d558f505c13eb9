"""Threads of parallel runs: the user's setting is kept, runs times threads never exceed
the cores (cgcnn.parallel.share_threads, run_in_processes, and cgcnn.compare's runs)."""

from __future__ import annotations

import pytest
import torch

import cgcnn.comparison
from cgcnn.parallel import available_cores, run_in_processes, share_threads, thread_budget


def torch_threads(_task: int) -> int:
    """The calling process's torch thread count (module level: picklable)."""
    return torch.get_num_threads()


@pytest.fixture
def threads():
    """Set torch's thread count for one test, as a user's OMP_NUM_THREADS would."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def test_the_users_thread_setting_is_kept_in_one_process(threads):
    threads(1)
    assert thread_budget() == 1
    assert share_threads(1, 5) == (1, 1)
    # before, one process got every core whatever the user had set
    assert run_in_processes(torch_threads, [0, 1], 1) == [1, 1]
    assert torch.get_num_threads() == 1


def test_the_budget_is_never_more_than_the_cores(threads):
    threads(available_cores() + 3)
    assert thread_budget() == available_cores()
    assert share_threads(1, 5) == (1, available_cores())


@pytest.mark.parametrize("jobs", [1, 2, 3, 8])
def test_runs_times_threads_never_exceed_the_cores(threads, jobs):
    threads(available_cores())
    cores = available_cores()
    processes, each = share_threads(jobs, 10)
    assert processes == min(jobs, cores)
    assert processes * each <= cores
    assert each == max(1, cores // processes)


def test_fewer_processes_than_tasks_and_explicit_cores():
    assert share_threads(4, 1)[0] == 1
    assert share_threads(2, 10, cores=4) == (2, 2)
    assert share_threads(8, 10, cores=2) == (2, 1)


def test_compare_leaves_the_threads_to_run_in_processes(monkeypatch):
    """cgcnn.compare passes no core count of its own: the default rule decides."""
    seen = {}

    def fake(function, tasks, jobs, cores=None, on_done=None):
        seen.update(jobs=jobs, cores=cores, tasks=len(tasks))
        return []

    monkeypatch.setattr(cgcnn.comparison, "run_in_processes", fake)
    cgcnn.comparison._execute([{"config": {}, "seed": 0, "run_dir": "x"}], 2, False)
    assert seen == {"jobs": 2, "cores": None, "tasks": 1}
