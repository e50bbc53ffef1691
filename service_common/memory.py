"""Memory as a budget, and giving memory back after large requests.

**The budget.** Each worker knows the memory it may use (:func:`worker_memory_bytes`):
``BACKDROP_WORKER_MEMORY_MB`` when set, else the container's limit (cgroup v2
``memory.max`` or v1 ``memory.limit_in_bytes``) less :data:`PROCESS_RESERVE_BYTES` for the
gunicorn master and the front, shared equally among the workers that run under it, else
the machine's memory the same way. A costly request asks :class:`MemoryBudget` to admit its
estimated peak (both services estimate it from the pixel counts their uploads' headers
declare, before decoding anything: :func:`matting_api.pipeline.peak_bytes` and
:func:`segmentation_api.pipeline.peak_bytes`): it is admitted when the worker's own memory
when idle (models and all, measured) plus the peaks of the requests in flight plus its own
fit in the budget. Otherwise it is answered at once with 503 ``overloaded`` and
``Retry-After`` (it would fit once the others are done), or 413 ``image_too_large`` when
it could never fit, even alone. So parallel large pictures wait their turn at the client
instead of taking the worker past its container's limit (where the kernel would kill it).

A large photo allocates hundreds of megabytes of numpy arrays; freed, glibc keeps much of it
(its heap only shrinks from the top, and after a large block is freed it raises its mmap
threshold, so the next large arrays come from the heap too). So a worker that served one
40 MP photo stayed large. Three measures, all glibc's own (no effect elsewhere):

* the services start with ``MALLOC_MMAP_THRESHOLD_`` fixed at 32 MB (:data:`GLIBC_ENV`):
  every block above it (a large photo's arrays) is its own mapping, returned to the system
  when freed, and glibc no longer raises the threshold after freeing one. Lower thresholds
  cost speed: at 128 KB every video frame's arrays were fresh mappings, page faults and
  all, and the stack ran at 6.3 instead of 7.7 frames per second. Fixing the mmap threshold
  also fixes glibc's trim threshold at 128 KB, which gives back and faults in again the
  heap's top on nearly every free: ``MALLOC_TRIM_THRESHOLD_`` is set to 64 MB (glibc's own
  value once its dynamic threshold has grown), and the explicit trim below does the rest;
* ``MALLOC_ARENA_MAX=2``: glibc gives each thread its own arena (up to 8 per core), each
  keeping its own free memory; with two, 1,000 requests at 8 in flight grew the matting
  worker by 2.8 % instead of 10.3 %, at the same speed;
* after a request whose body was large (:data:`TRIM_AFTER_BYTES`) or every
  :data:`TRIM_EVERY` requests, ``malloc_trim(0)`` returns the heap's free pages.

``bench/soak.py`` measures the effect (RSS over 1,000 requests, and around 40 MP photos).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import ApiError

#: Environment of the services' processes (see the module docstring).
GLIBC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(32 * 1024 * 1024),
             "MALLOC_TRIM_THRESHOLD_": str(64 * 1024 * 1024),
             "MALLOC_ARENA_MAX": "2"}
#: Trim after a request with a body above this many bytes, and after every this many requests.
TRIM_AFTER_BYTES = 2 * 1024 * 1024
TRIM_EVERY = 8

_lock = threading.Lock()
_count = 0
_libc = None
_enabled = True


def enable(on: bool) -> None:
    """Trim after requests (``BACKDROP_MALLOC_TUNING``), or never."""
    global _enabled
    _enabled = on


def _malloc_trim():
    global _libc
    if _libc is None:
        name = ctypes.util.find_library("c")
        try:
            _libc = ctypes.CDLL(name) if name else False
        except OSError:
            _libc = False
    return getattr(_libc, "malloc_trim", None) if _libc else None


def after_request(body_bytes: int | None) -> bool:
    """Count a finished request; trim when it was large or :data:`TRIM_EVERY` have passed.
    Returns whether it trimmed (``False`` without glibc)."""
    global _count
    with _lock:
        _count += 1
        due = (body_bytes or 0) > TRIM_AFTER_BYTES or _count % TRIM_EVERY == 0
    trim = _malloc_trim() if _enabled else None
    if not (due and trim):
        return False
    trim(0)
    return True


# ------------------------------------------------------------------ the memory budget

#: Memory of the processes beside the workers in one container (gunicorn's master, about
#: 40 MB, and the service's front, about 60 MB plus the bodies it buffers), bytes.
PROCESS_RESERVE_BYTES = 256 * 1024 * 1024
#: cgroup v1 reports "no limit" as a number near 2**63.
_UNLIMITED = 1 << 60
#: ``Retry-After`` of a request refused for memory, s (a 40 MP picture takes about 15 s on two
#: cores; most requests in flight finish sooner).
MEMORY_RETRY_AFTER_S = 5
MB = 1024 * 1024


def cgroup_limit_bytes(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """The memory limit of this process's cgroup (v2 ``memory.max``, else v1
    ``memory/memory.limit_in_bytes``), bytes; ``None`` when there is none."""
    for path in (root / "memory.max", root / "memory" / "memory.limit_in_bytes"):
        try:
            raw = path.read_text().strip()
        except OSError:
            continue
        if raw == "max":
            return None
        try:
            value = int(raw)
        except ValueError:
            continue
        return value if 0 < value < _UNLIMITED else None
    return None


def machine_memory_bytes() -> int:
    """The machine's physical memory, bytes."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def worker_memory_bytes(setting_mb: int, workers: int,
                        cgroup_root: Path = Path("/sys/fs/cgroup")) -> tuple[int, str]:
    """``(bytes, where it comes from)``: the memory one worker may use, its models included.

    Args:
        setting_mb: ``BACKDROP_WORKER_MEMORY_MB``; 0 = not set.
        workers: the workers sharing the container's (or machine's) memory, >= 1.
        cgroup_root: where the cgroup files are (tests point it elsewhere).
    """
    if setting_mb > 0:
        return setting_mb * MB, "BACKDROP_WORKER_MEMORY_MB"
    limit = cgroup_limit_bytes(cgroup_root)
    source = "the container's memory limit"
    if limit is None:
        limit, source = machine_memory_bytes(), "the machine's memory"
    share = (limit - PROCESS_RESERVE_BYTES) // max(1, workers)
    return max(share, 64 * MB), f"{source} shared by {workers} worker{'s' if workers != 1 else ''}"


