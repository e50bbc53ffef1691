"""Memory over a long run and around very large photos: does a worker give memory back?

Usage::

    python bench/soak.py                      # 1,000 requests at 8 in flight; two 40 MP photos;
                                              # four 40 MP pictures at once
    python bench/soak.py --requests 300 --no-large --no-front --parallel 0
    python bench/soak.py --requests 20 --only now --no-large   # the least with the parallel run

For each memory setting, in the same run (``now``: the services as ``make serve`` starts them,
glibc's mmap threshold fixed and ``malloc_trim`` after large requests,
:mod:`service_common.memory`; ``before``: glibc's defaults and no trimming, as before):

1. **soak**: both services, 100 requests to warm up, then ``--requests`` photos (the sample
   portrait at distinct sizes, 96-200 px) at 8 in flight; every worker's RSS after the
   warm-up and at the end, and the growth.
2. **large**: on fresh services, two 40 MP photos (JPEG) one after the other; the matting
   worker's RSS before, its peak (VmHWM) and after.
3. **front**: after the soak, 30 clients each send 40 MB of a 40,000,000-byte body to the
   matting service and hold back the last byte, then close; its front's RSS before, its peak
   (VmHWM), while the bodies are held and once they are gone (how many the front held, how
   many it refused: its bodies are bounded in total, :mod:`service_common.front`).

Once, whatever the memory setting (glibc tuned, as ``make serve`` starts the services):

4. **parallel**: on fresh services, ``--parallel`` pictures of 40 MP at once (small PNGs,
   :func:`bench.memory_budget.measure_parallel`, the run of ``bench/memory_budget.py``), each
   worker's budget the one its container would get from the memory limit of its Deployment in
   ``deploy/kubernetes/base`` (:func:`bench.memory_budget.worker_budget_mb`, set as
   ``BACKDROP_WORKER_MEMORY_MB``): every answer (200, or 503 ``overloaded`` with
   ``Retry-After``), each process's resident memory before, at its peak (sampled every 50 ms,
   and ``VmHWM``) and after, and each container's peak (its worker's, front's and gunicorn
   master's peaks summed: an upper bound) beside the manifest's limit, with a line saying
   whether the largest stays under it.

Markdown on stdout. The exit status is 1 when the parallel run got an answer other than 200
or 503 ``overloaded``, a worker was replaced (killed), or a container's peak reached its limit.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import socket
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import requests
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import memory_budget  # noqa: E402
from bench.load import distinct_sizes, png_bytes, proc_memory_kb, run_load, worker_pids  # noqa: E402
from bench.stack import serving  # noqa: E402
from service_common.serve import running  # noqa: E402

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


def held_body_attack(port: int, connections: int = 30, size: int = 40_000_000) -> list[socket.socket]:
    """``connections`` clients each declare ``size`` bytes and send all but the last byte;
    their sockets, still open on this side (the front may have refused and closed some)."""
    payload = b"x" * (size - 1)
    head = b"POST /v1/matte HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size

    def one(_: int) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", port))
        with contextlib.suppress(OSError):  # refused (503 overloaded) and closed by the front
            sock.sendall(head + payload)
        return sock

    with ThreadPoolExecutor(connections) as pool:
        return list(pool.map(one, range(connections)))


def _still_open(sock: socket.socket) -> bool:
    """Whether the front still holds ``sock``'s body: no answer, no close (a refused one
    got 503 and was closed)."""
    sock.setblocking(False)
    try:
        sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


def front_attack(service) -> tuple[float, float, float, float, int, int]:
    """:func:`held_body_attack` on ``service``'s front: its RSS before, peak (VmHWM), while
    the bodies are held and after they are gone (MB), and how many it held / refused."""
    pid = service.front_process.pid
    before = proc_memory_kb(pid)["VmRSS"] / 1024
    socks = held_body_attack(service.port)
    time.sleep(0.5)
    held_mb = proc_memory_kb(pid)["VmRSS"] / 1024
    held = sum(_still_open(sock) for sock in socks)
    for sock in socks:
        sock.close()
    after, last = held_mb, -1.0
    for _ in range(40):  # until it settles, 10 s at most
        time.sleep(0.25)
        after = proc_memory_kb(pid)["VmRSS"] / 1024
        if abs(after - last) < 1 and after < held_mb:
            break
        last = after
    peak = proc_memory_kb(pid)["VmHWM"] / 1024
    return before, peak, held_mb, after, held, len(socks) - held


def parallel_run(log_dir: Path, count: int, megapixels: float = 40.0) -> bool:
    """Step 4 of the module docstring: prints its tables; returns whether every answer was
    200 or 503 overloaded, no worker was replaced and every container stayed under its limit."""
    manifests = memory_budget.manifest_memory()
    budgets = {name: memory_budget.worker_budget_mb(m["limit"], m["workers"])
               for name, m in manifests.items()}
    seg, mat = memory_budget.build(log_dir, budgets["matting"], budgets["segmentation"])
    with running(seg, mat, ready_timeout=300):
        small, _ = memory_budget.flat_disk_png(0.05)
        memory_budget.post(mat.url, small, None)  # warm up
        run = memory_budget.measure_parallel(seg, mat, megapixels, count, use_trimap=False)
    answers = []
    for answer in run.answers:
        if answer.status_code == 200:
            answers.append("200")
        else:
            code, retry = answer.json()["error"]["code"], answer.headers.get("Retry-After", "-")
            answers.append(f"{answer.status_code} {code} (Retry-After {retry})")
    print(f"\n## {count} pictures of {megapixels:g} MP at once (PNG), under the manifests' budgets\n")
    print("Worker budgets (`BACKDROP_WORKER_MEMORY_MB`, the manifest's limit less "
          f"{memory_budget.PROCESS_RESERVE_BYTES // memory_budget.MB} MB, per worker): "
          + ", ".join(f"{name} {mb} MB" for name, mb in sorted(budgets.items()))
          + f". Answers: {', '.join(answers)}.\n")
    print("| process | RSS before, MiB | peak (sampled), MiB | VmHWM, MiB | after, MiB |")
    print("|---|---|---|---|---|")
    for name in run.before:
        mark = " (REPLACED: killed)" if run.replaced.get(name) else ""
        print(f"| {name}{mark} | {run.before[name] / 1024:.0f} | {run.peak[name] / 1024:.0f} | "
              f"{run.hwm[name] / 1024:.0f} | {run.after[name] / 1024:.0f} |")
    print("\n| container | peaks summed, MiB | manifest limit, MiB | under the limit |")
    print("|---|---|---|---|")
    summed = {}
    for name in ("matting", "segmentation"):
        summed[name] = sum(run.hwm[k] for k in run.hwm if k == name or k.startswith(name + " ")) / 1024
        print(f"| {name} | {summed[name]:.0f} | {manifests[name]['limit']} | "
              f"{'yes' if summed[name] < manifests[name]['limit'] else 'NO'} |")
    worst = max(summed, key=lambda n: summed[n] / manifests[n]["limit"])
    limit = manifests[worst]["limit"]
    under = all(summed[n] < manifests[n]["limit"] for n in summed)
    print(f"\nLargest peak against its limit: the {worst} container, {summed[worst]:.0f} MiB "
          f"(worker {run.hwm[worst] / 1024:.0f} MiB) of its manifest's {limit} MiB: "
          + (f"under the limit, {limit - summed[worst]:.0f} MiB to spare." if under else
             "NOT under the limit (the pod would be killed)."))
    return run.ok and under


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--no-large", action="store_true")
    parser.add_argument("--no-front", action="store_true", help="skip the held-body attack on the front")
    parser.add_argument("--only", choices=("now", "before"), default=None,
                        help="measure one memory setting only")
    parser.add_argument("--parallel", type=int, default=4,
                        help="40 MP pictures sent at once under the manifests' budgets (0: none)")
    args = parser.parse_args(argv)
    if args.requests < 1:
        parser.error("--requests must be at least 1")
    warm = portraits(100, seed=1)
    soak = portraits(args.requests, seed=2)
    photo = None if args.no_large else large_photo()
    print(f"## Soak: {args.requests} requests at {CONCURRENCY} in flight after 100 to warm up\n")
    print("| memory setting | service | RSS after warm-up, MB | at the end, MB | growth |")
    print("|---|---|---|---|---|")
    large_rows = []
    front_rows = []
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
                if not args.no_front:
                    front_rows.append((label, *front_attack(mat)))
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
    if front_rows:
        print("\n## 30 clients x 40 MB, last byte held, then closed: the matting front\n")
        print("| memory setting | RSS before, MB | peak, MB | while held, MB | after, MB | held | refused |")
        print("|---|---|---|---|---|---|---|")
        for label, *mb, held, refused in front_rows:
            print(f"| {label} | " + " | ".join(f"{v:.0f}" for v in mb) + f" | {held} | {refused} |")
    if large_rows:
        print("\n## Two 40 MP photos, matting worker\n")
        print("| memory setting | RSS before, MB | peak, MB | after, MB |")
        print("|---|---|---|---|")
        for label, before_mb, peak, after in large_rows:
            print(f"| {label} | {before_mb:.0f} | {peak:.0f} | {after:.0f} |")
    ok = True
    if args.parallel:
        with tempfile.TemporaryDirectory() as tmp:
            ok = parallel_run(Path(tmp), args.parallel)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
