"""Video mattes against ground truth: dev objects moving over a real video (the protocol of the
Robust Video Matting paper, in small).

Usage::

    python bench/video_groundtruth.py                        # 5 objects x 60 frames, 640 x 480
    python bench/video_groundtruth.py --frames 20 --objects 2 --json gt.json
    python bench/video_groundtruth.py --no-rvm               # offline: without the RVM peer
    python bench/video_groundtruth.py --methods ours,rvm --keep /tmp/gt   # keep clips and PNGs

**The clips.** The alphamatting.com dev photos (``images/am_GT*.png``) with their true alpha
(``alpha/am_GT*.png``) from ``--dev-dir`` (default ``../shared/data/dev`` beside the
repository). ``--objects K`` of them, evenly spaced over the names sorted (always the first
and, for K > 1, the last). Each object is cut out (the box of its alpha > 0), scaled with
area averaging to fit :data:`FILL` of the frame, and moved over the dev background video
(``background/car-detection.mp4``, scaled to cover 640 x 480, each clip from its own start
frame) along a figure eight with two fast and two slow stretches per :data:`PERIOD` frames
and a little scale (:func:`pose`), placed by a bilinear warp of its premultiplied colour and
of its alpha. Each frame is ``I = a * F + (1 - a) * B`` (``F`` the photo, ``a`` its true
alpha moved with it, ``B`` the background frame), rounded to 8 bits and written losslessly
(FFV1 in Matroska, the ffmpeg of ``imageio-ffmpeg``); every method reads the frames back
from that file (checked equal to the frames made). The true alpha of each frame stays a
float. The photo is a composite over the lab's monitor, not the object's own colour: in
partly transparent pixels (hair, mesh) ``F`` carries some of that monitor, as in every
benchmark built from these photos.

**The methods**, on the same frames, in the same run:

* **ours**: the whole stack as a user runs it: both services started as ``make serve``
  starts them (:func:`bench.stack.serving`), the video client
  (:func:`client.video.process_video`) with the CLI's defaults, writing the RGBA PNGs of
  ``--alpha-sequence``, alpha read back from them (8 bits, as delivered), with the service's
  own policy (its person model, MODNet offline: the same model as the next method, so the
  comparison shows what the stack adds: refinement, keyframes, smoothing).
  ``--ours-backend u2netp`` asks for the salient-object model instead, ``--ours-classes``
  sends classes. The options sent are printed and kept in the JSON;
* **MODNet per frame**: the MODNet model alone on each frame at its reference size
  (:func:`bench.video_flicker.modnet_alphas`), in this process;
* **RVM**: Robust Video Matting (:mod:`bench.rvm`, fetched into a cache, GPL, never shipped),
  recurrent over the clip, at each downsample ratio its guide allows for the frame size
  (:func:`bench.rvm.ratios_for`); the tables show its best ratio per clip, the lowest MAD
  (chosen with the ground truth: generous to the peer).

MODNet and RVM are trained on people and these clips are objects: they measure how a
person-only model fares, not what it does on people (``bench/video_flicker.py`` has people).

**The figures** (:mod:`bench.temporal_metrics`): **MAD** = mean |alpha - true| x 1000;
**dtSSD** = ``100 * mean_t sqrt(mean_pixels(((a_t - a_{t-1}) - (g_t - g_{t-1}))^2))``, the
paper's temporal coherence (lower is better for both); **fps** = frames per wall second of
each method (ours: the client's run, services included; MODNet and RVM: the model calls
only, one ratio for RVM). Markdown on stdout, JSON in ``--json``.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.clips import read_frames  # noqa: E402
from bench.stack import publish  # noqa: E402
from bench.temporal_metrics import dtssd, mad  # noqa: E402
from client.compositing import fit_cover  # noqa: E402
from client.video_io import VideoReader  # noqa: E402

#: Where the dev data is in a development checkout.
DEFAULT_DEV_DIR = REPO.parent / "shared" / "data" / "dev"
#: The background video, inside the dev folder.
BACKGROUND = Path("background") / "car-detection.mp4"
#: The frame size of the clips, ``(width, height)``.
SIZE = (640, 480)
#: The part of the frame (each side) an object's box fits in at scale 1.
FILL = 0.6
#: Frames of one lap of the path: the motion's speed does not depend on ``--frames``.
PERIOD = 60
#: Half the horizontal and vertical travel of an object's centre, as parts of the frame.
TRAVEL = (0.18, 0.14)
#: How much the speed along the path swings: 1 -/+ this (0.15x .. 1.85x the mean speed).
SPEED_SWING = 0.85
#: The scale swings 1 -/+ this.
SCALE_SWING = 0.08
#: The frame rate written in the clips' files (the figures do not depend on it).
CLIP_FPS = 25
#: The methods, in table order.
METHODS = ("ours", "modnet", "rvm")
TITLES = {"ours": "ours", "modnet": "MODNet per frame", "rvm": "RVM (best ratio)"}


@dataclass(frozen=True)
class Cutout:
    """An object cut out of a photo, at the size it has at scale 1 in a clip.

    Attributes:
        name: the photo's stem (``am_GT01``).
        premultiplied: ``h x w x 3`` float32 BGR, colour x alpha, in ``[0, 255]``.
        alpha: ``h x w`` float32 in ``[0, 1]``.
    """

    name: str
    premultiplied: np.ndarray
    alpha: np.ndarray


def find_objects(dev_dir: Path | None) -> list[tuple[Path, Path]]:
    """``(photo, true alpha)`` pairs of the dev objects, sorted by name.

    Raises:
        SystemExit: none found (exit status 1), with what to pass instead.
    """
    where = dev_dir or DEFAULT_DEV_DIR
    pairs = [(p, where / "alpha" / p.name) for p in sorted((where / "images").glob("am_GT*.png"))]
    pairs = [pair for pair in pairs if pair[1].is_file()]
    background = where / BACKGROUND
    if pairs and background.is_file():
        return pairs
    shown = where if dev_dir else f"{where} (the default: ../shared/data/dev beside the repository)"
    raise SystemExit(
        f"no dev objects or background video at {shown}: this bench needs images/am_GT*.png with "
        f"their alpha/am_GT*.png and {BACKGROUND}. They come with a development checkout, not "
        "with a clone: pass --dev-dir with a folder laid out like ../shared/data/dev."
    )


def pick_evenly(count: int, k: int) -> list[int]:
    """``k`` indexes of ``0 .. count - 1``, evenly spaced, the first and the last included
    (``k >= count``: all of them)."""
    if k >= count:
        return list(range(count))
    if k <= 1:
        return [0][:max(k, 0)]
    return [round(i * (count - 1) / (k - 1)) for i in range(k)]


def cut_out(name: str, photo_bgr: np.ndarray, alpha_u8: np.ndarray,
            size: tuple[int, int] = SIZE, fill: float = FILL) -> Cutout:
    """The object of ``photo_bgr`` (``H x W x 3`` uint8) under ``alpha_u8`` (``H x W`` uint8):
    the box of alpha > 0, scaled (area averaging) so that it fits ``fill`` of ``size``
    (``(width, height)``) on each side, colour premultiplied by alpha.

    Raises:
        ValueError: the alpha is all 0, or not the photo's size.
    """
    if photo_bgr.shape[:2] != alpha_u8.shape:
        raise ValueError(f"{name}: photo {photo_bgr.shape[:2]} and alpha {alpha_u8.shape} differ in size")
    ys, xs = np.nonzero(alpha_u8)
    if ys.size == 0:
        raise ValueError(f"{name}: the alpha is empty")
    top, bottom, left, right = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    alpha = alpha_u8[top:bottom, left:right].astype(np.float32) / 255.0
    premultiplied = photo_bgr[top:bottom, left:right].astype(np.float32) * alpha[..., None]
    h, w = alpha.shape
    factor = min(fill * size[0] / w, fill * size[1] / h)
    new = (max(1, round(w * factor)), max(1, round(h * factor)))
    method = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
    return Cutout(name, cv2.resize(premultiplied, new, interpolation=method),
                  np.clip(cv2.resize(alpha, new, interpolation=method), 0.0, 1.0))


def pose(t: int, index: int, size: tuple[int, int] = SIZE) -> tuple[float, float, float]:
    """Where object ``index`` is at frame ``t``: ``(centre x, centre y, scale)``, px.

    A figure eight around the frame's centre (``TRAVEL`` of the frame each way), travelled
    once per :data:`PERIOD` frames at a speed that swings between 0.15x and 1.85x its mean
    (twice fast, twice slow per lap), and a scale of ``1 -/+`` :data:`SCALE_SWING`; each
    object starts at its own place on the path. Smooth in ``t``.
    """
    u = t / PERIOD + index * 0.381966  # the golden section: objects start apart
    s = u - SPEED_SWING / (4 * math.pi) * math.sin(4 * math.pi * u)  # ds/du = 1 - swing cos(4 pi u)
    x = size[0] / 2 + TRAVEL[0] * size[0] * math.sin(2 * math.pi * s)
    y = size[1] / 2 + TRAVEL[1] * size[1] * math.sin(4 * math.pi * s)
    scale = 1.0 + SCALE_SWING * math.sin(2 * math.pi * u + 1.0)
    return x, y, scale


def place(cutout: Cutout, where: tuple[float, float, float],
          size: tuple[int, int] = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """``cutout`` centred at ``(x, y)`` and scaled by ``scale`` (``where``) on a ``size`` frame
    (bilinear): ``(premultiplied H x W x 3 float32, alpha H x W float32 in [0, 1])``, 0 off the
    object."""
    x, y, scale = where
    h, w = cutout.alpha.shape
    # pixel centres: object pixel (i + 0.5) lands at x + scale * (i + 0.5 - w / 2) - 0.5
    matrix = np.array([[scale, 0.0, x - 0.5 + scale * (0.5 - w / 2)],
                       [0.0, scale, y - 0.5 + scale * (0.5 - h / 2)]], np.float64)
    warp = {"dsize": size, "flags": cv2.INTER_LINEAR, "borderMode": cv2.BORDER_CONSTANT, "borderValue": 0}
    premultiplied = cv2.warpAffine(cutout.premultiplied, matrix, **warp)
    alpha = np.clip(cv2.warpAffine(cutout.alpha, matrix, **warp), 0.0, 1.0)
    return premultiplied, alpha


def composite(premultiplied: np.ndarray, alpha: np.ndarray, background: np.ndarray) -> np.ndarray:
    """``I = a * F + (1 - a) * B`` with ``a * F`` given (``H x W x 3`` float in ``[0, 255]``),
    ``alpha`` ``H x W`` in ``[0, 1]`` and ``background`` ``H x W x 3`` uint8: uint8, rounded."""
    out = premultiplied + (1.0 - alpha[..., None]) * background.astype(np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def make_clip(cutout: Cutout, index: int, backgrounds: list[np.ndarray]
              ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The frames (``H x W x 3`` uint8 BGR) and true alphas (``H x W`` float32) of object
    ``index`` over ``backgrounds`` (one frame each, already at the clip's size)."""
    size = (backgrounds[0].shape[1], backgrounds[0].shape[0])
    frames, truths = [], []
    for t, background in enumerate(backgrounds):
        premultiplied, alpha = place(cutout, pose(t, index, size), size)
        frames.append(composite(premultiplied, alpha, background))
        truths.append(alpha)
    return frames, truths