def current_rss_bytes() -> int:
    """This process's resident memory, bytes (``/proc/self/statm``; 0 where there is none)."""
    try:
        fields = Path("/proc/self/statm").read_text().split()
    except OSError:
        return 0
    return int(fields[1]) * os.sysconf("SC_PAGE_SIZE")


class MemoryBudget:
    """What one worker may use, and the estimated peaks of the requests it admitted.

    Args:
        limit_bytes: the worker's memory, its models included.
        source: where the limit comes from (named in the answers).
        rss: reads the worker's resident memory, bytes (tests give their own).
    """

    def __init__(self, limit_bytes: int, source: str, rss=current_rss_bytes) -> None:
        self.limit = int(limit_bytes)
        self.source = source
        self._rss = rss
        self._lock = threading.Lock()
        self._held: dict[int, int] = {}
        self._next = 0
        self._base = 0
        self._floor: int | None = None

    @property
    def in_flight_bytes(self) -> int:
        """The estimated peaks of the admitted requests, summed."""
        with self._lock:
            return sum(self._held.values())

    @contextmanager
    def admit(self, need: int, what: str = "this picture",
              remedy: str = "send a smaller picture, or ask for a smaller size") -> Iterator[None]:
        """Hold ``need`` bytes of the budget while the block runs.

        The worker's own memory is measured whenever it holds no request (its models and
        what its heap kept), so an estimate only has to cover what a request adds. ``what``
        names the request in the answers, ``remedy`` says what the client can do about a 413
        (the matting service's default; the segmentation service has no ``size``).

        Raises:
            ApiError: 503 ``overloaded`` with ``Retry-After`` when ``need`` does not fit
                beside the requests in flight; 413 ``image_too_large`` when it does not fit
                even in an idle worker.
        """
        need = max(0, int(need))
        with self._lock:
            if not self._held:
                self._base = self._rss()
                self._floor = self._base if self._floor is None else min(self._floor, self._base)
            floor = self._floor if self._floor is not None else self._base
            if floor + need > self.limit:
                room = max(0, self.limit - floor)
                raise ApiError(
                    "image_too_large",
                    f"{what} needs about {need // MB:,} MB of memory to process and this worker may use "
                    f"{room // MB:,} MB beside its models ({self.limit // MB:,} MB from {self.source}); "
                    f"{remedy}",
                    need_mb=need // MB, limit_mb=self.limit // MB,
                )
            held = sum(self._held.values())
            if self._base + held + need > self.limit:
                raise ApiError(
                    "overloaded",
                    f"the service is busy with other large pictures: {what} needs about "
                    f"{need // MB:,} MB of memory and {held // MB:,} MB of the {self.limit // MB:,} MB this "
                    f"worker may use are held by requests in flight; retry in {MEMORY_RETRY_AFTER_S} s",
                    retry_after=MEMORY_RETRY_AFTER_S, need_mb=need // MB, limit_mb=self.limit // MB,
                )
            token = self._next
            self._next += 1
            self._held[token] = need
        try:
            yield
        finally:
            with self._lock:
                del self._held[token]


_budget: MemoryBudget | None = None


def configure(limit_bytes: int, source: str) -> MemoryBudget:
    """Set this process's (one worker's) budget; returns it."""
    global _budget
    _budget = MemoryBudget(limit_bytes, source)
    return _budget


def budget() -> MemoryBudget:
    """This process's budget (:func:`configure`; until then the machine's memory, unshared)."""
    global _budget
    if _budget is None:
        _budget = MemoryBudget(*worker_memory_bytes(0, 1))
    return _budget
