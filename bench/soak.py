"""Memory over a long run and around very large photos: does a worker give memory back?

Usage::

    python bench/soak.py                      # 1,000 requests at 8 in flight; two 40 MP photos
    python bench/soak.py --requests 300 --no-large

For each memory setting, in the same run (``now``: the services as ``make serve`` starts them,
glibc's mmap threshold fixed and ``malloc_trim`` after large requests,
:mod:`service_common.memory`; ``before``: glibc's defaults and no trimming, as before):

1. **soak**: both services, 100 requests to warm up, then ``--requests`` photos (the sample
   portrait at distinct sizes, 96-200 px) at 8 in flight; every worker's RSS after the
   warm-up and at the end, and the growth.
2. **large**: on fresh services, two 40 MP photos (JPEG) one after the other; the matting
   worker's RSS before, its peak (VmHWM) and after.

Markdown on stdout.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from pathlib import Path

import numpy as np
import requests
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.load import distinct_sizes, png_bytes, proc_memory_kb, run_load, worker_pids  # noqa: E402
from bench.stack import serving  # noqa: E402

CONCURRENCY = 8


def worker_memory(services) -> dict[str, dict[str, int]]:
    out = {}
    for svc in services:
        for pid in worker_pids(svc.process.pid):
            out[svc.name] = proc_memory_kb(pid)
    return out


def portraits(count: int, seed: int) -> list[tuple[bytes, tuple[int, int]]]:
    """The sample portrait at ``count`` distinct sizes (96-200 px), as PNGs with their sizes."""
    sample = Image.open(REPO / "samples" / "astronaut.png").convert("RGB")
    sizes = distinct_sizes(count, 96, 200, seed)
    return [(png_bytes(np.asarray(sample.resize(size))), size) for size in sizes]


def large_photo(megapixels: float = 40.0) -> bytes:
    """The sample portrait upscaled to ``megapixels`` MP (square), as JPEG."""
    side = int((megapixels * 1e6) ** 0.5)
    sample = Image.open(REPO / "samples" / "astronaut.png").convert("RGB")
    buf = io.BytesIO()
    sample.resize((side, side), Image.Resampling.BICUBIC).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--no-large", action="store_true")
    parser.add_argument("--only", choices=("now", "before"), default=None,
                        help="measure one memory setting only")
    args = parser.parse_args(argv)
    warm = portraits(100, seed=1)
    soak = portraits(args.requests, seed=2)
    photo = None if args.no_large else large_photo()
    print(f"## Soak: {args.requests} requests at {CONCURRENCY} in flight after 100 to warm up\n")
    print("| memory setting | service | RSS after warm-up, MB | at the end, MB | growth |")
    print("|---|---|---|---|---|")
    large_rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label in (args.only,) if args.only else ("now", "before"):
            tuning = {"BACKDROP_MAX_PIXELS": "50000000",
                      "BACKDROP_MALLOC_TUNING": "1" if label == "now" else "0"}
            with serving(Path(tmp), **tuning) as (seg, mat):
                run_load(mat.url, warm, CONCURRENCY, tag="warm")
                start = worker_memory([seg, mat])
                result = run_load(mat.url, soak, CONCURRENCY, tag="soak")
                end = worker_memory([seg, mat])
                for name in ("segmentation", "matting"):
                    a, b = start[name]["VmRSS"] / 1024, end[name]["VmRSS"] / 1024
                    print(f"| {label} | {name} | {a:.0f} | {b:.0f} | {100 * (b - a) / a:+.1f} % |",
                          flush=True)
                if result.errors:
                    print(f"| {label} | errors | {len(result.errors)} | {result.errors[0][:80]} | |")
            if photo is None:
                continue
            with serving(Path(tmp), **tuning) as (seg, mat):
                run_load(mat.url, warm[:10], 2, tag="warm")
                before_kb = worker_memory([mat])["matting"]["VmRSS"]
                for _ in range(2):
                    resp = requests.post(mat.url + "/v1/matte", timeout=600,
                                         files={"image": ("big.jpg", photo, "image/jpeg")},
                                         data={"bg_color": "white", "format": "jpg"})
                    resp.raise_for_status()
                mem = worker_memory([mat])["matting"]
                large_rows.append((label, before_kb / 1024, mem["VmHWM"] / 1024, mem["VmRSS"] / 1024))
    if large_rows:
        print("\n## Two 40 MP photos, matting worker\n")
        print("| memory setting | RSS before, MB | peak, MB | after, MB |")
        print("|---|---|---|---|")
        for label, before_mb, peak, after in large_rows:
            print(f"| {label} | {before_mb:.0f} | {peak:.0f} | {after:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
