"""The video client end to end: a generated 6-frame clip through the real services."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from videotools import CLIP_SIZE, nearest_colour, read_all

from client.api import MattingClient
from client.video import UsageError, VideoJob, process_video
from client.video_cli import main
from client.video_io import ffmpeg_exe
from contract.vocab import SegmentationOptions
from service_common.config import REPO_ROOT
from service_common.serve import free_port


def test_colour_background_alpha_outputs_and_smoothing(offline_services, subject_clip: Path,
                                                       tmp_path: Path):
    out, seq, alpha_video = tmp_path / "out.mp4", tmp_path / "seq", tmp_path / "alpha.webm"
    result = process_video(VideoJob(
        subject_clip, out, color="#00ff00", smooth=0.5, alpha_sequence=seq,
        alpha_video=alpha_video if ffmpeg_exe() else None, jobs=3,
        segmentation=SegmentationOptions(backend="u2netp"),  # a disk is a salient object, not a person
        server=offline_services[1].url), progress=False)
    assert (result.frames, result.fps, result.size) == (6, 12.0, CLIP_SIZE)
    frames, fps, size = read_all(out)
    assert (len(frames), fps, size) == (6, 12.0, CLIP_SIZE)
    assert not (tmp_path / "out.mp4.partial").exists()
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
    """The real client, counting its calls; ``interrupt(call)`` strikes during call ``after + 1``:
    by default a KeyboardInterrupt raised there, as Ctrl-C in an old-style loop would."""

    def __init__(self, server: str, after: int | None = None, interrupt=None) -> None:
        super().__init__(server, timeout=60)
        self.after, self.calls = after, 0
        self.interrupt = interrupt
        self.priors: list[bool] = []  # per call: whether it carried a keyframe's matte

    def matte(self, image: bytes, **options):
        self.calls += 1
        self.priors.append(options.get("prior") is not None)
        if self.after is not None and self.calls == self.after + 1:
            if self.interrupt is None:
                raise KeyboardInterrupt
            self.interrupt()
        return super().matte(image, **options)


def _alphas(folder: Path) -> list[np.ndarray]:
    return [np.asarray(Image.open(p)) for p in sorted(folder.iterdir())]


def _job(clip: Path, tmp_path: Path, name: str, **changes) -> VideoJob:
    job = VideoJob(clip, tmp_path / f"{name}.mp4", color="black", alpha_sequence=tmp_path / name,
                   jobs=1, segmentation=SegmentationOptions(backend="u2netp"), smooth=0.5)
    for key, value in changes.items():
        setattr(job, key, value)
    return job


def test_interrupted_job_resumes_without_redoing_frames(offline_services, subject_clip: Path,
                                                        tmp_path: Path, monkeypatch):
    """Stopped after 5 of 6 frames (checkpoints every 2), then run again: only the last frame
    is sent (with the matte of its keyframe, frame 3, sent again for it), and the result
    (video, alpha PNGs, smoothing and the carried mattes included) equals an uninterrupted
    run's."""
    url = offline_services[1].url
    whole = process_video(_job(subject_clip, tmp_path, "whole"), client=MattingClient(url),
                          progress=False)
    assert whole.frames == 6 and whole.resumed_from == 0

    monkeypatch.setattr("client.video.CHECKPOINT_FRAMES", 2)
    job = _job(subject_clip, tmp_path, "cut")
    client = _InterruptingClient(url, after=5)
    with pytest.raises(KeyboardInterrupt):
        process_video(job, client=client, progress=False)
    folder = tmp_path / "cut.mp4.partial"
    index = json.loads((folder / "index.json").read_text())
    assert index["frames"] == 5 and index["pieces"]["main"] == ["main_000.mp4", "main_001.mp4",
                                                                "main_002.mp4"]
    assert (folder / index["state"]).is_file()
    assert not job.output.exists()  # nothing looks complete

    again = _InterruptingClient(url)
    result = process_video(job, client=again, progress=False)
    assert again.priors == [False, True] and (result.frames, result.resumed_from) == (6, 5)
    assert not folder.exists()
    frames, fps, size = read_all(job.output)
    assert (len(frames), fps, size) == (6, 12.0, CLIP_SIZE)
    want = _alphas(tmp_path / "whole")
    got = _alphas(tmp_path / "cut")
    assert len(got) == 6 and all(np.array_equal(a, b) for a, b in zip(want, got, strict=True))
    whole_frames = read_all(tmp_path / "whole.mp4")[0]
    # the same frames in the same order (H.264 of separate pieces differs only in coding noise)
    gaps = np.array([[np.abs(a.astype(int) - b).mean() for b in whole_frames] for a in frames])
    assert list(gaps.argmin(axis=1)) == list(range(6)) and gaps.diagonal().max() < 3


