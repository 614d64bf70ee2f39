"""``ordered_map``: a function over items in worker threads, results in input order, a bounded number in flight.

For per-frame work done by libraries that release the GIL (OpenCV, NumPy): ``ThreadPoolExecutor.map`` submits
every item at once, so on a long video finished results pile up behind a slow one; here at most ``ahead`` items
are submitted beyond the one being waited for, so memory stays flat however long the video.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def default_workers(cap: int = 16) -> int:
    """One thread per CPU core, at most ``cap``."""
    return max(1, min(os.cpu_count() or 1, cap))


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int | None = None,
                ahead: int | None = None) -> Iterator[R]:
    """``map(fn, items)`` run by ``workers`` threads (default: one per core), yielded in order; at most
    ``ahead`` (default 2 × workers) results wait at a time. ``workers=1`` runs in the calling thread."""
    workers = workers or default_workers()
    if workers <= 1:
        yield from map(fn, items)
        return
    ahead = max(ahead or 2 * workers, 1)
    with ThreadPoolExecutor(workers) as pool:
        pending: deque[Future] = deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) > ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
