"""``--subject`` of the image and the video client: parsing, the form field, a resumed video
job's fingerprint, and the real services' answer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from client.api import MattingClient
from client.cli import build_parser, main, options_from_args
from client.video import OPTION_NAMES, VideoJob, fingerprint
from client.video_cli import build_parser as video_parser
from client.video_cli import job_from_args
from contract.vocab import SegmentationOptions


def test_subject_is_sent_when_given():
    args = build_parser().parse_args(["in.png", "--subject", "object"])
    assert options_from_args(args)["subject"] == "object"
    assert "subject" not in options_from_args(build_parser().parse_args(["in.png"]))


def test_an_unknown_subject_exits_2_naming_the_choices(capsys):
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["in.png", "--subject", "plant"])
    assert info.value.code == 2
    assert "auto, person, object" in capsys.readouterr().err.replace("'", "")


def test_video_subject_is_part_of_the_job_and_its_fingerprint(tmp_path: Path):
    args = video_parser().parse_args(["in.mp4", "out.mp4", "--color", "red", "--subject", "person"])
    job = job_from_args(args)
    assert job.segmentation.subject == "person"
    clip = tmp_path / "in.mp4"
    clip.write_bytes(b"not read")
    def job(subject: str) -> VideoJob:
        return VideoJob(clip, tmp_path / "o.mp4", segmentation=SegmentationOptions(subject=subject))

    first = fingerprint(job("person"))
    assert first["subject"] == "person"
    assert first != fingerprint(job("object"))
    assert set(first) <= set(OPTION_NAMES) and OPTION_NAMES["subject"] == "--subject"


@pytest.fixture
def photo(tmp_path: Path, sample_photo: np.ndarray, encode_png) -> Path:
    """The sample portrait at 160 x 160 (keeps segmentation and matting quick)."""
    path = tmp_path / "astronaut.png"
    path.write_bytes(encode_png(np.asarray(Image.fromarray(sample_photo).resize((160, 160)))))
    return path


def test_subject_reaches_the_segmentation_service(offline_services, photo: Path, tmp_path: Path):
    with MattingClient(offline_services[1].url, timeout=60) as api:
        _, headers = api.matte(photo.read_bytes(), subject="object", channels="alpha")
        assert headers["X-Segmentation-Backend"] == "u2netp"
        _, headers = api.matte(photo.read_bytes(), channels="alpha")
        assert headers["X-Segmentation-Backend"] == "modnet"  # auto: the portrait stays on MODNet
    out = tmp_path / "o.png"
    assert main([str(photo), str(out), "--server", offline_services[1].url, "--subject", "person",
                 "--color", "red", "-q"]) == 0
    assert out.exists()


def test_a_video_job_keeps_the_video_model_size_unless_it_names_one(tmp_path: Path):
    from client.video import VIDEO_MODEL_SIZE

    named = SegmentationOptions(backend="u2netp")
    assert VideoJob(tmp_path / "in.mp4", None, segmentation=named).segmentation == SegmentationOptions(
        backend="u2netp", model_size=VIDEO_MODEL_SIZE)
    assert VideoJob(tmp_path / "in.mp4", None).segmentation.model_size == VIDEO_MODEL_SIZE
    sized = SegmentationOptions(model_size=512)
    assert VideoJob(tmp_path / "in.mp4", None, segmentation=sized).segmentation.model_size == 512
    # the resume fingerprint keeps the keys of the flat options it had before
    (tmp_path / "in.mp4").write_bytes(b"not read")
    keys = set(fingerprint(VideoJob(tmp_path / "in.mp4", tmp_path / "o.mp4")))
    assert {"classes", "score_threshold", "instances", "backend", "model_size", "subject"} <= keys
