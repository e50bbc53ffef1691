"""The dev video clips the video benches read, and how to find them.

The clips live beside a development checkout (``../shared/data/dev/video`` relative to the
repository: three 640 x 480 sign-language clips of people, still camera); a user's clone has
none, so every video bench takes ``--input FILE_OR_FOLDER`` and says so when the default is
missing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from client.compositing import fit_cover  # noqa: E402
from client.video_io import VIDEO_EXTS, VideoReader  # noqa: E402

#: Where the dev clips are in a development checkout.
DEFAULT_VIDEO_DIR = REPO.parent / "shared" / "data" / "dev" / "video"


def find_clips(given: Path | None) -> list[Path]:
    """The videos to measure: ``given`` (a video, or a folder of them), else the dev clips.

    Raises:
        SystemExit: (code 2) nothing to read, with what to pass instead.
    """
    where = given or DEFAULT_VIDEO_DIR
    if where.is_file():
        return [where]
    clips = sorted(p for p in where.glob("*") if p.suffix.lower() in VIDEO_EXTS) if where.is_dir() else []
    if clips:
        return clips
    shown = where if given else f"{where} (the default: ../shared/data/dev/video beside the repository)"
    raise SystemExit(
        f"no video found at {shown}. The dev clips come with a development checkout, not with "
        "a clone: pass --input with a video of a person, or a folder of them "
        "(.mp4, .mov, .mkv, .webm, ...)."
    )


def read_frames(path: Path, limit: int | None = None,
                size: tuple[int, int] | None = None) -> list[np.ndarray]:
    """The first ``limit`` frames (all when ``None``) of ``path`` as ``H x W x 3`` uint8 BGR,
    scaled to cover ``size`` (``(width, height)``) and centre-cropped when given."""
    with VideoReader(path) as reader:
        frames = list(reader.frames(limit))
    if size is not None:
        frames = [fit_cover(f, size) for f in frames]
    return frames


def frames_at(video: Path, indices: Callable[[int], Iterable[int]]) -> list[tuple[str, np.ndarray]]:
    """The frames of ``video`` at ``indices(count)`` (``count``: its frame count, 0 where the
    container does not say), each as ``("<stem> #<index>", H x W x 3 uint8 RGB)``; a frame
    that cannot be read is left out."""
    clip = cv2.VideoCapture(str(video))
    count = int(clip.get(cv2.CAP_PROP_FRAME_COUNT))
    found = []
    for index in indices(count):
        clip.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = clip.read()
        if ok:
            found.append((f"{video.stem} #{index}", np.ascontiguousarray(frame[..., ::-1])))
    clip.release()
    return found
