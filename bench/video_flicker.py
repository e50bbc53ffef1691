"""Flicker of video mattes with and without the client's temporal smoothing (``--smooth``).

Usage::

    python bench/video_flicker.py                       # starts both services (offline backends)
    python bench/video_flicker.py --server http://127.0.0.1:5000 --frames 30 --size 320x240

For each clip (default: /work/shared/data/dev/video/asl_*.mkv, sign-language clips with a
still camera) the first ``--frames`` frames, scaled to ``--size``, are matted once by the
service (``--jobs`` in flight, exactly as ``client.video`` does it). The raw mattes are then
run through :class:`client.temporal.AlphaSmoother` for each ``--strengths`` value; the
smoother is pure client-side code, so this equals running ``python -m client.video --smooth
S`` once per strength, at a fraction of the cost. No ground truth exists for these clips, so
the figures are about temporal change (alpha in 0..255 levels):

* ``dt_rms``: dtSSD-style, the mean over frame pairs of the root-mean-square alpha change
  over the whole frame (includes the real motion of the subject);
* ``band``: mean |alpha change| in the uncertain band of still pixels: pixels whose colour
  did not change (< 4 levels) and whose raw alpha is strictly between 0 and 1 in either frame
  of the pair, or changed between them: the flicker proper (the same region for every S);
* ``lag``: mean |smoothed alpha - raw alpha| on moving pixels (colour change >= 12 levels):
  what smoothing costs where the subject really moves (0 = no ghosting).

Results go to stdout as a Markdown table and to ``--json`` (default
``bench/results/video_flicker.json``).
"""

from __future__ import annotations

import argparse
import contextlib
import glob
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

from client.api import MattingClient  # noqa: E402
from client.compositing import fit_cover  # noqa: E402
from client.options import parse_video_size  # noqa: E402
from client.pipeline import ordered_map  # noqa: E402
from client.temporal import AlphaSmoother  # noqa: E402
from client.video_io import VideoReader  # noqa: E402
from client.video_matte import FrameMatter, MattedFrame  # noqa: E402
from service_common.serve import Service, free_port, running  # noqa: E402

DEFAULT_CLIPS = "/work/shared/data/dev/video/asl_*.mkv"
STILL_LEVEL = 4.0  # colour change below which a pixel counts as still (metric only)
MOVING_LEVEL = 12.0  # colour change from which a pixel counts as moving (metric only)
EPS = 1.0 / 255.0


