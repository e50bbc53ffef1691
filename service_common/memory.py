"""Giving memory back after large requests.

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
import threading

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
