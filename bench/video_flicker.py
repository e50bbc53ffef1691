"""Flicker of our video mattes against MODNet per frame and Robust Video Matting, same run.

Usage::

    python bench/video_flicker.py                      # the dev clips (../shared/data/dev/video)
    python bench/video_flicker.py --input talk.mp4 --frames 60
    python bench/video_flicker.py --no-rvm             # offline: without the RVM peer

For each clip, all frames (or the first ``--frames``) at the clip's size, and a clip with fast
motion made from the tuning clip (``--fast``: every third frame of asl_again, so 3x its
speed, written losslessly; ``--fast 0`` leaves it out):

* **ours**: the whole stack as a user runs it: both services started as ``make serve``
  starts them (offline defaults), the video client (:func:`client.video.process_video`, its
  defaults: the people model chosen from the first frame (:mod:`client.video_model`), ``--smooth``
  :data:`client.video.DEFAULT_SMOOTH`) writing the RGBA PNG sequence a user gets with
  ``--alpha-sequence``; the alpha is read back from those files (8 bits, as delivered);
* **ours, raw**: the stack with ``--smooth 0 --keyframe-interval 1``: the same people model
  and the refinement on every frame, nothing carried from one frame to the next: what each
  frame says alone. **drift** compares ours with it, so it counts every lag of the temporal path
  (the smoothing and the carried mattes of the keyframes);
* **MODNet per frame**: the MODNet model alone on each frame at its reference size
  (``segmentation_api.backends.modnet``), in this process;
* **RVM**: Robust Video Matting's ONNX (``bench/rvm.py``, fetched into a cache, GPL, never
  shipped), recurrent over the clip, at every downsample ratio its guide allows for the
  frame size (:func:`rvm.ratios_for`); the table shows its best (lowest flicker) ratio.

Figures (``bench/temporal_metrics.py``), alpha x 1000: **flicker** = mean alpha change on
still pixels (no channel changed by more than 2 levels); **drift** = mean |smoothed - raw|
on the pixels that are not still (a channel changed by 3 levels or more): the lag the
smoothing costs; **px off raw** = pixels per frame more than 0.2 off the raw matte (a trail
behind a moving edge shows here, as do pixels where the smoothing keeps what the raw matte
lost). Because "still" is a threshold, a second table gives ours and RVM's
flicker with "still" meaning 0, 2, 4 and 6 levels.
The smoother's settings were tuned on asl_again; asl_help and asl_thanks are the report.
Markdown on stdout, JSON in ``--json``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.clips import find_clips, read_frames  # noqa: E402
from bench.stack import publish, serving  # noqa: E402
from bench.temporal_metrics import departures, drift, flicker  # noqa: E402

#: The still thresholds of the sensitivity table (levels of 255).
STILL_LEVELS_SWEEP = (0, 2, 4, 6)

from bench.video_groundtruth import write_lossless  # noqa: E402
from client.video import (  # noqa: E402
    DEFAULT_SMOOTH,
    VIDEO_MODEL_SIZE,
    VideoJob,
    process_video,
)

#: The clip the smoother was tuned on (the others are the report).
TUNED_ON = "asl_again"


def stack_alphas(server: str, clip: Path, frames: int | None, smooth: float,
                 work: Path, keyframe_interval: int | None = None
                 ) -> tuple[list[np.ndarray], float]:
    """The alphas the video client delivers for ``clip`` (``H x W`` float32 in [0, 1], read
    back from its ``--alpha-sequence`` PNGs), and the seconds it took."""
    folder = work / f"{clip.stem}_smooth{smooth:g}_k{keyframe_interval}"
    job = VideoJob(clip, None, alpha_sequence=folder, smooth=smooth, max_frames=frames,
                   server=server, timeout=300, keyframe_interval=keyframe_interval)
    result = process_video(job, progress=False)
    files = sorted(folder.glob("frame_*.png"))
    alphas = [cv2.imread(str(f), cv2.IMREAD_UNCHANGED)[..., 3].astype(np.float32) / 255.0
              for f in files]
    return alphas, result.seconds


def modnet_alphas(frames_bgr: list[np.ndarray]) -> list[np.ndarray]:
    """MODNet alone on each frame, at its reference working size."""
    from segmentation_api.backends.modnet import MODNET, MODNetBackend
    from service_common.config import Settings

    backend = MODNetBackend(MODNET.path(Settings.from_env().models_dir))
    return [backend.alpha(np.ascontiguousarray(f[..., ::-1])) for f in frames_bgr]


def fast_clip(clips: list[Path], speed: int, work: Path) -> Path | None:
    """The tuning clip at ``speed`` times its speed (every ``speed``-th frame), written
    losslessly into ``work``; ``None`` when ``speed`` < 2 or the clip is not among ``clips``."""
    source = next((c for c in clips if c.stem == TUNED_ON), None)
    if speed < 2 or source is None:
        return None
    path = work / f"{TUNED_ON}_{speed}x.mkv"
    write_lossless(read_frames(source)[::speed], path)
    return path


def measure(clips: list[Path], args: argparse.Namespace, work: Path) -> dict:
    peer = None
    rvm_note = "not run (--no-rvm)"
    if not args.no_rvm:
        from bench.rvm import RVMPeer
        from service_common.weights import ModelError
        try:
            peer = RVMPeer()
            rvm_note = str(peer.path)
        except ModelError as exc:
            rvm_note = f"unavailable: {exc}"
            print(f"RVM {rvm_note}; its column stays empty (pass --no-rvm to skip it)",
                  file=sys.stderr)
    results: dict = {"smooth": DEFAULT_SMOOTH, "model_size": VIDEO_MODEL_SIZE, "rvm": rvm_note,
                     "keyframe_interval": "chosen with the people model", "tuned_on": TUNED_ON, "clips": {}}
    fast = fast_clip(clips, args.fast, work)
    clips = clips + ([fast] if fast is not None else [])
    with serving(work) as (_, mat):
        for clip in clips:
            frames = read_frames(clip, args.frames)
            ours, seconds = stack_alphas(mat.url, clip, args.frames, DEFAULT_SMOOTH, work)
            raw, raw_seconds = stack_alphas(mat.url, clip, args.frames, 0.0, work, keyframe_interval=1)
            if not len(ours) == len(raw) == len(frames):
                raise SystemExit(f"{clip.name}: {len(frames)} frames read, {len(ours)} and "
                                 f"{len(raw)} matted")
            row = {"frames": len(frames), "size": [frames[0].shape[1], frames[0].shape[0]],
                   "ours": flicker(frames, ours), "ours_raw": flicker(frames, raw),
                   "drift": drift(frames, raw, ours), "departed": departures(raw, ours),
                   "ours_seconds": seconds,
                   "ours_raw_seconds": raw_seconds}
            started = time.perf_counter()
            row["modnet"] = flicker(frames, modnet_alphas(frames))
            row["modnet_seconds"] = time.perf_counter() - started
            if peer is not None:
                from bench.rvm import ratios_for

                by_ratio = {}
                for ratio in ratios_for(tuple(row["size"])):
                    by_ratio[f"{ratio:g}"] = flicker(frames, peer.alphas(frames, ratio))
                best = min(by_ratio, key=by_ratio.__getitem__)
                row.update(rvm_by_ratio=by_ratio, rvm_ratio=best, rvm=by_ratio[best])
                rvm_best = peer.alphas(frames, float(best))
                row["sweep"] = {str(level): {"ours": flicker(frames, ours, level),
                                             "rvm": flicker(frames, rvm_best, level)}
                                for level in STILL_LEVELS_SWEEP}
            results["clips"][clip.name] = row
            print(f"{clip.name}: {len(frames)} frames, ours {row['ours']:.3f}, "
                  f"RVM {row.get('rvm', float('nan')):.3f}", file=sys.stderr)
    return results


def table(results: dict) -> str:
    lines = [f"flicker = mean |alpha change| x 1000 on still pixels (no channel changed by more "
             f"than 2 levels); drift = mean |smoothed - raw| x 1000 on the other pixels. "
             f"Ours: the whole stack, --smooth {results['smooth']:g}, "
             f"model size {results['model_size']} px, keyframe interval "
             f"{results.get('keyframe_interval', 1)}; raw: --smooth 0 --keyframe-interval 1. "
             f"Smoother tuned on {results['tuned_on']}, the other clips are the report.",
             "",
             "| clip | frames | ours | ours, raw | MODNet per frame | RVM (best ratio) "
             "| ours / RVM | drift (ours vs raw) | px > 0.2 off raw / frame |",
             "|---|---|---|---|---|---|---|---|---|"]
    verdicts = []
    for name, row in results["clips"].items():
        tag = " (tune)" if name.startswith(results["tuned_on"]) else " (report)"
        rvm = row.get("rvm")
        rvm_text = f"{rvm:.3f} ({row['rvm_ratio']})" if rvm is not None else "-"
        ratio_text = f"{row['ours'] / rvm:.2f}" if rvm else "-"
        if rvm is not None:
            verdicts.append(row["ours"] <= rvm)
        lines.append(f"| {name}{tag} | {row['frames']} | {row['ours']:.3f} | {row['ours_raw']:.3f} "
                     f"| {row['modnet']:.3f} | {rvm_text} | {ratio_text} | {row['drift']:.2f} "
                     f"| {row['departed']:.0f} |")
    if verdicts:
        lines += ["", "ours at or below RVM on every clip: " + ("yes" if all(verdicts) else "NO")]
        head = " | ".join(f"still <= {level}" for level in STILL_LEVELS_SWEEP)
        lines += ["", "Flicker, ours / RVM at its best ratio, by what counts as a still pixel "
                  "(levels of 255):", "", f"| clip | {head} |",
                  "|---|" + "---|" * len(STILL_LEVELS_SWEEP)]
        for name, row in results["clips"].items():
            if "sweep" in row:
                cells = " | ".join(f"{row['sweep'][str(level)]['ours']:.3f} / "
                                   f"{row['sweep'][str(level)]['rvm']:.3f}"
                                   for level in STILL_LEVELS_SWEEP)
                lines.append(f"| {name} | {cells} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--input", type=Path, default=None,
                   help="a video or a folder of videos (default: ../shared/data/dev/video)")
    p.add_argument("--frames", type=int, default=None, help="first N frames of each clip (default all)")
    p.add_argument("--no-rvm", action="store_true", help="leave the RVM peer out")
    p.add_argument("--fast", type=int, default=3,
                   help=f"also a clip of {TUNED_ON} at this many times its speed (default 3; 0: none)")
    p.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "video_flicker.json")
    args = p.parse_args(argv)
    clips = find_clips(args.input)
    with tempfile.TemporaryDirectory() as tmp:
        results = measure(clips, args, Path(tmp))
    results["load_average"] = os.getloadavg()
    return publish(results, table(results), args.json)


if __name__ == "__main__":
    sys.exit(main())
