"""Memory of large pictures: the per-pixel peaks the budget uses, and the parallel 40 MP run.

    .venv/bin/python -m bench.memory_budget [--calibrate 2,10,40] [--megapixels 40] [--parallel 4]
                                            [--worker-memory-mb 0] [--trimap]

Starts the segmentation service (U^2-Net-p) and the matting service (closed-form matting)
under gunicorn on loopback with the default limits (40 MP, 50 MB), then:

1. ``--calibrate``: one request at a time at each size (MP): the matting and segmentation
   workers' peak resident memory above their idle memory (``VmHWM`` after resetting it
   through ``/proc/<pid>/clear_refs``), in MB and in bytes per pixel. The matting figure is
   what :data:`matting_api.pipeline.MATTE_BYTES_PER_PIXEL` (plus the decoding's
   :data:`service_common.images.DECODE_BYTES_PER_PIXEL`) must cover.
2. The parallel run: ``--parallel`` pictures of ``--megapixels`` MP at once (small PNGs: a disk
   on a flat background, about 0.2 MB each), under ``--worker-memory-mb`` (0: the container's
   limit or the machine's memory, :mod:`service_common.memory`). Printed: every answer
   (200, or 503 ``overloaded`` with ``Retry-After``), and each worker's resident memory before,
   at its peak (sampled every 50 ms, and ``VmHWM``) and after, beside the memory limits of
   ``deploy/kubernetes/base``.

The exit status is 1 when an answer is neither 200 nor 503 ``overloaded`` with
``Retry-After``, or a worker was replaced (killed).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import requests
import yaml
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.load import proc_memory_kb, worker_pids  # noqa: E402
from service_common.memory import PROCESS_RESERVE_BYTES  # noqa: E402
from service_common.serve import Service, free_port, running  # noqa: E402

MANIFESTS = REPO / "deploy" / "kubernetes" / "base"
MB = 1024 * 1024


def flat_disk_png(megapixels: float, seed: int = 0) -> tuple[bytes, tuple[int, int]]:
    """A ``megapixels`` MP (4:3) PNG: a saturated disk (radius a third of the short side) on a
    flat dark background, which compresses to about 5 kB per MP. Returns ``(bytes, (w, h))``."""
    height = int((megapixels * 1e6 * 0.75) ** 0.5)
    width = int(megapixels * 1e6 / height)
    colour = np.random.default_rng(seed).integers(120, 256, 3).astype(np.uint8)
    yy, xx = np.ogrid[:height, :width]
    inside = (xx - width / 2) ** 2 + (yy - height / 2) ** 2 <= (min(width, height) / 3) ** 2
    rgb = np.full((height, width, 3), 30, np.uint8)
    rgb[inside] = colour
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", compress_level=9)
    return buf.getvalue(), (width, height)


def disk_trimap_png(width: int, height: int) -> bytes:
    """The 0/128/255 trimap of :func:`flat_disk_png`'s disk (a 6 px unknown band)."""
    yy, xx = np.ogrid[:height, :width]
    dist = np.sqrt((xx - width / 2) ** 2 + (yy - height / 2) ** 2)
    radius = min(width, height) / 3
    trimap = np.zeros((height, width), np.uint8)
    trimap[dist <= radius + 3] = 128
    trimap[dist <= radius - 3] = 255
    buf = io.BytesIO()
    Image.fromarray(trimap).save(buf, format="PNG", compress_level=9)
    return buf.getvalue()


