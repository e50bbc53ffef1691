"""Video throughput of the whole stack, against the bare models on the same frames, same run.

Usage::

    python bench/video_throughput.py                   # the dev clips (../shared/data/dev/video)
    python bench/video_throughput.py --input talk.mp4 --frames 60

1. **stack**: both services started as ``make serve`` starts them (offline defaults unless
   ``BACKDROP_*`` variables say otherwise) and the video client exactly as a user runs it
   (:func:`client.video.process_video` with its defaults: ``--jobs`` 4, people model at
   :data:`client.video.VIDEO_MODEL_SIZE` px, ``--smooth`` 0.9, H.264 output): decode ->
   HTTP to the matting service -> HTTP to the segmentation service -> model -> trimap ->
   refinement -> back -> smoothing -> compositing -> encode. Frames per second per clip.
2. **bare models**: in this process, on the same frames, back to back: the backend the
   segmentation service picked for people (its ``/readyz`` policy) at the same working size
   with its pre- and post-processing, the guide (trimap and prior) and the matting backend
   the matting service loaded: the models, nothing else (no HTTP, no image coding, no
   smoothing, no compositing, no video coding). Run once before and once after the stack
   (both shown; the mean is the baseline), each model with all the cores it wants
   (``BACKDROP_TORCH_THREADS=0``, whatever the services use): the hardest baseline.
3. **ratio**: stack frames per second / bare frames per second (1.0: the stack costs
   nothing over the models; above 1 when the stack overlaps its two services on two
   cores, which back-to-back calls cannot).

Where the time goes: the CPU time per frame of each process during the stack runs
(segmentation service, matting service, the client, the ffmpeg encoder; Linux ``/proc``),
and the services' own ``Server-Timing`` stages. Markdown on stdout, JSON in ``--json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.clips import find_clips, read_frames  # noqa: E402
from bench.stack import cpu_seconds, serving  # noqa: E402
from client.video import VIDEO_MODEL_SIZE, VideoJob, process_video  # noqa: E402
from service_common.config import Settings  # noqa: E402

#: The issue's goal for the whole stack at 640 x 480 on 2 cores, frames per second.
GOAL_FPS = 5.0


def people_backend() -> str:
    """The backend the segmentation service will use for people (its policy)."""
    from segmentation_api.backends import plan

    return plan(Settings.from_env(), with_preload=False)[1].person


def served_people_backend(seg_url: str) -> str:
    """The backend the running segmentation service uses for people (``/readyz``)."""
    ready = requests.get(seg_url + "/readyz", timeout=10).json()
    policy = ready.get("policy") or {}
    return policy.get("person") or ready["backend"]


def bare_models(clips: dict[str, list[np.ndarray]], backend_name: str) -> dict[str, dict[str, float]]:
    """Per clip, mean ms per frame of the people model and of guide + matting, in-process."""
    from matting_api.backends import load_matting_backend
    from matting_api.pipeline import guide
    from segmentation_api.backends import load_backend
    from segmentation_api.pipeline import SegmentOptions, segment
    from service_common.cpu import limit_blas_threads
    from service_common.torch_runtime import set_threads

    settings = dataclasses.replace(Settings.from_env(), torch_threads=0)  # all cores per call
    limit_blas_threads()  # as the services do at start
    set_threads(settings.torch_threads)
    seg_backend = load_backend(settings, backend_name)
    matting = load_matting_backend(settings)
    params = SegmentOptions(model_size=VIDEO_MODEL_SIZE)
    out = {}
    for name, frames in clips.items():
        rgbs = [np.ascontiguousarray(cv2.cvtColor(f, cv2.COLOR_BGR2RGB)) for f in frames]
        segment(seg_backend, rgbs[0], params)  # warm-up
        seg_ms, mat_ms = [], []
        for rgb in rgbs:
            t0 = time.perf_counter()
            result = segment(seg_backend, rgb, params)
            t1 = time.perf_counter()
            seg_ms.append((t1 - t0) * 1000.0)
            if result.mask is not None:  # else the service answers 422 at once, no matting
                trimap, prior = guide(result.mask, seg_backend.mask_kind)
                matting.matte(rgb, trimap, prior)
            mat_ms.append((time.perf_counter() - t1) * 1000.0)
        seg, mat = float(np.mean(seg_ms)), float(np.mean(mat_ms))
        out[name] = {"segmentation_ms": seg, "matting_ms": mat, "total_ms": seg + mat}
    return out


def stack_run(server: str, pids: dict[str, int], clip: Path, frames: int | None,
              work: Path) -> dict:
    """One clip through :func:`process_video` with the CLI's defaults; fps and CPU shares."""
    job = VideoJob(clip, work / f"{clip.stem}.mp4", color="#1e88e5", max_frames=frames,
                   server=server, timeout=300)
    before = {k: cpu_seconds(p) for k, p in pids.items()}
    client_before = time.process_time()
    encoder_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = process_video(job, progress=False)
    encoder_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    n = max(1, result.frames)
    cpu = {k: 1000.0 * (cpu_seconds(p) - before[k]) / n for k, p in pids.items()}
    cpu["client"] = 1000.0 * (time.process_time() - client_before) / n
    cpu["encoder"] = 1000.0 * ((encoder_after.ru_utime + encoder_after.ru_stime)
                               - (encoder_before.ru_utime + encoder_before.ru_stime)) / n
    return {"frames": result.frames, "seconds": result.seconds,
            "fps": result.frames_per_second, "no_subject_frames": result.no_subject_frames,
            "service_ms": result.timing_ms, "cpu_ms_per_frame": cpu}


