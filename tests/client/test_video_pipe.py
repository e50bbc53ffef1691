"""Live through a pipe: ``backdrop-video - -`` reads raw frames on standard input and writes
composited raw frames on standard output, through the real services, as ffmpeg's rawvideo
would send and read them."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest

from client.video_io import VideoError
from client.video_pipe import RawFrameReader, RawFrameWriter
from service_common.config import REPO_ROOT

WIDTH, HEIGHT, FRAMES = 96, 64, 6


def _clip() -> list[np.ndarray]:
    """A generated clip: a bright disc (the subject) moving over a dark textured wall, BGR."""
    rng = np.random.default_rng(3)
    wall = (rng.integers(20, 60, (HEIGHT, WIDTH, 3))).astype(np.uint8)
    frames = []
    for i in range(FRAMES):
        frame = wall.copy()
        yy, xx = np.mgrid[:HEIGHT, :WIDTH]
        disc = (xx - 30 - 4 * i) ** 2 + (yy - 32) ** 2 < 18 ** 2
        frame[disc] = (40, 180, 230)
        frames.append(frame)
    return frames


def test_raw_frames_round_trip_in_both_pixel_formats() -> None:
    frames = _clip()
    for pix_fmt in ("bgr24", "rgb24"):
        out = io.BytesIO()
        with RawFrameWriter(out, pix_fmt) as writer:
            for frame in frames:
                writer.write(frame)
        back = list(RawFrameReader(io.BytesIO(out.getvalue()), (WIDTH, HEIGHT), pix_fmt).frames())
        assert len(back) == FRAMES and all(np.array_equal(a, b) for a, b in zip(back, frames, strict=True))


def test_a_stream_cut_inside_a_frame_is_an_error() -> None:
    data = b"".join(f.tobytes() for f in _clip()[:2])[:-10]
    reader = RawFrameReader(io.BytesIO(data), (WIDTH, HEIGHT))
    with pytest.raises(VideoError, match="ended inside frame 2"):
        list(reader.frames())


def test_a_generated_clip_piped_through_the_stack(offline_services) -> None:
    """Raw BGR frames in, composited raw frames out, one per frame in, the subject kept
    and the wall replaced by the colour."""
    frames = _clip()
    raw_in = b"".join(f.tobytes() for f in frames)
    proc = subprocess.run(
        [sys.executable, "-m", "client.video", "-", "-", "--input-size", f"{WIDTH}x{HEIGHT}",
         "--color", "00ff00", "--backend", "u2netp", "--server", offline_services[1].url, "-q"],
        input=raw_in, capture_output=True, cwd=REPO_ROOT, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert len(proc.stdout) == len(raw_in)
    out = np.frombuffer(proc.stdout, np.uint8).reshape(FRAMES, HEIGHT, WIDTH, 3)
    assert np.abs(out[:, 2:8, 80:90].astype(int) - (0, 255, 0)).max() < 40  # the wall is green
    last = frames[-1]
    disc = np.all(last == (40, 180, 230), axis=2)
    assert np.abs(out[-1][disc].astype(int) - (40, 180, 230)).mean() < 30  # the subject stays


def test_a_pipe_without_its_size_is_a_usage_error() -> None:
    proc = subprocess.run([sys.executable, "-m", "client.video", "-", "-", "--color", "green"],
                          input=b"", capture_output=True, cwd=REPO_ROOT, timeout=60)
    assert proc.returncode == 2 and b"--input-size" in proc.stderr
