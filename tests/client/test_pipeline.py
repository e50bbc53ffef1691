"""The ordered, bounded concurrent map of the video pipeline."""

from __future__ import annotations

import contextlib
import random
import threading
import time

import pytest

from client.pipeline import ordered_map


def test_results_come_in_input_order_with_calls_in_flight():
    active, peak = 0, 0
    lock = threading.Lock()

    def slow_square(x: int) -> int:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(random.uniform(0.0, 0.01))
        with lock:
            active -= 1
        return x * x

    assert list(ordered_map(slow_square, range(40), jobs=4)) == [x * x for x in range(40)]
    assert 2 <= peak <= 4


def test_input_is_read_lazily_within_the_bound():
    read = 0

    def items():
        nonlocal read
        for i in range(100):
            read += 1
            yield i

    it = ordered_map(lambda x: x, items(), jobs=2, max_pending=3)
    assert next(it) == 0
    assert read <= 4
    it.close()


def test_first_error_is_raised_in_order_and_rest_cancelled():
    calls = []

    def fn(x: int) -> int:
        calls.append(x)
        if x == 3:
            raise RuntimeError("frame 3 failed")
        return x

    got = []
    with pytest.raises(RuntimeError, match="frame 3"), \
            contextlib.closing(ordered_map(fn, range(1000), jobs=2)) as results:
        for r in results:
            got.append(r)
    assert got == [0, 1, 2]
    assert len(calls) < 1000