def colour_change(prev: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """Mean absolute colour change over channels, ``H x W`` float32 in 0..255."""
    return cv2.absdiff(prev, cur).astype(np.float32).mean(axis=2)


def flicker_figures(frames: list[np.ndarray], raw: list[np.ndarray],
                    alphas: list[np.ndarray]) -> dict[str, float]:
    """``dt_rms``, ``band`` and ``lag`` (see module doc) for one clip, alpha in 0..255 levels.

    Args:
        frames: ``H x W x 3`` uint8 frames.
        raw: the service's ``H x W`` float32 alphas in [0, 1] (they define the band).
        alphas: the alphas to judge (raw or smoothed), same shapes.
    """
    dt, band, lag = [], [], []
    for t in range(1, len(frames)):
        change = colour_change(frames[t - 1], frames[t])
        da = np.abs(alphas[t] - alphas[t - 1])
        dt.append(float(np.sqrt(np.mean(da ** 2))))
        uncertain = ((raw[t] > EPS) & (raw[t] < 1 - EPS)) | ((raw[t - 1] > EPS) & (raw[t - 1] < 1 - EPS))
        region = (change < STILL_LEVEL) & (uncertain | (np.abs(raw[t] - raw[t - 1]) > EPS))
        if region.any():
            band.append(float(da[region].mean()))
        moving = change >= MOVING_LEVEL
        if moving.any():
            lag.append(float(np.abs(alphas[t] - raw[t])[moving].mean()))
    return {"dt_rms": 255 * float(np.mean(dt)), "band": 255 * float(np.mean(band or [0.0])),
            "lag": 255 * float(np.mean(lag or [0.0]))}


def matte_clip(client: MattingClient, path: Path, n: int, size: tuple[int, int],
               jobs: int) -> list[MattedFrame]:
    """The first ``n`` frames of ``path`` at ``size``, matted by the service."""
    with VideoReader(path) as reader:
        frames = (fit_cover(f, size) for f in reader.frames(n))
        with contextlib.closing(ordered_map(FrameMatter(client), frames, jobs)) as results:
            return list(results)


def smoothed(matted: list[MattedFrame], strength: float) -> list[np.ndarray]:
    """The alphas after :class:`AlphaSmoother` of ``strength`` (0: the raw alphas)."""
    if strength == 0:
        return [m.alpha for m in matted]
    smoother = AlphaSmoother(strength)
    return [smoother(m.frame, m.fg, m.alpha)[1] for m in matted]


def offline_services(log_dir: Path) -> tuple[Service, Service]:
    """Segmentation (u2netp) and matting (closed_form) services on free ports."""
    common = {"BACKDROP_LOG_LEVEL": "WARNING", "BACKDROP_TORCH_THREADS": "1"}
    seg = Service("segmentation", free_port(), timeout=300, log_path=log_dir / "seg.log",
                  env={**common, "BACKDROP_SEGMENTATION_BACKEND": "u2netp"})
    mat = Service("matting", free_port(), timeout=300, log_path=log_dir / "mat.log",
                  env={**common, "BACKDROP_MATTING_BACKEND": "closed_form",
                       "BACKDROP_SEGMENTATION_URL": seg.url})
    return seg, mat


def run(server: str, clips: list[Path], args: argparse.Namespace) -> dict:
    strengths = [float(s) for s in args.strengths.split(",")]
    results: dict = {"frames": args.frames, "size": list(args.size), "strengths": strengths,
                     "clips": {}}
    with MattingClient(server, timeout=300, pool_size=args.jobs) as client:
        client.ready()
        for clip in clips:
            started = time.perf_counter()
            matted = matte_clip(client, clip, args.frames, args.size, args.jobs)
            took = time.perf_counter() - started
            frames = [m.frame for m in matted]
            raw = [m.alpha for m in matted]
            per_s = {f"{s:g}": flicker_figures(frames, raw, smoothed(matted, s)) for s in strengths}
            results["clips"][clip.name] = {"matting_s": took, "n": len(matted), "by_strength": per_s}
            print(f"{clip.name}: {len(matted)} frames matted in {took:.1f} s", file=sys.stderr)
    return results


def table(results: dict) -> str:
    lines = ["| clip | smooth | dt_rms | band flicker | lag on moving px |",
             "|---|---|---|---|---|"]
    means: dict[str, list[dict[str, float]]] = {}
    for name, clip in results["clips"].items():
        for s, fig in clip["by_strength"].items():
            lines.append(f"| {name} | {s} | {fig['dt_rms']:.2f} | {fig['band']:.2f} | {fig['lag']:.2f} |")
            means.setdefault(s, []).append(fig)
    for s, figs in means.items():
        avg = {k: float(np.mean([f[k] for f in figs])) for k in ("dt_rms", "band", "lag")}
        lines.append(f"| **mean** | {s} | {avg['dt_rms']:.2f} | {avg['band']:.2f} | {avg['lag']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--server", help="use this matting service instead of starting both")
    p.add_argument("--clips", default=DEFAULT_CLIPS, help="glob of input videos")
    p.add_argument("--frames", type=int, default=30, help="first N frames of each clip")
    p.add_argument("--size", type=parse_video_size, default=(320, 240), help="WxH (default 320x240)")
    p.add_argument("--strengths", default="0,0.3,0.5,0.7", help="smoothing strengths to compare")
    p.add_argument("--jobs", type=int, default=2, help="frames in flight")
    p.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "video_flicker.json")
    args = p.parse_args(argv)
    clips = [Path(c) for c in sorted(glob.glob(args.clips))]
    if not clips:  # a checkout without ../shared: nothing to measure, not an error
        print(f"no clips match {args.clips}; skipped (give --clips)", file=sys.stderr)
        return 0
    if args.server:
        results = run(args.server, clips, args)
    else:
        with tempfile.TemporaryDirectory() as logs:
            seg, mat = offline_services(Path(logs))
            with running(seg, mat, ready_timeout=180):
                results = run(mat.url, clips, args)
    results["load_average"] = os.getloadavg()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    print(table(results))
    print(f"\n(alpha levels 0..255; {args.frames} frames at {args.size[0]}x{args.size[1]}; "
          f"written to {args.json})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
