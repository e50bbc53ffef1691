"""Load test: both services under gunicorn on loopback, a bounded number of requests.

    .venv/bin/python -m bench.load [--requests 300] [--concurrency 8]
                                   [--matting-workers 2] [--matting-threads 4] [--seg-workers 2]
                                   [--min-side 96] [--max-side 200] [--seed 0]

Starts the segmentation service (U^2-Net-p, offline) and the matting service (closed-form
matting, offline) with gunicorn on free loopback ports, warms them up, then sends
``--requests`` ``POST /v1/matte`` requests, ``--concurrency`` at a time. Every input is a
generated photo (a coloured disk on a noisy background) of a *distinct* size, and every
answer must have that size (``X-Width``/``X-Height`` and the decoded PNG) and carry the
request's own ``X-Request-Id``: an answer swapped between concurrent requests is counted as
an error.

Printed: errors (must be 0), latency p50/p95/p99, throughput, and the resident memory (VmRSS
from ``/proc/<pid>/status``) of every gunicorn worker after warm-up and at the end (growth
must stay under 10 %). The exit status is 1 when either bound is broken.

The ``/proc`` helpers (:func:`worker_pids`, :func:`proc_memory_kb`) are also used by the
robustness tests to watch a worker's memory.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import requests
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from service_common.serve import Service, free_port, running  # noqa: E402

#: Largest accepted growth of a worker's RSS between warm-up and the end of the run.
MAX_RSS_GROWTH = 0.10


# ---------------------------------------------------------------- inputs


def disk_image(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A ``height x width x 3`` uint8 photo: a saturated disk on a dark noisy background.

    The disk is centred, its radius a third of the short side, its colour drawn from
    ``seed``; the background is uniform noise in 0..70. U^2-Net-p finds the disk as the
    salient object at any size from ~8 px up.
    """
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 70, (height, width, 3), dtype=np.uint8)
    yy, xx = np.mgrid[:height, :width]
    inside = (xx - (width - 1) / 2) ** 2 + (yy - (height - 1) / 2) ** 2 <= (min(width, height) / 3) ** 2
    colour = rng.integers(0, 3)
    rgb = np.array([60, 60, 60], dtype=np.uint8)
    rgb[colour] = 240
    image[inside] = rgb
    return image