def write_lossless(frames: list[np.ndarray], path: Path, fps: int = CLIP_FPS) -> None:
    """Write ``H x W x 3`` uint8 BGR ``frames`` to ``path`` (``.mkv``) as FFV1, losslessly.

    Raises:
        RuntimeError: ffmpeg failed (its last words in the message).
    """
    import imageio_ffmpeg

    h, w = frames[0].shape[:2]
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
               "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{w}x{h}", "-r", str(fps), "-i", "-",
               "-c:v", "ffv1", "-level", "3", "-pix_fmt", "bgr0", str(path)]
    done = subprocess.run(command, input=b"".join(np.ascontiguousarray(f).tobytes() for f in frames),
                          capture_output=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ffmpeg could not write {path}: {done.stderr.decode(errors='replace')[-500:]}")


def read_back(path: Path, made: list[np.ndarray]) -> list[np.ndarray]:
    """The frames of ``path`` as the methods read them, checked equal to those ``made``.

    Raises:
        SystemExit: the file does not give the frames back exactly (not lossless here).
    """
    frames = read_frames(path)
    if len(frames) != len(made) or any(not np.array_equal(a, b) for a, b in zip(frames, made, strict=False)):
        raise SystemExit(f"{path}: {len(frames)} frames read back for {len(made)} made, not all "
                         "identical: the clip is not lossless here")
    return frames


def stack_alphas(server: str, clip: Path, work: Path, options: dict[str, str]
                 ) -> tuple[list[np.ndarray], dict]:
    """The alphas the video client delivers for ``clip`` with its defaults and the subject
    ``options`` (``H x W`` float32 in ``[0, 1]``, read back from its ``--alpha-sequence``
    PNGs), and what the run reported."""
    from client.video import VideoJob, process_video
    from contract.vocab import SegmentationOptions

    folder = work / f"{clip.stem}_ours"
    job = VideoJob(clip, None, alpha_sequence=folder, server=server, timeout=300,
                   segmentation=SegmentationOptions(**options))
    result = process_video(job, progress=False)
    files = sorted(folder.glob("frame_*.png"))
    alphas = [cv2.imread(str(f), cv2.IMREAD_UNCHANGED)[..., 3].astype(np.float32) / 255.0 for f in files]
    report = {"seconds": result.seconds, "no_subject_frames": result.no_subject_frames,
              "carried_frames": result.carried_frames, "fallback_frames": result.fallback_frames}
    return alphas, report


def scores(alphas: list[np.ndarray], truths: list[np.ndarray], seconds: float) -> dict[str, float]:
    """MAD, dtSSD and frames per second of one method on one clip."""
    if len(alphas) != len(truths):
        raise SystemExit(f"{len(alphas)} alphas for {len(truths)} frames")
    return {"mad": mad(alphas, truths), "dtssd": dtssd(alphas, truths),
            "fps": len(alphas) / seconds if seconds > 0 else 0.0}


def save_views(folder: Path, name: str, frame: np.ndarray, truth: np.ndarray,
               alphas: dict[str, np.ndarray]) -> None:
    """One frame of a clip as PNGs: the composite, the true alpha and each method's alpha."""
    cv2.imwrite(str(folder / f"{name}_frame.png"), frame)
    for label, alpha in {"true": truth, **alphas}.items():
        cv2.imwrite(str(folder / f"{name}_alpha_{label}.png"),
                    np.clip(np.rint(alpha * 255), 0, 255).astype(np.uint8))


def measure(args: argparse.Namespace, work: Path) -> dict:
    """Make each clip, run each method on it, score them."""
    pairs = find_objects(args.dev_dir)
    chosen = [pairs[i] for i in pick_evenly(len(pairs), args.objects)]
    dev_dir = args.dev_dir or DEFAULT_DEV_DIR
    # each clip from its own start frame of the background video (looped if short)
    with VideoReader(dev_dir / BACKGROUND) as reader:
        count = reader.frame_count
    stride = (count - args.frames) // max(1, len(chosen) - 1) if count > args.frames else 0
    raw = read_frames(dev_dir / BACKGROUND, (len(chosen) - 1) * stride + args.frames)
    if not raw:
        raise SystemExit(f"{dev_dir / BACKGROUND}: no frame could be read")
    options = {k: v for k, v in (("backend", args.ours_backend), ("classes", args.ours_classes)) if v}
    peer, rvm_note = None, "not run"
    if "rvm" in args.methods:
        from bench.rvm import RVMPeer
        from service_common.weights import ModelError
        try:
            peer = RVMPeer()
            rvm_note = str(peer.path)
        except ModelError as exc:
            rvm_note = f"unavailable: {exc}"
            print(f"RVM {rvm_note}; its columns stay empty (pass --no-rvm to skip it)", file=sys.stderr)
    results: dict = {"size": list(SIZE), "frames": args.frames, "methods": list(args.methods),
                     "ours_options": options, "rvm": rvm_note, "clips": {}}
    print(f"ours: process_video with the CLI's defaults and {options or 'no subject options'}",
          file=sys.stderr)
    with contextlib.ExitStack() as stack:
        server = None
        if "ours" in args.methods:
            from bench.stack import serving

            server = stack.enter_context(serving(work))[1].url
        for index, (photo, truth_path) in enumerate(chosen):
            name = photo.stem
            cutout = cut_out(name, cv2.imread(str(photo), cv2.IMREAD_COLOR),
                             cv2.imread(str(truth_path), cv2.IMREAD_GRAYSCALE))
            start = index * stride
            backgrounds = [fit_cover(raw[(start + t) % len(raw)], SIZE) for t in range(args.frames)]
            made, truths = make_clip(cutout, index, backgrounds)
            clip = work / f"{name}.mkv"
            write_lossless(made, clip)
            frames = read_back(clip, made)
            row: dict = {"frames": len(frames), "background_start": start,
                         "object_size": [cutout.alpha.shape[1], cutout.alpha.shape[0]]}
            mid: dict[str, np.ndarray] = {}
            if server is not None:
                alphas, report = stack_alphas(server, clip, work, options)
                row["ours"] = {**scores(alphas, truths, report["seconds"]), **report}
                mid["ours"] = alphas[len(alphas) // 2]
            if "modnet" in args.methods:
                from bench.video_flicker import modnet_alphas

                started = time.perf_counter()
                alphas = modnet_alphas(frames)
                row["modnet"] = scores(alphas, truths, time.perf_counter() - started)
                mid["modnet"] = alphas[len(alphas) // 2]
            if peer is not None:
                from bench.rvm import ratios_for

                by_ratio, best_alphas = {}, {}
                for ratio in ratios_for(SIZE):
                    started = time.perf_counter()
                    alphas = peer.alphas(frames, ratio)
                    by_ratio[f"{ratio:g}"] = scores(alphas, truths, time.perf_counter() - started)
                    best_alphas[f"{ratio:g}"] = alphas[len(alphas) // 2]
                best = min(by_ratio, key=lambda r: by_ratio[r]["mad"])
                row["rvm"] = {**by_ratio[best], "ratio": float(best), "by_ratio": by_ratio}
                mid["rvm"] = best_alphas[best]
            if args.keep is not None:
                save_views(args.keep, name, frames[len(frames) // 2], truths[len(truths) // 2], mid)
            results["clips"][name] = row
            shown = ", ".join(f"{m} MAD {row[m]['mad']:.1f} dtSSD {row[m]['dtssd']:.2f}"
                              for m in METHODS if m in row)
            print(f"{name}: {len(frames)} frames, {shown}", file=sys.stderr)
            if args.keep is not None:
                clip.replace(args.keep / clip.name)
    results["mean"] = {m: {k: float(np.mean([row[m][k] for row in results["clips"].values()]))
                           for k in ("mad", "dtssd", "fps")}
                       for m in METHODS if all(m in row for row in results["clips"].values())}
    return results


def table(results: dict) -> str:
    """The Markdown tables: MAD and dtSSD per clip, then the means with fps."""
    methods = [m for m in METHODS if m in results["methods"]]
    lines = [f"{len(results['clips'])} dev objects x {results['frames']} frames at "
             f"{results['size'][0]}x{results['size'][1]} over car-detection.mp4, lossless. "
             "MAD = mean |alpha - true| x 1000; dtSSD = temporal coherence x 100 (RVM paper); "
             f"lower is better. Ours: process_video, CLI defaults + {results['ours_options']}.",
             "", "| clip | " + " | ".join(f"MAD {TITLES[m]}" for m in methods) + " | "
             + " | ".join(f"dtSSD {TITLES[m]}" for m in methods) + " |",
             "|---|" + "---|" * (2 * len(methods))]

    def cell(row: dict, method: str, key: str) -> str:
        if method not in row:
            return "-"
        text = f"{row[method][key]:.2f}" if key == "dtssd" else f"{row[method][key]:.1f}"
        return text + (f" ({row[method]['ratio']:g})" if method == "rvm" else "")

    for name, row in results["clips"].items():
        lines.append(f"| {name} | " + " | ".join(cell(row, m, "mad") for m in methods) + " | "
                     + " | ".join(cell(row, m, "dtssd") for m in methods) + " |")
    means = results["mean"]
    lines += ["", "| method | MAD | dtSSD | fps |", "|---|---|---|---|"]
    for m in methods:
        if m in means:
            lines.append(f"| {TITLES[m]} | {means[m]['mad']:.1f} | {means[m]['dtssd']:.2f} "
                         f"| {means[m]['fps']:.1f} |")
    if "ours" in means:
        checks = []
        if "modnet" in means:
            checks.append("ours MAD at or below MODNet per frame's: "
                          + ("yes" if means["ours"]["mad"] <= means["modnet"]["mad"] else "NO"))
        if "rvm" in means:
            checks.append("ours dtSSD at or below RVM's: "
                          + ("yes" if means["ours"]["dtssd"] <= means["rvm"]["dtssd"] else "NO"))
        if checks:
            lines += ["", "; ".join(checks) + " (means over the clips)"]
    return "\n".join(lines)


def parse_methods(text: str) -> tuple[str, ...]:
    """``ours,rvm`` -> ``("ours", "rvm")`` in table order.

    Raises:
        argparse.ArgumentTypeError: an unknown name.
    """
    names = {n.strip() for n in text.split(",") if n.strip()}
    unknown = names - set(METHODS)
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"methods: choose among {', '.join(METHODS)}")
    return tuple(m for m in METHODS if m in names)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dev-dir", type=Path, default=None,
                   help="folder with images/, alpha/ and background/car-detection.mp4 "
                   "(default: ../shared/data/dev beside the repository)")
    p.add_argument("--frames", type=int, default=60, help="frames per clip (default 60)")
    p.add_argument("--objects", type=int, default=5, help="number of dev objects, evenly spaced (default 5)")
    p.add_argument("--methods", type=parse_methods, default=METHODS,
                   help=f"comma-separated, among {','.join(METHODS)} (default all)")
    p.add_argument("--no-rvm", action="store_true", help="leave the RVM peer out (offline)")
    p.add_argument("--ours-backend", default="",
                   help="segmentation backend ours asks for (default: the service's policy, its "
                   "person model; u2netp: the salient-object model)")
    p.add_argument("--ours-classes", default=None, help="classes ours asks for (default none)")
    p.add_argument("--keep", type=Path, default=None,
                   help="keep the clips here, with the middle frame, its true alpha and each alpha as PNGs")
    p.add_argument("--json", type=Path, default=None, help="write the figures here as JSON")
    args = p.parse_args(argv)
    if args.frames < 2 or args.objects < 1:
        p.error("--frames must be 2 or more and --objects 1 or more")
    if args.no_rvm:
        args.methods = tuple(m for m in args.methods if m != "rvm")
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        results = measure(args, Path(tmp))
    results["load_average"] = os.getloadavg()
    return publish(results, table(results), args.json)


if __name__ == "__main__":
    sys.exit(main())
