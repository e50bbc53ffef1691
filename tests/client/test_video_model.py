"""Which people model the video client picks (client.video_model), and the service's
X-Segmentation-Subject that the choice reads, through the real services."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from client.api import MattingClient
from client.video_matte import FrameMatter
from client.video_model import (
    FAST_MODEL_INTERVAL,
    SLOW_MODEL_INTERVAL,
    VIDEO_BACKEND,
    choose,
    loaded_backends,
)
from service_common.config import REPO_ROOT


def _choose(**given):
    calls = []

    def loaded():
        calls.append("loaded")
        return given.pop("loaded_names", {VIDEO_BACKEND, "modnet"})

    def first():
        calls.append("first")
        return given.pop("seen", "person"), given.pop("served", "modnet")

    args = {"backend": None, "subject": None, "classes": None, "interval": None}
    args.update({k: v for k, v in given.items() if k in args})
    return choose(**args, loaded=loaded, first_frame=first), calls


def test_a_person_in_the_first_frame_gets_the_selfie_model_on_every_frame():
    choice, calls = _choose(seen="person")
    assert (choice.backend, choice.keyframe_interval) == (VIDEO_BACKEND, FAST_MODEL_INTERVAL)
    assert calls == ["loaded", "first"]


@pytest.mark.parametrize(("seen", "served", "backend"), [("object", "u2netp", "u2netp"),
                                                        ("object", "modnet", "modnet"), ("", "", None)])
def test_anything_else_keeps_the_first_frames_model_with_keyframes(seen, served, backend):
    choice, _ = _choose(seen=seen, served=served)
    assert (choice.backend, choice.keyframe_interval) == (backend, SLOW_MODEL_INTERVAL)
    assert "does not look like a person" in choice.reason


def test_without_the_selfie_model_no_frame_is_probed():
    choice, calls = _choose(loaded_names={"modnet", "u2netp"})
    assert choice.backend is None and calls == ["loaded"]
    assert "make models-offline" in choice.reason


@pytest.mark.parametrize(("given", "expected"), [
    ({"backend": "modnet"}, ("modnet", SLOW_MODEL_INTERVAL)),
    ({"backend": VIDEO_BACKEND}, (VIDEO_BACKEND, FAST_MODEL_INTERVAL)),
    ({"backend": "modnet", "interval": 1}, ("modnet", 1)),
    ({"subject": "object"}, (None, SLOW_MODEL_INTERVAL)),
    ({"classes": "dog"}, (None, SLOW_MODEL_INTERVAL)),
    ({"subject": "person"}, (VIDEO_BACKEND, FAST_MODEL_INTERVAL)),
    ({"subject": "person", "interval": 2}, (VIDEO_BACKEND, 2)),
])
def test_the_users_options_decide_without_a_probe(given, expected):
    choice, calls = _choose(**given)
    assert (choice.backend, choice.keyframe_interval) == expected
    assert "first" not in calls


@pytest.mark.parametrize(("ready", "names"), [
    ({"segmentation": {"backends": ["modnet", "selfie", 3]}}, {"modnet", "selfie"}),
    ({"segmentation": {"backends": "selfie"}}, set()),
    ({"segmentation": None}, set()),
    ({}, set()),
    ([], set()),
])
def test_a_ready_answer_is_not_trusted(ready, names):
    assert loaded_backends(ready) == names


def test_the_services_say_what_the_first_frame_shows(offline_services, sample_photo):
    """The portrait is a person for subject=auto; the Hubble deep field shows nobody (no
    subject: no header). A hard-edged synthetic shape would pass for a person: MODNet's rule
    judges the matte, not the picture (docs/video.md)."""
    _, mat = offline_services
    with MattingClient(mat.url) as client:
        assert VIDEO_BACKEND in loaded_backends(client.ready())
        matter = FrameMatter(client, {})
        bgr = np.ascontiguousarray(sample_photo[:, :, ::-1])
        portrait = matter(bgr)
        assert (portrait.subject, portrait.backend) == ("person", "modnet")
        sky = np.asarray(Image.open(REPO_ROOT / "samples" / "hubble_deep_field.jpg").convert("RGB"))
        seen = matter(np.ascontiguousarray(sky[:240, :320, ::-1]))
        assert seen.no_subject and seen.subject == ""
