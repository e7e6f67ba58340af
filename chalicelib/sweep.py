"""The scheduled jobs' way through a backlog: several items at once, within a time budget.

One scheduled run settles every stale upload and purges every photo whose time in the trash is up. One at a time,
an item costs its AWS round trips back to back (a purge is about five, ~8 ms each in-region), so a run of 90 s
settles about 2,000 and the jobs fall behind a service deleting more than a few photos a second (docs/SCALE.md).
The work is waiting on the network, not computing, so threads multiply it until the function's CPU is busy:
each item is independent (its own conditional writes), and order only matters as a preference (the oldest first).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

Item = TypeVar("Item")


def each_until(
    items: Sequence[Item], handle: Callable[[Item], None], *, threads: int, out_of_time: Callable[[], bool]
) -> int:
    """Call `handle` on each item, on up to `threads` threads, in the order given (an item is taken only when every
    earlier one has been); take none once `out_of_time()`. Returns how many were left untaken.

    `handle` must deal with its own failures: one that raises stops the others taking more, and the first
    exception is raised once every thread has finished its item. With one thread nothing runs concurrently (the
    calls are made on the caller's thread), so a one-thread run is exactly a loop.
    """
    if threads < 1:
        raise ValueError("threads must be at least 1")
    taken = 0
    failure: list[BaseException] = []
    lock = threading.Lock()

    def take() -> Item | None:
        nonlocal taken
        with lock:
            if taken >= len(items) or failure or out_of_time():
                return None
            taken += 1
            return items[taken - 1]

    def work() -> None:
        while (item := take()) is not None:
            try:
                handle(item)
            except BaseException as e:  # handed to the caller's thread below
                with lock:
                    failure.append(e)
                return

    if threads == 1 or len(items) <= 1:
        while (item := take()) is not None:
            handle(item)
        return len(items) - taken
    workers = [threading.Thread(target=work, name=f"sweep-{n}") for n in range(min(threads, len(items)))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if failure:
        raise failure[0]
    return len(items) - taken