def report(results: dict) -> str:
    lines = [f"{results['cpus']} CPUs, load average {results['load_average'][0]:.2f} at the end; "
             f"people model {results['people_backend']} at {results['model_size']} px",
             "",
             "| clip | frames | stack fps | bare fps (before / after) | stack / bare |",
             "|---|---|---|---|---|"]
    for name, run in results["stack"].items():
        bare = results["bare"][name]
        lines.append(f"| {name} | {run['frames']} | {run['fps']:.2f} | {bare['fps']:.2f} "
                     f"({bare['fps_before']:.2f} / {bare['fps_after']:.2f}) | {run['ratio']:.2f} |")
    total = results["total"]
    lines.append(f"| **all** | {total['frames']} | **{total['fps']:.2f}** | {total['bare_fps']:.2f} "
                 f"| **{total['ratio']:.2f}** |")
    lines += ["", f"goal: >= {GOAL_FPS:g} fps and >= 0.9x the bare models: "
              + ("met" if total["fps"] >= GOAL_FPS and total["ratio"] >= 0.9 else "NOT met"),
              "", "Where the time goes, CPU ms per frame during the stack runs (2 cores give "
              "2000 CPU ms per wall second), and the bare models' ms per frame:", "",
              "| clip | segmentation service | matting service | client | encoder | all | "
              "bare: model | bare: guide + matting |", "|---|---|---|---|---|---|---|---|"]
    for name, run in results["stack"].items():
        cpu, bare = run["cpu_ms_per_frame"], results["bare"][name]
        lines.append(f"| {name} | {cpu['segmentation']:.0f} | {cpu['matting']:.0f} | "
                     f"{cpu['client']:.0f} | {cpu['encoder']:.0f} | {sum(cpu.values()):.0f} | "
                     f"{bare['segmentation_ms']:.0f} | {bare['matting_ms']:.0f} |")
    stages = sorted({k for run in results["stack"].values() for k in run["service_ms"]})
    lines += ["", "The services' Server-Timing, ms per frame (mean; `request` is the client's "
              "wall time per call, with 4 in flight):", "",
              "| clip | " + " | ".join(stages) + " |", "|---|" + "---|" * len(stages)]
    for name, run in results["stack"].items():
        lines.append(f"| {name} | " + " | ".join(f"{run['service_ms'].get(s, 0):.1f}" for s in stages)
                     + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--input", type=Path, default=None,
                   help="a video or a folder of videos (default: ../shared/data/dev/video)")
    p.add_argument("--frames", type=int, default=None, help="first N frames of each clip (default all)")
    p.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "video_throughput.json")
    args = p.parse_args(argv)
    clips = find_clips(args.input)
    frames = {c.name: read_frames(c, args.frames) for c in clips}
    stack: dict[str, dict] = {}
    backend = people_backend()
    bare_before = bare_models(frames, backend)
    print("bare models measured", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp, serving(Path(tmp)) as (seg, mat):
        if served_people_backend(seg.url) != backend:
            raise SystemExit(f"the service uses {served_people_backend(seg.url)} for people, "
                             f"the bare run {backend}: same settings needed")
        pids = {"segmentation": seg.process.pid, "matting": mat.process.pid}
        process_video(VideoJob(clips[0], Path(tmp) / "warm.mp4", color="#000000",
                               max_frames=4, server=mat.url), progress=False)
        for clip in clips:
            stack[clip.name] = stack_run(mat.url, pids, clip, args.frames, Path(tmp))
            print(f"{clip.name}: {stack[clip.name]['fps']:.2f} fps", file=sys.stderr)
    bare_after = bare_models(frames, backend)
    bare = {}
    for name in frames:
        b0, b1 = bare_before[name], bare_after[name]
        mean = {k: (b0[k] + b1[k]) / 2 for k in b0}
        mean.update(fps=1000.0 / mean["total_ms"], fps_before=1000.0 / b0["total_ms"],
                    fps_after=1000.0 / b1["total_ms"])
        bare[name] = mean
        stack[name]["ratio"] = stack[name]["fps"] / mean["fps"]
    n = sum(r["frames"] for r in stack.values())
    stack_s = sum(r["seconds"] for r in stack.values())
    bare_s = sum(bare[k]["total_ms"] / 1000.0 * stack[k]["frames"] for k in stack)
    total = {"frames": n, "fps": n / stack_s, "bare_fps": n / bare_s, "ratio": bare_s / stack_s}
    results = {"cpus": os.cpu_count(), "load_average": os.getloadavg(), "people_backend": backend,
               "model_size": VIDEO_MODEL_SIZE, "stack": stack, "bare": bare, "total": total}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    print(report(results))
    print(f"\n(written to {args.json})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
