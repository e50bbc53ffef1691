"""A contact sheet of a clip's mattes from two runs of the video client, frame by frame.

Usage::

    backdrop-video clip.mkv a.mp4 --color green --alpha-sequence runA/
    backdrop-video clip.mkv b.mp4 --color green --alpha-sequence runB/ --backend auto
    python scripts/video_sheet.py clip.mkv runA/ runB/ --frames 10,30,50,70 \\
        --labels "selfie, every frame" "MODNet, keyframes" -o docs/video_models.png

Each row is one frame: the input, then each run's result over green and its alpha (the
RGBA PNGs ``--alpha-sequence`` writes), with the frame index and labels drawn in.
``--video FILE`` adds the delivered video's frame (say, over a background video) after the
input::

    backdrop-video asl_help.mkv videos/asl_help_parking.mp4 --background car-detection.mp4 \\
        --crf 23 --alpha-sequence run/
    python scripts/video_sheet.py asl_help.mkv run/ --video videos/asl_help_parking.mp4 \\
        --frames 0,24,40,57 --labels "defaults" -o docs/video.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

GREEN = (0, 170, 0)


def read_frames(path: Path, wanted: set[int]) -> dict[int, np.ndarray]:
    """The BGR frames of ``path`` at the indices in ``wanted``."""
    cap = cv2.VideoCapture(str(path))
    out: dict[int, np.ndarray] = {}
    index = 0
    while len(out) < len(wanted):
        ok, frame = cap.read()
        if not ok:
            break
        if index in wanted:
            out[index] = frame
        index += 1
    cap.release()
    return out


def label(image: np.ndarray, text: str) -> np.ndarray:
    """``image`` with ``text`` in its top-left corner (white on a black band)."""
    out = image.copy()
    cv2.rectangle(out, (0, 0), (out.shape[1], 22), (0, 0, 0), -1)
    cv2.putText(out, text, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def tiles(folder: Path, index: int) -> tuple[np.ndarray, np.ndarray]:
    """The result over green and the alpha (both ``H x W x 3`` BGR) of frame ``index``."""
    rgba = cv2.imread(str(folder / f"frame_{index:06d}.png"), cv2.IMREAD_UNCHANGED)
    if rgba is None or rgba.ndim != 3 or rgba.shape[2] != 4:
        raise SystemExit(f"{folder / f'frame_{index:06d}.png'} is not an RGBA PNG")
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    over = (rgba[..., :3] * alpha + np.array(GREEN, np.float32) * (1.0 - alpha)).astype(np.uint8)
    return over, cv2.cvtColor(rgba[..., 3], cv2.COLOR_GRAY2BGR)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("clip", type=Path)
    p.add_argument("runs", type=Path, nargs="+", help="--alpha-sequence folders")
    p.add_argument("--frames", default="10,30,50,70", help="comma-separated frame indices")
    p.add_argument("--labels", nargs="*", default=None, help="one per run (default: folder names)")
    p.add_argument("--video", type=Path, default=None,
                   help="the delivered video: its frame goes after the input")
    p.add_argument("--scale", type=float, default=0.5, help="tile scale (default 0.5)")
    p.add_argument("-o", "--output", type=Path, required=True)
    args = p.parse_args(argv)
    indices = [int(x) for x in args.frames.split(",")]
    labels = args.labels or [run.name for run in args.runs]
    if len(labels) != len(args.runs):
        p.error("give one label per run")
    frames = read_frames(args.clip, set(indices))
    delivered = read_frames(args.video, set(indices)) if args.video is not None else {}
    rows = []
    for index in indices:
        if index not in frames:
            p.error(f"{args.clip} has no frame {index}")
        row = [label(frames[index], f"frame {index}: input")]
        if args.video is not None:
            if index not in delivered:
                p.error(f"{args.video} has no frame {index}")
            row.append(label(delivered[index], "result"))
        for run, name in zip(args.runs, labels, strict=True):
            over, alpha = tiles(run, index)
            row += [label(over, name), label(alpha, f"{name}: alpha")]
        rows.append(np.hstack([cv2.resize(t, None, fx=args.scale, fy=args.scale,
                                          interpolation=cv2.INTER_AREA) for t in row]))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.output), np.vstack(rows))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
