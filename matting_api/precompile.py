"""``python -m matting_api.precompile``: compile the offline matting's numba kernels now.

pymatting (foreground estimation, the preconditioner) and our Laplacian kernel
(:mod:`matting_api.backends.cf_solver`) are numba functions cached on disk
(``cache=True``): beside their sources in ``__pycache__``, or in ``NUMBA_CACHE_DIR`` when it
is set (a read-only install: the folder must be writable by the user that runs the service).
The first process to use them compiles them: about 40 s on 2 cores, once. ``make install``,
``make demo`` and the container images run this at install time, so that the first start
of the matting service takes about a second; without it the first start logs a warning
saying what it cost.
"""

from __future__ import annotations

import os
import sys
import time


def main() -> int:
    import logging

    from .backends.closed_form import ClosedFormBackend

    logging.getLogger("matting_api.backends").setLevel(logging.ERROR)  # its first-start warning
    started = time.perf_counter()
    ClosedFormBackend().warm_up()
    where = os.environ.get("NUMBA_CACHE_DIR") or "__pycache__ beside the sources"
    print(f"matting: numba kernels compiled and cached in {time.perf_counter() - started:.1f} s "
          f"({where})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
