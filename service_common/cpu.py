"""How a service shares the machine's cores: the BLAS library numpy and SciPy call stays on
one thread, and a model call made while other requests are being served runs on one thread.

The services' heavy work runs in pools of their own (torch's and onnxruntime's intra-op
threads, ``BACKDROP_TORCH_THREADS``) or in single-threaded sparse code (the closed-form
solve, the Laplacian kernel). What reaches BLAS is small (the vector products of the
conjugate-gradient iterations), and a multi-threaded OpenBLAS spin-waits between such
calls: on 2 cores, a video frame's matting cost 109 ms of CPU for 55 ms of wall time with
2 BLAS threads, 68 ms for 48 ms with one (``bench/video_throughput.py`` shows what the
other service gains from the freed core). Called once per worker, at app start.

Requests side by side: a lone request (one photo) gets every core for its model, the
lowest latency; when a worker serves several at once (a video's frames in flight, a batch
of photos), each model call runs on one thread, so that calls do not make each other's
threads wait. On 2 cores a 640 x 480 MODNet frame costs 178 ms of CPU on 2 threads and
146 ms on one. A request is "shared" when its worker has other requests in flight, or when
the service that sent it says it has (``X-Backdrop-In-Flight``: the matting service
forwards its own count with each segmentation request, because under a steady stream
segmentation requests arrive one after the other and would each look alone).
:func:`sharing_cores` marks the current request; the models read :func:`cores_shared`.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

import threadpoolctl

#: Threads of the BLAS libraries (OpenBLAS in numpy's and SciPy's wheels).
BLAS_THREADS = 1


def limit_blas_threads(threads: int = BLAS_THREADS) -> None:
    """Set every BLAS library to ``threads`` threads for the rest of the process.

    threadpoolctl sets the libraries loaded when it is called, and SciPy carries an OpenBLAS
    of its own (``libscipy_openblas``) that loads with ``scipy.linalg``, which the backends
    import only when they are built, after this runs. So SciPy's is loaded here first: left
    at 2 threads it spin-waited beside every closed-form solve, 0.7 core for nothing on a
    video frame matted from the selfie segmenter's prior (on 2 cores, 2026-12-06: the solve
    took 66-71 ms of CPU for 41-47 ms of wall time; with one thread CPU and wall time agree)."""
    import scipy.linalg  # noqa: F401 - loads SciPy's OpenBLAS, so that the limit reaches it

    threadpoolctl.threadpool_limits(limits=threads, user_api="blas")



#: Header with the number of requests the sending service has in flight (itself included).
IN_FLIGHT_HEADER = "X-Backdrop-In-Flight"

_IN_FLIGHT: contextvars.ContextVar[int] = contextvars.ContextVar("backdrop_in_flight", default=1)


def requests_in_flight() -> int:
    """How many requests (this one included) share the cores with the current one: the
    most of its worker's count when it started and its sender's (``IN_FLIGHT_HEADER``)."""
    return _IN_FLIGHT.get()


def cores_shared() -> bool:
    """Whether the current request shares the cores with others (see the module doc)."""
    return requests_in_flight() > 1


@contextlib.contextmanager
def sharing_cores(in_flight: int) -> Iterator[None]:
    """Run the code inside as one of ``in_flight`` requests side by side (1: alone)."""
    token = _IN_FLIGHT.set(max(1, in_flight))
    try:
        yield
    finally:
        _IN_FLIGHT.reset(token)
