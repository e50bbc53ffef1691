"""Helpers of the client tests: tiny generated video clips, read back with OpenCV.

The subject clip is a bright disk moving over a plain dark background (a salient object
for the u2netp backend, which the tests that look at the pixels ask for), small
enough that every frame is matted in a fraction of a second.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

CLIP_SIZE = (64, 48)  # width, height
CLIP_FPS = 12.0
CLIP_FRAMES = 6


def write_clip(path: Path, frames: Sequence[np.ndarray], fps: float) -> Path:
    """Write ``H x W x 3`` uint8 BGR ``frames`` as an mp4v ``.mp4`` (or MJPG ``.avi``)."""
    h, w = frames[0].shape[:2]
    fourcc = "MJPG" if path.suffix == ".avi" else "mp4v"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*fourcc), fps, (w, h))
    assert writer.isOpened(), f"OpenCV cannot write {path}"
    try:
        for frame in frames:
            writer.write(frame)
    finally:
        writer.release()
    return path


#: Background colours (BGR) of the frames of the background clip, all far apart.
BG_COLOURS = [(0, 0, 255), (0, 255, 0), (255, 0, 0)]


def disk_frames(n: int = CLIP_FRAMES, size: tuple[int, int] = CLIP_SIZE) -> list[np.ndarray]:
    """``n`` BGR frames: an orange disk (radius 30% of the height) moving right over dark grey."""
    w, h = size
    frames = []
    for i in range(n):
        frame = np.full((h, w, 3), 40, np.uint8)
        cx = int(w * 0.35 + i * w * 0.3 / max(1, n - 1))
        cv2.circle(frame, (cx, h // 2), int(h * 0.3), (40, 160, 250), -1, cv2.LINE_AA)
        frames.append(frame)
    return frames


def nearest_colour(pixel: np.ndarray) -> int:
    """Index into BG_COLOURS of the colour closest to a BGR pixel."""
    dists = [np.abs(pixel.astype(int) - np.array(c)).sum() for c in BG_COLOURS]
    return int(np.argmin(dists))


def read_all(path: Path) -> tuple[list[np.ndarray], float, tuple[int, int]]:
    """All frames of a video as BGR arrays, its fps and (width, height), through OpenCV."""
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened(), f"OpenCV cannot open {path}"
    fps = cap.get(cv2.CAP_PROP_FPS)
    size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames, fps, size
