"""An ordered, bounded concurrent map: several calls in flight, results in input order."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def ordered_map(
    fn: Callable[[T], R], items: Iterable[T], jobs: int = 4, max_pending: int | None = None
) -> Iterator[R]:
    """``map(fn, items)`` with ``jobs`` threads, yielding results in the order of ``items``.

    ``items`` is consumed lazily: at most ``max_pending`` (default ``2 * jobs``) items are
    submitted but not yet yielded, so a long video is never decoded ahead into memory. The
    first exception raised by ``fn`` is re-raised at its place in the order. Closing the
    iterator early (``break``, an exception in the consumer, Ctrl-C) cancels the pending
    calls and waits for the running ones; use it as ``with contextlib.closing(...)`` to make
    that immediate.

    Args:
        fn: called in worker threads; it should release the GIL (I/O, OpenCV).
        items: the inputs, read in the caller's thread.
        jobs: worker threads (calls in flight).
        max_pending: bound of the queue of submitted calls, ``>= jobs``.
    """
    jobs = max(1, jobs)
    bound = max(jobs, max_pending or 2 * jobs)
    pending: deque[Future[R]] = deque()
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="ordered-map")
    try:
        for item in items:
            pending.append(pool.submit(fn, item))
            while len(pending) >= bound:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for fut in pending:
            fut.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
