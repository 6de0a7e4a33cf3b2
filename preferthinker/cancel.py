"""Stopping a run promptly: one process-wide cancel flag, and worker threads that never delay exit.

A signal handler (see `ptgen/cli/signals.py`) calls `cancel()`; from then on every wait made
through `wait()` returns at once, retry loops give up, and `map_in_threads` starts no new work.
The workers are daemon threads, so a request still hanging on a dead server does not keep the
process alive after the partial run is written (a `ThreadPoolExecutor` would join its threads
at interpreter exit and wait out every timeout).

Example:
    >>> from preferthinker import cancel
    >>> cancel.map_in_threads(lambda x: x * 2, [1, 2, 3], workers=2)
    [2, 4, 6]
"""

from __future__ import annotations

import queue
import signal
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_cancelled = threading.Event()
_signal: list[int] = []


class Cancelled(KeyboardInterrupt):
    """The run was cancelled (Ctrl-C, SIGTERM or `cancel()`); `exit_code` is 128 + the signal."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(f"cancelled by {signal.Signals(signum).name}")
        self.signum = signum
        self.exit_code = 128 + signum


def cancel(signum: int = signal.SIGINT) -> None:
    """Mark the process as cancelled: waits return, retries stop, no new request starts."""
    if not _cancelled.is_set():
        _signal.append(signum)
    _cancelled.set()


def cancelled() -> bool:
    """True once `cancel()` was called (until `reset()`)."""
    return _cancelled.is_set()


def exit_code() -> int:
    """128 + the signal that cancelled the run (130, as for SIGINT, when none did)."""
    return 128 + (_signal[0] if _signal else signal.SIGINT)


def reset() -> None:
    """Clear the flag (at the start of a run, so a library caller can run again)."""
    _cancelled.clear()
    _signal.clear()


_atomic_depth = [0]


@contextmanager
def atomic() -> Iterator[None]:
    """A block that a signal must not cut in half (a journal record and the result it describes).

    A signal handler that sees `deferring()` only calls `cancel()`; the `Cancelled` is raised
    here, when the outermost block ends. Main thread only (where signal handlers run).

    Example:
        >>> with atomic():
        ...     journal.append("candidate", index=3)
        ...     result.candidates.append(candidate)
    """
    _atomic_depth[0] += 1
    try:
        yield
    finally:
        _atomic_depth[0] -= 1
    if _atomic_depth[0] == 0:
        check()


def deferring() -> bool:
    """True inside `atomic()`: a signal handler should cancel but not raise."""
    return _atomic_depth[0] > 0


def wait(seconds: float) -> None:
    """Sleep `seconds`, or raise `Cancelled` as soon as the run is cancelled."""
    if _cancelled.wait(max(0.0, seconds)):
        raise Cancelled(_signal[0] if _signal else signal.SIGINT)


def check() -> None:
    """Raise `Cancelled` when the run was cancelled."""
    wait(0.0)


def map_in_threads(
    function: Callable[[T], R],
    items: Sequence[T],
    workers: int,
    on_done: Optional[Callable[[int, R], None]] = None,
    grace: float = 5.0,
) -> list[R]:
    """`[function(item) for item in items]`, at most `workers` at once, in daemon threads.

    Args:
        function: called once per item, in a worker thread.
        items: the work; results come back in this order.
        workers: most calls in flight at once.
        on_done: called in the caller's thread with (index, result) as each call returns, in
            completion order (e.g. to journal it at once).

    The first failure stops new items from starting and is raised here, after up to `grace`
    seconds for the calls already in flight (those that finish still reach `on_done`: work the
    server already did is kept); the rest are abandoned. On cancel nothing more is awaited.
    The caller's waits are interruptible by signals.

    Example:
        >>> map_in_threads(str.upper, ["a", "b"], workers=2)
        ['A', 'B']
    """
    count = len(items)
    if count == 0:
        return []
    results: list[Any] = [None] * count
    finished: queue.Queue = queue.Queue()
    next_index = iter(range(count))
    lock = threading.Lock()
    stop = threading.Event()
    started = [0]

    def work() -> None:
        while not stop.is_set() and not _cancelled.is_set():
            with lock:
                index = next(next_index, None)
                if index is not None:
                    started[0] += 1
            if index is None:
                return
            try:
                finished.put((index, True, function(items[index])))
            except BaseException as error:  # handed to the caller, whatever it is
                finished.put((index, False, error))
                return

    for _ in range(min(workers, count)):
        threading.Thread(target=work, daemon=True, name="ptgen-worker").start()
    failure: Optional[BaseException] = None
    deadline = 0.0
    received = 0
    try:
        while received < count:
            if failure is not None and (received >= started[0] or time.monotonic() > deadline):
                break
            try:
                index, ok, value = finished.get(timeout=0.1)
            except queue.Empty:
                check()
                continue
            received += 1
            if not ok:
                if failure is None:
                    failure, deadline = value, time.monotonic() + grace
                    with lock:
                        stop.set()  # no new item starts; `started` is final from here
                continue
            results[index] = value
            if on_done is not None:
                on_done(index, value)
    finally:
        stop.set()
    if failure is not None:
        raise failure
    return results
