"""Video throughput through the whole stack, against the bare models on the same frames.

Usage::

    python bench/video_throughput.py                 # 30 frames at 640x480, --jobs 1 and 4
    python bench/video_throughput.py --frames 8      # quick run

Starts both services with ``service_common.serve`` (offline backends: U^2-Net-p
segmentation, closed-form matting; one segmentation worker; the matting service once with
1 and once with 2 gunicorn workers, ``--mat-workers``) and:

1. **stack**: runs the video client (:func:`client.video.process_video`: decode -> HTTP to
   the matting service -> HTTP to the segmentation service -> matting -> back -> composite ->
   H.264 encode) on the first ``--frames`` frames of ``--input`` scaled to ``--size``, once
   per ``--jobs`` value (frames in flight), and reports frames per second;
2. **bare models**: in this process, on the same frames, the segmentation backend plus the
   trimap (:func:`segmentation_api.pipeline.segment`) and the closed-form matting backend
   (``matting_api.backends.closed_form``), timed per frame, nothing else (no HTTP, no image
   coding, no compositing);
3. the ratio: bare model time per frame / stack time per frame (1.0 = the stack adds nothing;
   above 1 with several jobs in flight when the two services work in parallel).

The bare models run once before and once after the stack runs (the mean is reported), and
the stack runs also report the services' own ``Server-Timing`` of their model stages, so a
machine whose load changes during the run (a shared CI box) shows up in the figures.

The input defaults to /work/shared/data/dev/video/asl_thanks.mkv when present, else a
generated clip (a moving disk). Results: Markdown on stdout, JSON in ``--json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from client.compositing import fit_cover  # noqa: E402
from client.options import parse_video_size  # noqa: E402
from client.video import VideoJob, process_video  # noqa: E402
from client.video_io import VideoReader  # noqa: E402
from service_common.config import Settings  # noqa: E402
from service_common.serve import Service, free_port, running  # noqa: E402

DEFAULT_INPUT = Path("/work/shared/data/dev/video/asl_thanks.mkv")


def synthetic_clip(path: Path, n: int, size: tuple[int, int], fps: float = 30.0) -> Path:
    """A clip of ``n`` frames: a bright disk moving over a dark gradient (mp4v, OpenCV)."""
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (w, h))
    try:
        ramp = np.linspace(30, 90, w, dtype=np.float32)[None, :, None]
        base = np.broadcast_to(ramp, (h, w, 3)).astype(np.uint8)
        for i in range(n):
            frame = base.copy()
            cx = int(w * (0.3 + 0.4 * i / max(1, n - 1)))
            cv2.circle(frame, (cx, h // 2), h // 4, (60, 170, 240), -1, cv2.LINE_AA)
            writer.write(frame)
    finally:
        writer.release()
    return path


def load_frames(path: Path, n: int, size: tuple[int, int]) -> list[np.ndarray]:
    """The first ``n`` frames at ``size`` as ``H x W x 3`` uint8 **RGB** (for the backends)."""
    with VideoReader(path) as reader:
        return [cv2.cvtColor(fit_cover(f, size), cv2.COLOR_BGR2RGB) for f in reader.frames(n)]


def bare_models(frames: list[np.ndarray], threads: int) -> dict[str, float]:
    """Mean ms per frame of segmentation (the people model, as the stack's ``auto`` picks it)
    and closed-form matting of its guide (trimap, prior), in-process."""
    from matting_api.backends.closed_form import ClosedFormBackend
    from matting_api.pipeline import guide
    from segmentation_api.backends import load_backend
    from segmentation_api.pipeline import SegmentParams, segment

    settings = Settings.from_env({**os.environ, "BACKDROP_TORCH_THREADS": str(threads)})
    seg_backend = load_backend(settings)  # auto: the backend serving people
    matting = ClosedFormBackend.from_settings(settings)  # warms up numba
    segment(seg_backend, frames[0], SegmentParams())  # warm-up of onnxruntime
    seg_ms, mat_ms = [], []
    for rgb in frames:
        t0 = time.perf_counter()
        result = segment(seg_backend, rgb, SegmentParams())
        t1 = time.perf_counter()
        seg_ms.append((t1 - t0) * 1000.0)
        if result.mask is None:
            continue  # no subject: the service answers 422 at once, no matting either
        trimap, prior = guide(result.mask, seg_backend.mask_kind)
        matting.matte(rgb, trimap, prior)
        mat_ms.append((time.perf_counter() - t1) * 1000.0)
    seg = float(np.mean(seg_ms))
    mat = float(np.mean(mat_ms)) if mat_ms else 0.0
    return {"segmentation_ms": seg, "matting_ms": mat, "total_ms": seg + mat,
            "frames_without_subject": len(frames) - len(mat_ms)}


def stack_runs(server: str, clip: Path, n: int, size: tuple[int, int], jobs_list: list[int],
               out_dir: Path) -> dict[str, dict[str, float]]:
    """Frames per second of :func:`process_video` for each ``--jobs`` value."""
    runs = {}
    warm = VideoJob(clip, out_dir / "warm.mp4", color="#1e88e5", size=size, max_frames=2,
                    server=server, jobs=1)
    process_video(warm, progress=False)  # first requests pay for lazy start-up work
    for jobs in jobs_list:
        job = VideoJob(clip, out_dir / f"jobs{jobs}.mp4", color="#1e88e5", size=size,
                       max_frames=n, server=server, jobs=jobs, timeout=300)
        result = process_video(job, progress=False)
        runs[str(jobs)] = {"frames": result.frames, "seconds": result.seconds,
                           "fps": result.frames_per_second,
                           "ms_per_frame": 1000.0 * result.seconds / max(1, result.frames),
                           "no_subject_frames": result.no_subject_frames,
                           "service_ms": result.timing_ms}
        print(f"jobs={jobs}: {result.frames} frames in {result.seconds:.1f} s "
              f"({result.frames_per_second:.2f} fps)", file=sys.stderr)
    return runs


def start_services(tmp: Path, seg_workers: int, mat_workers: int,
                   threads: int) -> tuple[Service, Service]:
    """Segmentation (u2netp) and matting (closed_form) services on free ports."""
    common = {"BACKDROP_LOG_LEVEL": "WARNING", "BACKDROP_TORCH_THREADS": str(threads)}
    seg = Service("segmentation", free_port(), workers=seg_workers, timeout=300,
                  log_path=tmp / "seg.log",
                  env={**common, "BACKDROP_SEGMENTATION_BACKEND": "u2netp"})
    mat = Service("matting", free_port(), workers=mat_workers, timeout=300,
                  log_path=tmp / "mat.log",
                  env={**common, "BACKDROP_MATTING_BACKEND": "closed_form",
                       "BACKDROP_SEGMENTATION_URL": seg.url})
    return seg, mat


def report(results: dict) -> str:
    """The results as a Markdown table."""
    bare = results["bare"]
    bare_fps = 1000.0 / bare["total_ms"]
    lines = [f"input {Path(results['input']).name}, {results['frames']} frames at "
             f"{results['size'][0]}x{results['size'][1]}, {results['cpus']} CPUs, load average "
             f"{results['load_average'][0]:.2f}",
             "",
             "| run | ms / frame | frames / s | bare model / stack | in the services: "
             "segmentation + matting ms |",
             "|---|---|---|---|---|",
             f"| bare models in-process (seg {bare['segmentation_ms']:.0f} ms + matting "
             f"{bare['matting_ms']:.0f} ms; before {bare['total_ms_before']:.0f}, after "
             f"{bare['total_ms_after']:.0f}) | {bare['total_ms']:.0f} | {bare_fps:.2f} | 1.00 | |"]
    for workers, runs in results["stack"].items():
        for jobs, run in runs.items():
            svc = run["service_ms"]
            lines.append(
                f"| stack, {workers} matting worker(s), --jobs {jobs} | {run['ms_per_frame']:.0f} "
                f"| {run['fps']:.2f} | {run['bare_over_stack']:.2f} | "
                f"{svc.get('segmentation', 0):.0f} + {svc.get('matting', 0):.0f} |")
        if "1" in runs and "4" in runs:
            lines.append(f"| {workers} matting worker(s): --jobs 4 vs --jobs 1 | | "
                         f"x{runs['4']['fps'] / runs['1']['fps']:.2f} | | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--input", type=Path, default=None, help="video (default: asl_thanks.mkv or generated)")
    p.add_argument("--frames", type=int, default=30, help="frames per run (default 30)")
    p.add_argument("--size", type=parse_video_size, default=(640, 480), help="WxH (default 640x480)")
    p.add_argument("--jobs", default="1,4", help="comma-separated --jobs values (default 1,4)")
    p.add_argument("--seg-workers", type=int, default=1, help="gunicorn workers, segmentation")
    p.add_argument("--mat-workers", default="1,2",
                   help="comma-separated gunicorn worker counts of the matting service to try "
                   "(default 1,2: one worker waits for segmentation and cannot overlap)")
    p.add_argument("--threads", type=int, default=1, help="BACKDROP_TORCH_THREADS (both sides)")
    p.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "video_throughput.json")
    args = p.parse_args(argv)
    jobs_list = [int(j) for j in args.jobs.split(",")]
    stack: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        clip = args.input or (DEFAULT_INPUT if DEFAULT_INPUT.is_file() else None)
        if clip is None:
            clip = synthetic_clip(tmp / "synthetic.mp4", args.frames, args.size)
        frames = load_frames(clip, args.frames, args.size)
        bare_before = bare_models(frames, args.threads)
        print(f"bare models: {bare_before['total_ms']:.0f} ms per frame", file=sys.stderr)
        for workers in (int(w) for w in args.mat_workers.split(",")):
            print(f"matting service with {workers} worker(s)", file=sys.stderr)
            with running(*start_services(tmp, args.seg_workers, workers, args.threads),
                         ready_timeout=180) as (_, mat):
                stack[str(workers)] = stack_runs(mat.url, clip, args.frames, args.size,
                                                 jobs_list, tmp)
        bare_after = bare_models(frames, args.threads)
        print(f"bare models again: {bare_after['total_ms']:.0f} ms per frame", file=sys.stderr)
    bare = {k: (bare_before[k] + bare_after[k]) / 2 for k in bare_before}
    bare["total_ms_before"], bare["total_ms_after"] = bare_before["total_ms"], bare_after["total_ms"]
    for runs in stack.values():
        for run in runs.values():
            run["bare_over_stack"] = bare["total_ms"] / run["ms_per_frame"]
    results = {
        "input": str(clip), "frames": args.frames, "size": list(args.size),
        "seg_workers": args.seg_workers, "threads": args.threads, "cpus": os.cpu_count(),
        "load_average": os.getloadavg(), "bare": bare, "stack": stack,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    print(report(results))
    print(f"\n(written to {args.json})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
