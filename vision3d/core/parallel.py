"""``ordered_map``: a function over items in worker threads or processes, results in input order, a bounded number
in flight.

Threads suit per-frame work done by libraries that release the GIL (OpenCV, large NumPy operations); work with
much Python in it (small arrays, SciPy solvers) scales only with processes, which start fresh interpreters
(``spawn``: safe beside CUDA and OpenMP) and get their shared data once through ``initializer``; each starts
with one BLAS/OpenMP thread, since a pool per process oversubscribes the cores (on a 16-core machine 16 workers ×
16 threads; geometric depth with 4 workers × 8 inherited threads on 2 cores ran 1.44× slower,
docs/bench/depth_workers.md).
``Executor.map`` submits every item at once, so on a long video finished results pile up behind a slow one; here
at most ``ahead`` items are submitted beyond the one being waited for, so memory stays flat however long the video.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def default_workers(cap: int = 16) -> int:
    """One thread per CPU core, at most ``cap``."""
    return max(1, min(os.cpu_count() or 1, cap))


def spawn_safe() -> bool:
    """Whether worker processes can be spawned here: a spawned worker re-runs the main script unless it guards
    itself with ``if __name__ == "__main__"`` (interactive sessions, ``python -c`` and ``-m`` are fine)."""
    import sys

    main = sys.modules.get("__main__")
    if main is None or getattr(main, "__spec__", None) is not None:
        return True
    path = getattr(main, "__file__", None)
    if not path:
        return True
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            src = f.read()
    except OSError:
        return False
    return "__name__" in src and "__main__" in src


# thread-pool sizes read by BLAS and OpenMP runtimes when they load: set for worker processes at their start
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
              "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS", "NUMBA_NUM_THREADS")
_ENV_LOCK = threading.Lock()


class _OneThreadProcess(multiprocessing.context.SpawnProcess):
    """A spawned process whose BLAS/OpenMP runtimes start with one thread (the environment is the parent's at
    ``start()``, changed only for that call)."""

    def start(self) -> None:
        with _ENV_LOCK:
            saved = {k: os.environ.get(k) for k in THREAD_ENV}
            os.environ.update(dict.fromkeys(THREAD_ENV, "1"))
            try:
                super().start()
            finally:
                for k, v in saved.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v


class _OneThreadSpawn(multiprocessing.context.SpawnContext):
    Process = _OneThreadProcess


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int | None = None,
                ahead: int | None = None, processes: bool = False, initializer: Callable | None = None,
                initargs: tuple = ()) -> Iterator[R]:
    """``map(fn, items)`` run by ``workers`` threads (default: one per core), or processes with ``processes``
    (then ``fn`` must be a module-level function; ``initializer(*initargs)`` runs once in each; threads are used
    instead where ``spawn_safe()`` says no), yielded in order; at most ``ahead`` (default 2 × workers) results wait
    at a time. ``workers=1`` runs in the calling thread."""
    workers = workers or default_workers()
    processes = processes and spawn_safe()
    if workers <= 1:
        if initializer is not None:
            initializer(*initargs)
        yield from map(fn, items)
        return
    ahead = max(ahead or 2 * workers, 1)
    pool: Executor = ProcessPoolExecutor(workers, mp_context=_OneThreadSpawn(),
                                         initializer=initializer, initargs=initargs) if processes \
        else ThreadPoolExecutor(workers, initializer=initializer, initargs=initargs)
    with pool:
        pending: deque[Future] = deque()
        try:
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) > ahead:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:                     # an error or an abandoned generator: do not run what is still queued
            for f in pending:
                f.cancel()
