"""Ctrl-C and SIGTERM during a run: stop within a second or two, write the partial run, exit.

The first SIGINT or SIGTERM cancels the run (`preferthinker.cancel`: retries stop, workers start
no new request, requests in flight are abandoned) and raises `Cancelled` in the main thread,
which the loop turns into a partial result for the caller to write. A second signal exits at
once, without writing anything more (the journal already holds everything that finished).
Exit codes: 130 (SIGINT), 143 (SIGTERM).
"""

from __future__ import annotations

import os
import signal
from contextlib import contextmanager
from typing import Any, Iterator

from preferthinker import cancel

SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Handle SIGINT and SIGTERM as described above while the block runs (main thread only).

    Example:
        >>> with stop_on_signals():
        ...     loop.run("a castle", "./liked/")
    """
    cancel.reset()
    previous = {signum: signal.getsignal(signum) for signum in SIGNALS}

    def again(signum: int, frame: Any) -> None:
        os.write(2, f"\nstopped by a second {signal.Signals(signum).name}\n".encode())
        os._exit(128 + signum)

    def first(signum: int, frame: Any) -> None:
        for each in SIGNALS:
            signal.signal(each, again)
        cancel.cancel(signum)
        if not cancel.deferring():  # else `cancel.atomic()` raises when its block ends
            raise cancel.Cancelled(signum)

    for signum in SIGNALS:
        signal.signal(signum, first)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