def manifest_memory(folder: Path = MANIFESTS) -> dict[str, dict[str, int]]:
    """``{component: {"limit": MiB, "request": MiB, "workers": n}}`` of the Deployments in
    ``folder`` (``resources.limits.memory``, ``resources.requests.memory`` and the
    ``BACKDROP_<COMPONENT>_WORKERS`` of their container)."""
    out = {}
    for path in sorted(folder.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") != "Deployment":
                continue
            component = doc["metadata"]["labels"]["app.kubernetes.io/component"]
            (container,) = doc["spec"]["template"]["spec"]["containers"]
            resources = container["resources"]
            env = {e["name"]: e.get("value") for e in container.get("env", [])}
            out[component] = {
                "limit": mebibytes(resources["limits"]["memory"]),
                "request": mebibytes(resources.get("requests", {}).get("memory", "0Mi")),
                "workers": int(env.get(f"BACKDROP_{component.upper()}_WORKERS", 1)),
            }
    return out


def mebibytes(quantity: str) -> int:
    """A Kubernetes memory quantity (``3584Mi``, ``3Gi``) in MiB."""
    number, unit = re.fullmatch(r"(\d+)(Mi|Gi)", quantity).groups()
    return int(number) * (1024 if unit == "Gi" else 1)


def worker_budget_mb(limit_mib: int, workers: int) -> int:
    """The memory budget (MB) one worker gets in a container of ``limit_mib`` MiB
    (:func:`service_common.memory.worker_memory_bytes` with that cgroup limit)."""
    return (limit_mib * MB - PROCESS_RESERVE_BYTES) // max(1, workers) // MB


def manifest_limits() -> dict[str, str]:
    """``{component: "limit (request)"}`` of the memory in ``deploy/kubernetes/base``."""
    return {name: f"{m['limit']}Mi (request {m['request']}Mi)" for name, m in manifest_memory().items()}


def reset_peak(pid: int) -> None:
    """Reset ``VmHWM`` of ``pid`` to its current RSS (Linux: ``5`` into ``clear_refs``)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def build(log_dir: Path, worker_memory_mb: int,
          seg_worker_memory_mb: int = 0) -> tuple[Service, Service]:
    common = {"BACKDROP_TORCH_THREADS": "1", "BACKDROP_LOG_LEVEL": "WARNING",
              "BACKDROP_MAX_PIXELS": "40000000", "BACKDROP_MAX_UPLOAD_MB": "50"}
    seg = Service("segmentation", free_port(), threads=2, timeout=300, log_path=log_dir / "seg.log",
                  env={**common, "BACKDROP_SEGMENTATION_BACKEND": "u2netp",
                       "BACKDROP_WORKER_MEMORY_MB": str(seg_worker_memory_mb)})
    mat = Service("matting", free_port(), threads=4, timeout=300, log_path=log_dir / "mat.log",
                  env={**common, "BACKDROP_MATTING_BACKEND": "closed_form",
                       "BACKDROP_SEGMENTATION_URL": seg.url,
                       "BACKDROP_WORKER_MEMORY_MB": str(worker_memory_mb)})
    return seg, mat


def post(url: str, image: bytes, trimap: bytes | None) -> requests.Response:
    files = {"image": ("big.png", image, "image/png")}
    if trimap is not None:
        files["trimap"] = ("trimap.png", trimap, "image/png")
    return requests.post(url + "/v1/matte", files=files, data={"format": "png"}, timeout=600)


def calibrate(seg: Service, mat: Service, sizes: list[float], use_trimap: bool) -> None:
    print("one request at a time: peak above idle (VmHWM - VmRSS before)")
    print(f"{'MP':>6} {'matting MB':>11} {'B/px':>6} {'segmentation MB':>16} {'B/px':>6} {'s':>6}")
    for mp in sizes:
        image, (w, h) = flat_disk_png(mp)
        trimap = disk_trimap_png(w, h) if use_trimap else None
        pids = {name: worker_pids(svc.process.pid)[0] for name, svc in (("mat", mat), ("seg", seg))}
        before = {}
        for name, pid in pids.items():
            reset_peak(pid)
            before[name] = proc_memory_kb(pid)["VmRSS"]
        started = time.perf_counter()
        answer = post(mat.url, image, trimap)
        took = time.perf_counter() - started
        assert answer.status_code == 200, (answer.status_code, answer.text[:300])
        grown = {name: (proc_memory_kb(pid)["VmHWM"] - before[name]) * 1024 for name, pid in pids.items()}
        print(f"{mp:6.1f} {grown['mat'] / MB:11.0f} {grown['mat'] / (w * h):6.1f} "
              f"{grown['seg'] / MB:16.0f} {grown['seg'] / (w * h):6.1f} {took:6.1f}")


class Sampler(threading.Thread):
    """Samples the resident memory of some processes every ``period`` s until stopped."""

    def __init__(self, pids: dict[str, int], period: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.pids, self.period = pids, period
        self.peak_kb = dict.fromkeys(pids, 0)
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            for name, pid in self.pids.items():
                with contextlib.suppress(OSError):
                    self.peak_kb[name] = max(self.peak_kb[name], proc_memory_kb(pid)["VmRSS"])
            self._done.wait(self.period)

    def stop(self) -> None:
        self._done.set()
        self.join()


@dataclass
class ParallelRun:
    """What :func:`measure_parallel` saw: every answer, and the resident memory (kB) of each
    process (``"matting"``, ``"segmentation"``: the workers; ``"matting front"``,
    ``"segmentation front"``: the fronts; ``"... master"``: gunicorn's masters) before,
    at its peak (sampled, and ``VmHWM``) and after."""

    answers: list[requests.Response]
    before: dict[str, int]
    peak: dict[str, int]
    hwm: dict[str, int]
    after: dict[str, int]
    replaced: dict[str, bool]

    @property
    def ok(self) -> bool:
        """Every answer 200 or 503 overloaded with Retry-After, and no worker replaced."""
        for answer in self.answers:
            code = answer.json()["error"]["code"] if answer.status_code != 200 else "-"
            if not (answer.status_code == 200 or (
                    answer.status_code == 503 and code == "overloaded" and "Retry-After" in answer.headers)):
                return False
        return not any(self.replaced.values())


def measure_parallel(seg: Service, mat: Service, megapixels: float, count: int,
                     use_trimap: bool) -> ParallelRun:
    """``count`` pictures of ``megapixels`` MP (:func:`flat_disk_png`) sent at once to ``mat``;
    the workers', fronts' and masters' memory around them."""
    pictures = [flat_disk_png(megapixels, seed) for seed in range(count)]
    workers = {"matting": worker_pids(mat.process.pid)[0], "segmentation": worker_pids(seg.process.pid)[0]}
    pids = dict(workers)
    for svc in (mat, seg):
        if svc.front_process is not None:
            pids[f"{svc.name} front"] = svc.front_process.pid
        pids[f"{svc.name} master"] = svc.process.pid
    for pid in pids.values():
        reset_peak(pid)
    before = {name: proc_memory_kb(pid)["VmRSS"] for name, pid in pids.items()}
    sampler = Sampler(pids)
    sampler.start()
    with ThreadPoolExecutor(count) as pool:
        answers = list(pool.map(
            lambda p: post(mat.url, p[0], disk_trimap_png(*p[1]) if use_trimap else None), pictures))
    sampler.stop()
    time.sleep(1.0)
    after = {name: proc_memory_kb(pid)["VmRSS"] for name, pid in pids.items()}
    hwm = {name: proc_memory_kb(pid)["VmHWM"] for name, pid in pids.items()}
    replaced = {name: worker_pids(svc.process.pid) != [workers[name]]
                for name, svc in (("matting", mat), ("segmentation", seg))}
    return ParallelRun(answers, before, dict(sampler.peak_kb), hwm, after, replaced)


def parallel(seg: Service, mat: Service, megapixels: float, count: int, use_trimap: bool) -> bool:
    """The parallel run; returns whether every answer was 200 or 503 overloaded with
    Retry-After and no worker was replaced."""
    run = measure_parallel(seg, mat, megapixels, count, use_trimap)
    print(f"\n{count} pictures of {megapixels:g} MP at once")
    for i, answer in enumerate(run.answers):
        code = answer.json()["error"]["code"] if answer.status_code != 200 else "-"
        retry = answer.headers.get("Retry-After", "-")
        print(f"  request {i}: {answer.status_code} {code} Retry-After {retry}")
    limits = manifest_limits()
    print(f"{'worker':>13} {'before MB':>10} {'peak MB':>8} {'VmHWM MB':>9} {'after MB':>9}  manifest limit")
    for name in ("matting", "segmentation"):
        print(f"{name:>13} {run.before[name] / 1024:10.0f} {run.peak[name] / 1024:8.0f} "
              f"{run.hwm[name] / 1024:9.0f} {run.after[name] / 1024:9.0f}  {limits.get(name, '-')}"
              f"{'  REPLACED (killed)' if run.replaced[name] else ''}")
    return run.ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calibrate", default="", help="comma-separated sizes in MP, e.g. 2,10,40")
    parser.add_argument("--megapixels", type=float, default=40.0)
    parser.add_argument("--parallel", type=int, default=4, help="0: no parallel run")
    parser.add_argument("--worker-memory-mb", type=int, default=0)
    parser.add_argument("--trimap", action="store_true", help="send a trimap (no segmentation hop)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        seg, mat = build(Path(tmp), args.worker_memory_mb)
        with running(seg, mat, ready_timeout=180):
            small, (w, h) = flat_disk_png(0.05)
            post(mat.url, small, disk_trimap_png(w, h) if args.trimap else None)  # warm up
            if args.calibrate:
                calibrate(seg, mat, [float(v) for v in args.calibrate.split(",")], args.trimap)
            ok = True
            if args.parallel:
                ok = parallel(seg, mat, args.megapixels, args.parallel, args.trimap)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