def test_ctrl_c_stops_after_the_frame_in_progress(offline_services, subject_clip: Path,
                                                  tmp_path: Path):
    """A real SIGINT while frame 3 is matted: the job ends that frame, keeps it, and drops
    frame 4 if it was already queued behind it (decoded ahead), so exactly 3 are kept."""
    job = _job(subject_clip, tmp_path, "sig")
    client = _InterruptingClient(offline_services[1].url, after=2,
                                 interrupt=lambda: os.kill(os.getpid(), signal.SIGINT))
    with pytest.raises(KeyboardInterrupt):
        process_video(job, client=client, progress=False)
    index = json.loads((tmp_path / "sig.mp4.partial" / "index.json").read_text())
    assert index["frames"] == 3  # the frame in progress was finished and kept
    assert client.calls == 3  # and no frame was sent after the stop
    assert len(list((tmp_path / "sig").iterdir())) >= 3
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler given back


def test_other_options_do_not_mix_with_an_unfinished_job(offline_services, subject_clip: Path,
                                                         tmp_path: Path, capsys):
    url = offline_services[1].url
    job = _job(subject_clip, tmp_path, "mix")
    with pytest.raises(KeyboardInterrupt):
        process_video(job, client=_InterruptingClient(url, after=2), progress=False)
    with pytest.raises(UsageError, match=r"other options \(--color, --smooth\).*--restart"):
        process_video(_job(subject_clip, tmp_path, "mix", color="white", smooth=0.2),
                      client=MattingClient(url), progress=False)
    args = [str(subject_clip), str(job.output), "--color", "white", "--alpha-sequence",
            str(tmp_path / "mix"), "--backend", "u2netp", "--jobs", "1", "-q", "--server", url]
    assert main(args) == 2
    assert "--restart" in capsys.readouterr().err
    _InterruptingClient(url)
    assert main([*args, "--restart"]) == 0
    assert not (tmp_path / "mix.mp4.partial").exists()
    assert len(read_all(job.output)[0]) == 6


@pytest.mark.skipif(ffmpeg_exe() is None, reason="needs the ffmpeg of imageio-ffmpeg")
def test_resumed_job_keeps_audio_and_alpha_video(offline_services, tmp_path: Path):
    """Pieces of an H.264 output and of a ProRes 4444 alpha video, joined after a resume,
    with the input's audio cut to the frames done (6 at 12 fps: 0.5 s)."""
    exe = ffmpeg_exe()
    src = tmp_path / "talk.mkv"
    subprocess.run([exe, "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc=size=64x48:rate=12:duration=2", "-f", "lavfi", "-i",
                    "sine=frequency=440:duration=2", "-c:v", "mpeg4", "-c:a", "pcm_s16le",
                    str(src)], check=True)
    job = VideoJob(src, tmp_path / "out.mp4", color="white", alpha_video=tmp_path / "alpha.mov",
                   max_frames=6, jobs=1, segmentation=SegmentationOptions(backend="u2netp"))
    url = offline_services[1].url
    with pytest.raises(KeyboardInterrupt):
        process_video(job, client=_InterruptingClient(url, after=3), progress=False)
    result = process_video(job, client=MattingClient(url), progress=False)
    assert (result.frames, result.resumed_from, result.audio) == (6, 3, True)
    assert len(read_all(job.output)[0]) == 6 and len(read_all(job.alpha_video)[0]) == 6
    probe = subprocess.run([exe, "-hide_banner", "-i", str(job.output)], capture_output=True,
                           text=True).stderr
    assert "aac" in probe and "Duration: 00:00:00.5" in probe
    probe = subprocess.run([exe, "-hide_banner", "-i", str(job.alpha_video)], capture_output=True,
                           text=True).stderr
    assert "prores" in probe and "4444" in probe