def distinct_sizes(count: int, low: int, high: int, seed: int = 0) -> list[tuple[int, int]]:
    """``count`` different ``(width, height)`` pairs with both sides in ``[low, high]``."""
    side = high - low + 1
    if count > side * side:
        raise ValueError(f"only {side * side} distinct sizes between {low} and {high} px")
    rng = np.random.default_rng(seed)
    flat = rng.choice(side * side, size=count, replace=False)
    return [(low + int(i) % side, low + int(i) // side) for i in flat]


def png_bytes(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


# ---------------------------------------------------------------- /proc


def worker_pids(master_pid: int) -> list[int]:
    """PIDs of the direct children of ``master_pid`` (a gunicorn master's workers), sorted."""
    children: set[int] = set()
    task_dir = Path(f"/proc/{master_pid}/task")
    try:
        for task in task_dir.iterdir():
            text = (task / "children").read_text()
            children.update(int(p) for p in text.split())
    except OSError:
        pass
    if children:
        return sorted(children)
    for stat in Path("/proc").glob("[0-9]*/stat"):  # kernels without .../children
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master_pid:
            children.add(int(stat.parent.name))
    return sorted(children)


def proc_memory_kb(pid: int) -> dict[str, int]:
    """``{"VmRSS": kB, "VmHWM": kB}`` (resident now, and its peak) of process ``pid``."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def rss_by_worker(services: Sequence[Service]) -> dict[str, int]:
    """``"<service>:<pid>" -> VmRSS kB`` for every worker of ``services``."""
    out: dict[str, int] = {}
    for svc in services:
        if svc.process is None:
            continue
        for pid in worker_pids(svc.process.pid):
            out[f"{svc.name}:{pid}"] = proc_memory_kb(pid)["VmRSS"]
    return out


# ---------------------------------------------------------------- the run


@dataclass
class LoadResult:
    """Outcome of :func:`run_load`.

    Attributes:
        latencies_s: wall time of each successful request, seconds.
        errors: one line per failed request (status, mismatch, exception).
        wall_s: wall time of the whole run, seconds.
    """

    latencies_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def requests(self) -> int:
        return len(self.latencies_s) + len(self.errors)

    def percentile_ms(self, q: float) -> float:
        """The ``q``-th percentile (0..100) of the latencies in ms (nearest rank)."""
        if not self.latencies_s:
            return float("nan")
        ordered = sorted(self.latencies_s)
        rank = max(0, min(len(ordered) - 1, int(np.ceil(q / 100.0 * len(ordered))) - 1))
        return ordered[rank] * 1000.0


def one_request(session: requests.Session, url: str, image: bytes, size: tuple[int, int],
                request_id: str, timeout: float) -> tuple[float, str | None]:
    """POST one image; ``(seconds, None)`` when the answer is its own, else ``(s, error)``."""
    started = time.perf_counter()
    try:
        resp = session.post(
            url + "/v1/matte", files={"image": ("photo.png", image, "image/png")},
            data={"format": "png"}, headers={"X-Request-Id": request_id}, timeout=timeout,
        )
    except requests.RequestException as exc:
        return time.perf_counter() - started, f"{request_id}: {type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - started
    if resp.status_code != 200:
        return seconds, f"{request_id}: HTTP {resp.status_code} {resp.text[:200]}"
    if resp.headers.get("X-Request-Id") != request_id:
        return seconds, f"{request_id}: answered with X-Request-Id {resp.headers.get('X-Request-Id')}"
    header_size = (resp.headers.get("X-Width"), resp.headers.get("X-Height"))
    try:
        decoded = Image.open(io.BytesIO(resp.content)).size
    except Exception as exc:  # noqa: BLE001 - any undecodable answer is an error
        return seconds, f"{request_id}: undecodable answer ({exc})"
    if header_size != (str(size[0]), str(size[1])) or decoded != size:
        return seconds, f"{request_id}: sent {size}, got headers {header_size}, image {decoded}"
    return seconds, None


def run_load(url: str, images: Sequence[tuple[bytes, tuple[int, int]]], concurrency: int,
             timeout: float = 120.0, tag: str = "load") -> LoadResult:
    """Send every ``(png, (width, height))`` of ``images`` to ``url``, ``concurrency`` at once."""
    result = LoadResult()
    sessions = [requests.Session() for _ in range(concurrency)]

    def task(index: int) -> tuple[float, str | None]:
        data, size = images[index]
        return one_request(sessions[index % concurrency], url, data, size, f"{tag}-{index}", timeout)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for seconds, error in pool.map(task, range(len(images))):
            if error is None:
                result.latencies_s.append(seconds)
            else:
                result.errors.append(error)
    result.wall_s = time.perf_counter() - started
    for session in sessions:
        session.close()
    return result


def make_images(count: int, low: int, high: int, seed: int) -> list[tuple[bytes, tuple[int, int]]]:
    """``count`` PNGs of :func:`disk_image` with distinct sizes, with their sizes."""
    sizes = distinct_sizes(count, low, high, seed)
    return [(png_bytes(disk_image(w, h, seed + i)), (w, h)) for i, (w, h) in enumerate(sizes)]


def build_services(args: argparse.Namespace, log_dir: Path) -> tuple[Service, Service]:
    common = {
        "BACKDROP_LOG_LEVEL": "WARNING",
        "BACKDROP_TORCH_THREADS": str(args.torch_threads),
    }
    seg = Service(
        "segmentation", free_port(), workers=args.seg_workers, timeout=args.timeout,
        log_path=log_dir / "segmentation.log",
        env={**common, "BACKDROP_SEGMENTATION_BACKEND": "u2netp"},
    )
    mat = Service(
        "matting", free_port(), workers=args.matting_workers, threads=args.matting_threads,
        timeout=args.timeout, log_path=log_dir / "matting.log",
        env={**common, "BACKDROP_MATTING_BACKEND": "closed_form",
             "BACKDROP_SEGMENTATION_URL": seg.url},
    )
    return seg, mat


def report(result: LoadResult, before: dict[str, int], after: dict[str, int]) -> bool:
    """Print the figures; ``True`` when errors == 0 and every worker grew < 10 %."""
    ok = not result.errors
    print(f"requests:   {result.requests}")
    print(f"errors:     {len(result.errors)}")
    for line in result.errors[:10]:
        print(f"  {line}")
    mean_ms = statistics.fmean(result.latencies_s or [0.0]) * 1000.0
    print(f"latency ms: p50 {result.percentile_ms(50):.0f}  p95 {result.percentile_ms(95):.0f}  "
          f"p99 {result.percentile_ms(99):.0f}  (mean {mean_ms:.0f})")
    print(f"throughput: {result.requests / result.wall_s:.2f} requests/s "
          f"({result.requests} in {result.wall_s:.1f} s)")
    print("worker RSS (MB): after warm-up -> end (growth)")
    for name in sorted(set(before) | set(after)):
        start, end = before.get(name), after.get(name)
        if start is None or end is None:
            print(f"  {name:24s} {start} -> {end}  (worker restarted)")
            ok = False
            continue
        growth = (end - start) / start
        flag = "" if growth < MAX_RSS_GROWTH else "  TOO MUCH"
        ok = ok and growth < MAX_RSS_GROWTH
        print(f"  {name:24s} {start / 1024:7.1f} -> {end / 1024:7.1f}  ({growth * 100:+.1f} %){flag}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300, help="requests to send (default 300)")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight (default 8)")
    parser.add_argument("--warmup", type=int, default=16, help="requests before the RSS baseline")
    parser.add_argument("--matting-workers", type=int, default=2)
    parser.add_argument("--matting-threads", type=int, default=4)
    parser.add_argument("--seg-workers", type=int, default=2)
    parser.add_argument("--torch-threads", type=int, default=1, help="BACKDROP_TORCH_THREADS")
    parser.add_argument("--timeout", type=int, default=120, help="gunicorn worker timeout, s")
    parser.add_argument("--min-side", type=int, default=96)
    parser.add_argument("--max-side", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    images = make_images(args.requests + args.warmup, args.min_side, args.max_side, args.seed)
    warmup, measured = images[:args.warmup], images[args.warmup:]
    print(f"{args.requests} requests, {args.concurrency} concurrent; matting "
          f"{args.matting_workers} workers x {args.matting_threads} threads, segmentation "
          f"{args.seg_workers} workers; images {args.min_side}-{args.max_side} px, all sizes distinct",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="backdrop-load-") as tmp:
        seg, mat = build_services(args, Path(tmp))
        with running(seg, mat, ready_timeout=180):
            warm = run_load(mat.url, warmup, args.concurrency, tag="warmup")
            if warm.errors:
                print(f"warm-up failed: {warm.errors[:3]}")
                return 1
            before = rss_by_worker((seg, mat))
            result = run_load(mat.url, measured, args.concurrency)
            after = rss_by_worker((seg, mat))
    return 0 if report(result, before, after) else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
