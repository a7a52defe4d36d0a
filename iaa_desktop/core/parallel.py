"""Running many tasks on a pool with a bounded number in flight.

Submitting everything at once would hold every queued argument and result in
memory and make cancelling slow; keeping a small window of tasks in flight
keeps memory flat and lets a closed generator stop after the current ones.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")

#: Nice increment of pool worker processes: long computations yield the CPU to the GUI.
BACKGROUND_NICENESS = 10


def lower_priority() -> None:
    """Pool initializer: run this worker process at background priority (where the OS allows it)."""
    # No os.nice (Windows) or not permitted: run as is.
    with contextlib.suppress(AttributeError, OSError):
        os.nice(BACKGROUND_NICENESS)


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A process pool for long computations: background priority, and spawn, not fork.

    Spawn because the GUI calls the core from a thread of a Qt process, which fork
    would copy in an undefined state; background priority because on a machine
    with few cores the pool would otherwise starve the GUI thread (the event loop
    must never stall for more than 100 ms).
    """
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=lower_priority)


def bounded_results(
    pool: Executor,
    items: Iterable[T],
    submit: Callable[[Executor, T], Future],
    window: int,
    *,
    ordered: bool = False,
) -> Iterator[tuple[T, object]]:
    """Yield ``(item, result)`` for every item, with at most ``window`` tasks in flight.

    Parameters
    ----------
    pool
        A thread or process pool.
    items
        What to run on, consumed lazily.
    submit
        ``submit(pool, item)`` starts the task of ``item`` and returns its future
        (so that only what the task needs is sent to a process, not ``item``).
    window
        Most tasks queued or running at once.
    ordered
        Yield in the order of ``items`` (else as tasks complete).

    A task's exception is raised when its result is reached. Closing the
    generator cancels every task not yet started.
    """
    queue = iter(items)
    in_order: deque[tuple[T, Future]] = deque()
    by_future: dict[Future, T] = {}
    try:
        while True:
            while len(in_order) + len(by_future) < window:
                item = next(queue, _END)
                if item is _END:
                    break
                future = submit(pool, item)
                if ordered:
                    in_order.append((item, future))
                else:
                    by_future[future] = item
            if ordered:
                if not in_order:
                    return
                item, future = in_order.popleft()
                yield item, future.result()
            else:
                if not by_future:
                    return
                done, _ = wait(by_future, return_when=FIRST_COMPLETED)
                for future in done:
                    yield by_future.pop(future), future.result()
    finally:
        for future in [*(f for _, f in in_order), *by_future]:
            future.cancel()


_END = object()
