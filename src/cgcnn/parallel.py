"""Independent training runs side by side, one process per run, the cores shared out.

A small CGCNN on a CPU does not use many threads well: two runs with one thread each finish
sooner than the same two runs one after the other with two threads each (ensemble members
on this package's 2-core benchmark machine: 1.8x).  :func:`run_in_processes` runs picklable
tasks in ``jobs`` spawned processes, the threads shared out among them, and stops at the
first failure, re-raising its exception (so an ``InputError`` still reaches the user as a
one-line message).

By default the user's thread setting is kept: each process gets :func:`thread_budget`
(torch's thread count: ``OMP_NUM_THREADS``, or ``torch.set_num_threads`` in the calling
program) or its share of the cores, whichever is smaller, and there are never more processes
than cores, so processes times threads never exceed the cores.  Overriding the user's setting
is costly on a busy machine: a two-thread run whose threads wait for each other while another
program holds a core took 24.5 s of training where a one-thread run took 3.7 s (5 epochs of
the homework's perovskites, on the 2-core machine with a benchmark running beside it).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the system tells)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def thread_budget() -> int:
    """Threads the user lets this process use: torch's current thread count (set by
    ``OMP_NUM_THREADS`` or ``torch.set_num_threads``), at most :func:`available_cores`."""
    import torch

    return max(1, min(available_cores(), torch.get_num_threads()))


def share_threads(jobs: int, tasks: int, cores: int | None = None) -> tuple[int, int]:
    """(processes at once, torch threads per process) for ``tasks`` calls asked to run
    ``jobs`` at a time.

    Never more processes than tasks or cores.  Without ``cores``, the cores are
    :func:`available_cores` and each process gets the user's setting
    (:func:`thread_budget`) or its share of the cores, whichever is smaller, so processes
    times threads never exceed the cores; with ``cores``, each gets ``cores // jobs``.
    Every process has at least one thread.
    """
    limit = available_cores() if cores is None else cores
    jobs = max(1, min(jobs, tasks, limit))
    share = max(1, limit // jobs)
    return jobs, (min(thread_budget(), share) if cores is None else share)


def require_jobs(jobs: Any) -> None:
    """Raise ``InputError`` unless ``jobs`` is a whole number >= 1."""
    from cgcnn.errors import InputError

    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise InputError("--jobs", f"must be a whole number >= 1, got {jobs!r}")


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)


def run_in_processes(
    function: Callable[[Any], Any],
    tasks: Sequence[Any],
    jobs: int,
    cores: int | None = None,
    on_done: Callable[[int, Any, Any, float], None] | None = None,
) -> list[Any]:
    """``[function(task) for task in tasks]``, ``jobs`` tasks at a time.

    Args:
        function: a module-level function (it is pickled by name into the workers).
        tasks: its arguments, one per call (picklable).
        jobs: processes at once (at most ``len(tasks)``); 1 runs everything here, in order.
        cores: threads to share out; ``jobs`` is cut to at most this many.  By default
            the cores (:func:`available_cores`), and each call gets the user's thread
            setting (:func:`thread_budget`) or ``cores // jobs`` threads, whichever is
            smaller; when given, ``max(1, cores // jobs)`` (see :func:`share_threads`).
        on_done: called as ``on_done(finished, task, result, seconds)`` after each call,
            ``finished`` counting from 1, ``seconds`` since the start.

    Returns:
        The results, in the order of ``tasks``.

    Raises:
        Whatever the first failing call raised; the calls not yet started are cancelled.
    """
    total = len(tasks)
    if total == 0:
        return []
    jobs, threads = share_threads(jobs, total, cores)
    began = time.perf_counter()
    results: list[Any] = [None] * total
    if jobs == 1:
        import torch

        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            for k, task in enumerate(tasks):
                results[k] = function(task)
                if on_done is not None:
                    on_done(k + 1, task, results[k], time.perf_counter() - began)
        finally:
            torch.set_num_threads(previous)
        return results

    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=jobs, mp_context=context, initializer=_init_worker, initargs=(threads,)
    ) as pool:
        futures = {pool.submit(function, task): k for k, task in enumerate(tasks)}
        pending = set(futures)
        finished = 0
        while pending:
            # FIRST_COMPLETED, so that on_done reports each call as it ends
            complete, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in complete:
                error = future.exception()
                if error is not None:
                    for other in pending:
                        other.cancel()
                    raise error
                k = futures[future]
                results[k] = future.result()
                finished += 1
                if on_done is not None:
                    on_done(finished, tasks[k], results[k], time.perf_counter() - began)
    return results
