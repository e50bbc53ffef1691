"""Video readers, background videos and writers, on tiny generated clips (no services)."""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from videotools import CLIP_FPS, CLIP_SIZE, disk_frames, nearest_colour, read_all

from client.video_io import (
    FFmpegWriter,
    OpenCVWriter,
    PngSequenceWriter,
    VideoBackground,
    VideoError,
    VideoReader,
    as_fraction,
    ffmpeg_exe,
    has_audio,
    partial_path,
)

FFMPEG = ffmpeg_exe()
needs_ffmpeg = pytest.mark.skipif(FFMPEG is None, reason="imageio-ffmpeg not installed")


def test_reader_reports_fps_size_and_frames(subject_clip: Path):
    with VideoReader(subject_clip) as reader:
        assert reader.fps == 12 and reader.size == CLIP_SIZE
        assert len(list(reader.frames())) == 6
    with VideoReader(subject_clip) as reader:
        assert len(list(reader.frames(limit=4))) == 4
    with pytest.raises(VideoError):
        VideoReader(subject_clip.with_name("missing.mp4"))
    assert as_fraction(30000 / 1001) == Fraction(30000, 1001)


@pytest.mark.parametrize(("end", "expected"), [
    ("loop", [0, 1, 2, 0, 1, 2, 0, 1]),
    ("hold", [0, 1, 2, 2, 2, 2, 2, 2]),
])
def test_short_background_video_loops_or_holds(make_bg_clip, end, expected):
    bg = VideoBackground(make_bg_clip(3), (32, 24), Fraction(12), end=end)
    try:
        got = [nearest_colour(bg.frame(i)[12, 16]) for i in range(8)]
    finally:
        bg.close()
    assert got == expected
    assert bg.length == 3


def test_background_video_is_matched_by_time(make_bg_clip):
    """A 6 fps background behind a 12 fps subject: each background frame shows twice."""
    bg = VideoBackground(make_bg_clip(3, fps=6.0), CLIP_SIZE, Fraction(12), end="hold")
    try:
        got = [nearest_colour(bg.frame(i)[0, 0]) for i in range(8)]
    finally:
        bg.close()
    assert got == [0, 0, 1, 1, 2, 2, 2, 2]


@needs_ffmpeg
def test_ffmpeg_writer_h264_kept_fps_and_size(tmp_path: Path):
    out = tmp_path / "out.mp4"
    with FFmpegWriter(out, CLIP_SIZE, Fraction(12), FFMPEG) as writer:
        for frame in disk_frames(6):
            writer.write(frame)
    frames, fps, size = read_all(out)
    assert (len(frames), fps, size) == (6, 12.0, CLIP_SIZE)
    assert not partial_path(out).exists()
    probe = subprocess.run([FFMPEG, "-hide_banner", "-i", str(out)], capture_output=True, text=True)
    assert "h264" in probe.stderr and "yuv420p" in probe.stderr


@needs_ffmpeg
def test_ffmpeg_writer_failure_keeps_a_playable_partial(tmp_path: Path):
    out = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError, match="boom"), \
            FFmpegWriter(out, CLIP_SIZE, Fraction(12), FFMPEG) as writer:
        for i, frame in enumerate(disk_frames(6)):
            if i == 3:
                raise RuntimeError("boom")
            writer.write(frame)
    assert not out.exists()
    frames, _, _ = read_all(partial_path(out))
    assert len(frames) == 3


@needs_ffmpeg
def test_failure_before_any_frame_removes_the_partial(tmp_path: Path):
    out = tmp_path / "out.mp4"
    with pytest.raises(KeyboardInterrupt), FFmpegWriter(out, CLIP_SIZE, Fraction(12), FFMPEG):
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


@needs_ffmpeg
@pytest.mark.parametrize(("name", "codec", "pix_fmt"), [
    ("alpha.mov", "prores", "yuva444p"), ("alpha.webm", "vp9", "yuva420p"),
])
def test_alpha_videos(tmp_path: Path, name: str, codec: str, pix_fmt: str):
    out = tmp_path / name
    with FFmpegWriter(out, CLIP_SIZE, Fraction(12), FFMPEG, alpha=True) as writer:
        for frame in disk_frames(3):
            writer.write(np.dstack([frame, np.full(frame.shape[:2], 128, np.uint8)]))
    probe = subprocess.run([FFMPEG, "-hide_banner", "-i", str(out)], capture_output=True, text=True)
    assert codec in probe.stderr.lower()
    # VP9 stores alpha in a side channel, announced as alpha_mode
    assert pix_fmt in probe.stderr or "alpha_mode" in probe.stderr


@needs_ffmpeg
def test_audio_is_copied_and_cut_to_the_video(tmp_path: Path):
    src = tmp_path / "with_audio.mkv"
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc=size=64x48:rate=12:duration=2", "-f", "lavfi", "-i",
                    "sine=frequency=440:duration=2", "-c:v", "mpeg4", "-c:a", "pcm_s16le",
                    str(src)], check=True)
    assert has_audio(src, FFMPEG)
    out = tmp_path / "out.mp4"
    with FFmpegWriter(out, CLIP_SIZE, Fraction(12), FFMPEG, audio_from=src,
                      audio_seconds=0.5) as writer:
        for frame in disk_frames(6):
            writer.write(frame)
    assert has_audio(out, FFMPEG)
    probe = subprocess.run([FFMPEG, "-hide_banner", "-i", str(out)], capture_output=True, text=True)
    assert "aac" in probe.stderr and "Duration: 00:00:00.5" in probe.stderr


def test_opencv_writer_fallback(tmp_path: Path):
    out = tmp_path / "out.mp4"
    with OpenCVWriter(out, CLIP_SIZE, Fraction(12)) as writer:
        for frame in disk_frames(6):
            writer.write(frame)
    frames, fps, size = read_all(out)
    assert (len(frames), fps, size) == (6, CLIP_FPS, CLIP_SIZE)
    with pytest.raises(ValueError, match="does not fit"), \
            OpenCVWriter(tmp_path / "b.mp4", CLIP_SIZE, Fraction(12)) as writer:
        writer.write(np.zeros((10, 10, 3), np.uint8))


def test_png_sequence(tmp_path: Path):
    with PngSequenceWriter(tmp_path / "seq") as seq:
        for _ in range(3):
            seq.write(np.zeros((4, 5, 4), np.uint8))
    assert sorted(p.name for p in (tmp_path / "seq").iterdir()) == [
        "frame_000000.png", "frame_000001.png", "frame_000002.png"]
