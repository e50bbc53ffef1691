"""``--blend`` and ``--backend`` of the clients: parsing, and through the real services
(offline backends: U^2-Net-p segmentation, closed-form matting)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from client.api import MattingClient, MattingError
from client.cli import UsageError, build_parser, main, options_from_args
from client.video import VideoJob, process_video
from client.video_cli import build_parser as video_parser
from client.video_cli import job_from_args
from contract.vocab import SegmentationOptions
from service_common.config import REPO_ROOT

SKYBLUE = np.array([135, 206, 235])


@pytest.fixture
def photo(tmp_path: Path, sample_photo: np.ndarray, encode_png) -> Path:
    """The sample portrait at 160 x 160 (keeps segmentation and matting quick)."""
    path = tmp_path / "astronaut.png"
    small = np.asarray(Image.fromarray(sample_photo).resize((160, 160), Image.LANCZOS))
    path.write_bytes(encode_png(small))
    return path


def test_options_from_the_flags():
    args = build_parser().parse_args(["in.png", "--blur", "--blend", "poisson_mixed",
                                      "--backend", "U2NETP"])
    assert options_from_args(args) == {"bg_mode": "blur", "blend": "poisson_mixed",
                                       "backend": "u2netp"}
    args = build_parser().parse_args(["in.png", "--transparent", "--blend", "alpha"])
    assert options_from_args(args) == {"bg_mode": "transparent", "blend": "alpha"}
    args = build_parser().parse_args(["in.png", "--size", "0640", "--crop", "--crop-margin", "5%,10px",
                                      "--classes", "Person, Teddy Bear", "--score-threshold", ".5"])
    assert options_from_args(args) == {"size": "640", "crop": True, "crop_margin": "5% 10px 5% 10px",
                                       "classes": "person,teddy bear", "score_threshold": "0.5"}


@pytest.mark.parametrize(("argv", "words"), [
    (["--blend", "poisson"], "give --background, --color, --blur or --grayscale"),
    (["--blend", "poisson", "--transparent"], "new background"),
    (["--blend", "poisson_mixed", "--color", "red", "--alpha"], "--alpha"),
    (["--blend", "poisson", "--color", "ff000080"], "opaque"),
])
def test_blend_usage_errors(argv, words):
    args = build_parser().parse_args(["in.png", *argv])
    with pytest.raises(UsageError, match=words):
        options_from_args(args)


def test_bad_flag_values_exit_2(photo: Path, capsys):
    for argv in (["--backend", "sam2"], ["--blend", "median"]):
        with pytest.raises(SystemExit) as info:
            main([str(photo), *argv])
        assert info.value.code == 2
    assert "argument --backend: 'sam2' is not one of auto, maskrcnn" in capsys.readouterr().err
    assert main([str(photo), "--blend", "poisson", "--server", "http://127.0.0.1:9"]) == 2


@pytest.mark.parametrize(("argv", "sentence"), [
    (["--size", "abc"], "argument --size: 'abc' is neither 'full' nor a whole number of pixels"),
    (["--score-threshold", "2"], "argument --score-threshold: '2' must be a number in [0, 1]"),
    (["--blur", "-3"], "argument --blur: '-3' must be a number in (0, 1000]"),
    (["--color", "rgb(999,0,0)"], "argument --color: 'rgb(999,0,0)': every channel must be within 0..255"),
    (["--crop-margin", "ten"], "argument --crop-margin: 'ten' is not a margin like 30px"),
    (["--classes", " , "], "argument --classes: no class name given"),
])
def test_value_errors_read_as_the_services_sentences(photo: Path, capsys, argv, sentence):
    """The CLI parses with the services' own parsers: same verdict, same sentence (argparse
    used to print 'invalid parse_size value' or 'invalid <lambda> value')."""
    with pytest.raises(SystemExit) as info:
        main([str(photo), *argv])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert sentence in err and "invalid" not in err.split("error:")[1][:20]


def test_blur_before_output_is_a_usage_error_in_words(photo: Path, capsys):
    with pytest.raises(SystemExit):
        main([str(photo), "--blur", "out.png"])
    err = capsys.readouterr().err
    assert "argument --blur: 'out.png' is not a number" in err


def test_cli_subprocess_poisson_with_the_u2netp_backend(offline_services, photo: Path,
                                                        tmp_path: Path):
    env = {**os.environ, "BACKDROP_SERVER": offline_services[1].url}
    outputs = {}
    for blend in ("alpha", "poisson"):
        out = tmp_path / f"{blend}.png"
        proc = subprocess.run(
            [sys.executable, "-m", "client", str(photo), str(out), "--color", "skyblue",
             "--blend", blend, "--backend", "u2netp", "-q"],
            capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == str(out)
        with Image.open(out) as img:
            assert img.format == "PNG" and img.size == (160, 160) and img.mode == "RGB"
            outputs[blend] = np.asarray(img).astype(int)
    alpha, poisson = outputs["alpha"], outputs["poisson"]
    # the top corners are background in both: the new colour exactly
    for corner in (alpha[2, 2], alpha[2, -3], poisson[2, 2], poisson[2, -3]):
        assert (corner == SKYBLUE).all()
    # the face keeps its colours; the subject's edge band is blended toward the sky blue
    assert np.abs(poisson[33:45, 62:76] - alpha[33:45, 62:76]).max() <= 1
    changed = np.abs(poisson - alpha).max(axis=2) > 3
    assert changed.sum() > 100
    blueness = lambda img: (img[..., 2] - img[..., 0])[changed].mean()  # noqa: E731
    assert blueness(poisson) > blueness(alpha) + 10


def test_backend_reaches_the_segmentation_service(offline_services, photo: Path):
    with MattingClient(offline_services[1].url, timeout=60) as api:
        _, headers = api.matte(photo.read_bytes(), backend="u2netp", bg_color="white",
                               blend="poisson", format="jpg")
        assert headers["X-Segmentation-Backend"] == "u2netp"
        with pytest.raises(MattingError) as info:
            api.matte(photo.read_bytes(), backend="maskrcnn")
    # the matting service accepts the name; the segmentation service has not loaded it
    assert info.value.code == "invalid_parameter" and info.value.status == 400
    assert "not loaded" in info.value.message


def test_cli_reports_a_backend_the_service_has_not_loaded(offline_services, photo: Path,
                                                          tmp_path: Path, capsys):
    out = tmp_path / "o.png"
    code = main([str(photo), str(out), "--server", offline_services[1].url,
                 "--backend", "maskrcnn", "--color", "red", "-q"])
    assert code == 1
    assert "invalid_parameter" in capsys.readouterr().err
    assert not out.exists()


def test_video_backend_flag(offline_services, subject_clip: Path, tmp_path: Path):
    args = video_parser().parse_args([str(subject_clip), "o.mp4", "--color", "red",
                                      "--backend", "u2netp"])
    assert job_from_args(args).segmentation.backend == "u2netp"
    ok = process_video(VideoJob(subject_clip, tmp_path / "ok.mp4", color="red", max_frames=2,
                                jobs=1, segmentation=SegmentationOptions(backend="u2netp"),
                                server=offline_services[1].url),
                       progress=False)
    assert ok.frames == 2
    with pytest.raises(MattingError) as info:
        process_video(VideoJob(subject_clip, tmp_path / "no.mp4", color="red", max_frames=2,
                               jobs=1, segmentation=SegmentationOptions(backend="maskrcnn"),
                               server=offline_services[1].url),
                      progress=False)
    assert info.value.code == "invalid_parameter" and "not loaded" in info.value.message
    assert not (tmp_path / "no.mp4").exists()
