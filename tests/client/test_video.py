"""The video client end to end: a generated 6-frame clip through the real services."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from videotools import CLIP_SIZE, nearest_colour, read_all

from client.api import MattingClient
from client.video import UsageError, VideoJob, main, process_video
from client.video_io import ffmpeg_exe, partial_path
from service_common.config import REPO_ROOT
from service_common.serve import free_port


def test_colour_background_alpha_outputs_and_smoothing(offline_services, subject_clip: Path,
                                                       tmp_path: Path):
    out, seq, alpha_video = tmp_path / "out.mp4", tmp_path / "seq", tmp_path / "alpha.webm"
    result = process_video(VideoJob(
        subject_clip, out, color="#00ff00", smooth=0.5, alpha_sequence=seq,
        alpha_video=alpha_video if ffmpeg_exe() else None, jobs=3,
        backend="u2netp",  # a disk is a salient object, not a person
        server=offline_services[1].url), progress=False)
    assert (result.frames, result.fps, result.size) == (6, 12.0, CLIP_SIZE)
    frames, fps, size = read_all(out)
    assert (len(frames), fps, size) == (6, 12.0, CLIP_SIZE)
    assert not partial_path(out).exists()
    assert result.writer == ("ffmpeg" if ffmpeg_exe() else "opencv")
    # the corner is background (green), the disk's centre is the subject (orange)
    corner, centre = frames[0][2, 2].astype(int), frames[0][24, 22].astype(int)
    assert corner[1] > 200 and corner[2] < 60
    assert centre[2] > 200 and centre[1] < 200

    pngs = sorted(seq.iterdir())
    assert [p.name for p in pngs] == [f"frame_{i:06d}.png" for i in range(6)]
    with Image.open(pngs[0]) as img:
        assert img.mode == "RGBA" and img.size == CLIP_SIZE
        alpha = np.asarray(img)[..., 3]
    assert alpha[2, 2] == 0 and alpha[24, 22] == 255
    if ffmpeg_exe():
        assert len(read_all(alpha_video)[0]) == 6


@pytest.mark.parametrize(("end", "expected"), [
    ("loop", [0, 1, 2, 0, 1, 2]),
    ("hold", [0, 1, 2, 2, 2, 2]),
])
def test_short_background_video(offline_services, subject_clip: Path, make_bg_clip, tmp_path,
                                end, expected):
    out = tmp_path / f"{end}.mp4"
    result = process_video(VideoJob(
        subject_clip, out, background=make_bg_clip(3), bg_video_end=end, jobs=2,
        server=offline_services[1].url), progress=False)
    frames, _, _ = read_all(out)
    assert result.frames == len(frames) == 6  # the subject video is never cut
    assert [nearest_colour(f[2, 2]) for f in frames] == expected


def test_video_cli_subprocess_longer_background_size_opencv(offline_services, subject_clip: Path,
                                                           make_bg_clip, tmp_path: Path):
    """A 9-frame background behind 4 subject frames is cut; --size and the OpenCV writer."""
    out = tmp_path / "cli.mp4"
    env = {**os.environ, "BACKDROP_SERVER": offline_services[1].url}
    proc = subprocess.run(
        [sys.executable, "-m", "client.video", str(subject_clip), str(out),
         "--background", str(make_bg_clip(9)), "--size", "32x24", "--writer", "opencv",
         "--max-frames", "4", "--jobs", "2", "-q"],
        capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(out)
    assert "4 frames, 32x24 at 12 fps" in proc.stderr and "writer opencv" in proc.stderr
    frames, fps, size = read_all(out)
    assert (len(frames), fps, size) == (4, 12.0, (32, 24))
    assert [nearest_colour(f[1, 1]) for f in frames] == [0, 1, 2, 0]


def test_unreachable_service_leaves_no_output(subject_clip: Path, tmp_path: Path, capsys):
    out = tmp_path / "out.mp4"
    code = main([str(subject_clip), str(out), "--color", "red", "-q",
                 "--server", f"http://127.0.0.1:{free_port()}"])
    assert code == 1
    assert "make serve" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [subject_clip]


@pytest.mark.parametrize(("changes", "message"), [
    ({"color": None}, "cannot hold transparency"),
    ({"transparent": True, "color": None}, ".mov"),
    ({"color": "ff000080"}, "opaque colour"),
    ({"output": None}, "nothing to write"),
    ({"alpha_video": Path("a.mp4")}, "ProRes"),
    ({"smooth": 1.0}, "--smooth"),
])
def test_usage_errors(subject_clip: Path, tmp_path: Path, changes, message):
    job = VideoJob(subject_clip, tmp_path / "o.mp4", color="blue", server="http://127.0.0.1:9")
    for key, value in changes.items():
        setattr(job, key, value)
    with pytest.raises(UsageError, match=message):
        process_video(job, progress=False)


def test_output_is_never_the_input(subject_clip: Path, capsys):
    assert main([str(subject_clip), str(subject_clip), "--color", "red"]) == 2
    assert "never overwritten" in capsys.readouterr().err


class _InterruptingClient(MattingClient):
    """The real client, but Ctrl-C strikes while the (n+1)-th frame is in flight."""

    def __init__(self, server: str, after: int) -> None:
        super().__init__(server, timeout=60)
        self.after, self.calls = after, 0

    def matte(self, image: bytes, **options):
        self.calls += 1
        if self.calls > self.after:
            raise KeyboardInterrupt
        return super().matte(image, **options)


def test_ctrl_c_closes_the_writers_and_keeps_a_partial(offline_services, subject_clip: Path,
                                                       tmp_path: Path):
    out, seq = tmp_path / "out.mp4", tmp_path / "seq"
    client = _InterruptingClient(offline_services[1].url, after=3)
    with pytest.raises(KeyboardInterrupt):
        process_video(VideoJob(subject_clip, out, color="black", alpha_sequence=seq, jobs=1),
                      client=client, progress=False)
    assert not out.exists()
    assert len(read_all(partial_path(out))[0]) == 3  # closed properly: it plays
    assert len(list(seq.iterdir())) == 3
