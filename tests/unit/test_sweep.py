"""chalicelib.sweep: the scheduled jobs' backlog, several items at once, within a budget."""

from __future__ import annotations

import threading

import pytest

from chalicelib import sweep


def test_one_thread_is_a_loop_on_the_callers_thread_in_order() -> None:
    seen: list[tuple[int, str]] = []
    left = sweep.each_until(
        [1, 2, 3], lambda n: seen.append((n, threading.current_thread().name)), threads=1, out_of_time=lambda: False
    )
    assert left == 0
    assert seen == [(n, threading.current_thread().name) for n in (1, 2, 3)]


def test_items_are_handled_at_once_on_several_threads_each_exactly_once() -> None:
    together = threading.Barrier(4, timeout=10)  # broken unless four items are in hand at the same time
    seen: list[int] = []
    lock = threading.Lock()

    def handle(n: int) -> None:
        if n < 4:
            together.wait()
        with lock:
            seen.append(n)

    assert sweep.each_until(list(range(40)), handle, threads=4, out_of_time=lambda: False) == 0
    assert sorted(seen) == list(range(40))


def test_once_out_of_time_no_item_is_taken_and_those_taken_are_the_earliest() -> None:
    seen: list[int] = []
    lock = threading.Lock()

    def handle(n: int) -> None:
        with lock:
            seen.append(n)

    calls = 0

    def out_of_time() -> bool:  # asked once per item taken (under the lock): the budget lasts 7 items
        nonlocal calls
        calls += 1
        return calls > 7

    left = sweep.each_until(list(range(20)), handle, threads=3, out_of_time=out_of_time)
    assert left == 13
    assert sorted(seen) == list(range(7))


def test_a_handler_that_raises_stops_the_others_taking_more_and_its_error_reaches_the_caller() -> None:
    started = threading.Event()
    seen: list[int] = []
    lock = threading.Lock()

    def handle(n: int) -> None:
        if n == 0:
            raise RuntimeError("item 0 failed")
        started.wait(timeout=1)  # never set: long enough for item 0's failure to be recorded meanwhile
        with lock:
            seen.append(n)

    with pytest.raises(RuntimeError, match="item 0 failed"):
        sweep.each_until(list(range(1000)), handle, threads=4, out_of_time=lambda: False)
    assert len(seen) <= 3  # each other thread finished the item it held, and took no other


def test_one_thread_raises_at_once_and_takes_nothing_more() -> None:
    seen: list[int] = []

    def handle(n: int) -> None:
        seen.append(n)
        if n == 1:
            raise ValueError("bad item")

    with pytest.raises(ValueError, match="bad item"):
        sweep.each_until([0, 1, 2, 3], handle, threads=1, out_of_time=lambda: False)
    assert seen == [0, 1]


def test_nothing_to_do_and_a_bad_thread_count() -> None:
    assert sweep.each_until([], lambda _: None, threads=8, out_of_time=lambda: False) == 0
    with pytest.raises(ValueError, match="at least 1"):
        sweep.each_until([1], lambda _: None, threads=0, out_of_time=lambda: False)
