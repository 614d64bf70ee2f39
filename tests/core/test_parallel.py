"""``ordered_map``: input order, a bounded number of items in flight, errors reach the caller, lazy input."""

from __future__ import annotations

import os
import threading
import time

import pytest

from vision3d.core.parallel import default_workers, ordered_map


def _slow_first(n: int):
    """A function whose early items take longest, so that later items finish first in a pool."""
    done: list[int] = []
    lock = threading.Lock()

    def fn(i: int) -> int:
        time.sleep(0.002 * (n - i))
        with lock:
            done.append(i)
        return i * i

    return fn, done


@pytest.mark.parametrize("workers", [1, 4])
def test_results_come_in_input_order(workers):
    n = 16
    fn, done = _slow_first(n)
    assert list(ordered_map(fn, range(n), workers=workers)) == [i * i for i in range(n)]
    assert sorted(done) == list(range(n))
    if workers > 1:
        # the threads really finished out of order, so the order of the results is ordered_map's doing
        assert done != sorted(done)


def test_default_workers():
    import os

    assert default_workers() == max(1, min(os.cpu_count() or 1, 16))
    assert default_workers(cap=1) == 1


@pytest.mark.parametrize("workers,ahead", [(2, 1), (3, 2), (4, 5), (4, None)])
def test_items_in_flight_are_bounded(workers, ahead):
    """Items are pulled from the input (and submitted) at most ``ahead`` + 1 beyond what the caller has consumed:
    the one being waited for plus ``ahead`` queued behind it (``ahead`` defaults to 2 × workers)."""
    bound = (ahead or 2 * workers) + 1
    n = 40
    lock = threading.Lock()
    state = {"pulled": 0, "started": 0, "consumed": 0, "max_pulled": 0, "max_started": 0}

    def source():
        for i in range(n):
            with lock:
                state["pulled"] += 1
                state["max_pulled"] = max(state["max_pulled"], state["pulled"] - state["consumed"])
            yield i

    def fn(i):
        with lock:
            state["started"] += 1
            state["max_started"] = max(state["max_started"], state["started"] - state["consumed"])
        time.sleep(0.001 * (i % 3))
        return i

    out = []
    for r in ordered_map(fn, source(), workers=workers, ahead=ahead):
        with lock:
            state["consumed"] += 1
        out.append(r)
        time.sleep(0.002)       # a slow consumer: the workers would run far ahead if nothing held them back
    assert out == list(range(n))
    assert state["max_pulled"] == bound, state        # reaches the bound (before the first result) and never passes it
    assert state["max_started"] <= bound, state


def test_ahead_bound_holds_with_a_slow_consumer():
    """Waiting a long time between results does not let more items start than the bound allows."""
    lock = threading.Lock()
    started = []

    def fn(i):
        with lock:
            started.append(i)
        return i

    it = ordered_map(fn, range(100), workers=4, ahead=3)
    assert next(it) == 0
    time.sleep(0.1)                  # plenty of time for the pool to start anything it was given
    with lock:
        assert len(started) <= 3 + 1, started
    assert next(it) == 1
    time.sleep(0.1)
    with lock:
        assert len(started) <= 3 + 2, started
    assert list(it) == list(range(2, 100))


@pytest.mark.parametrize("workers", [1, 3])
def test_exception_reaches_the_caller(workers):
    def fn(i):
        if i == 5:
            raise ValueError(f"bad item {i}")
        return i

    got = []
    it = ordered_map(fn, range(20), workers=workers, ahead=2)
    with pytest.raises(ValueError, match="bad item 5"):
        while True:
            got.append(next(it))
    assert got == [0, 1, 2, 3, 4]     # the results before the failing item still arrive, in order


@pytest.mark.parametrize("workers,ahead", [(1, None), (2, 2), (4, None)])
def test_generator_input_is_consumed_lazily(workers, ahead):
    pulled = []

    def source():
        for i in range(10_000):
            pulled.append(i)
            yield i

    it = ordered_map(lambda i: i + 1, source(), workers=workers, ahead=ahead)
    assert next(it) == 1
    limit = 1 if workers == 1 else (ahead or 2 * workers) + 1
    assert len(pulled) <= limit, len(pulled)
    assert next(it) == 2
    assert len(pulled) <= limit + 1, len(pulled)
    it.close()                         # stopping early shuts the pool down without pulling the rest
    assert len(pulled) < 100


def _square(x: int) -> int:
    return x * x


_OFFSET = 0


def _set_offset(v: int) -> None:
    global _OFFSET
    _OFFSET = v


def _shifted(x: int) -> int:
    return x + _OFFSET


def test_processes_keep_order_and_run_the_initializer():
    from vision3d.core.parallel import spawn_safe

    assert spawn_safe()                       # pytest's entry point guards itself
    assert list(ordered_map(_square, range(7), workers=2, processes=True)) == [x * x for x in range(7)]
    out = list(ordered_map(_shifted, range(5), workers=2, processes=True, initializer=_set_offset, initargs=(100,)))
    assert out == [100, 101, 102, 103, 104]


def _thread_env(_: int) -> tuple:
    import os

    from vision3d.core.parallel import THREAD_ENV

    return tuple(os.environ.get(k) for k in THREAD_ENV)


def test_worker_processes_start_with_one_blas_thread_and_the_parent_keeps_its_own(monkeypatch):
    from vision3d.core.parallel import THREAD_ENV

    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    out = list(ordered_map(_thread_env, range(3), workers=2, processes=True))
    assert all(r == ("1",) * len(THREAD_ENV) for r in out)
    assert os.environ["OMP_NUM_THREADS"] == "7" and "OPENBLAS_NUM_THREADS" not in os.environ


def test_spawn_safe_reads_the_main_script(tmp_path, monkeypatch):
    import sys
    import types

    from vision3d.core.parallel import spawn_safe

    guarded, bare = tmp_path / "guarded.py", tmp_path / "bare.py"
    guarded.write_text('if __name__ == "__main__":\n    main()\n')
    bare.write_text("main()\n")
    for path, safe in ((guarded, True), (bare, False)):
        fake = types.ModuleType("__main__")
        fake.__file__, fake.__spec__ = str(path), None
        monkeypatch.setitem(sys.modules, "__main__", fake)
        assert spawn_safe() is safe
