"""``subject=auto|person|object`` of ``/v1/mask``: the rule of :mod:`segmentation_api.subject`
on stand-in masks, and the real app with the real offline models."""

from __future__ import annotations

import io
from types import MappingProxyType

import numpy as np
import pytest
from apierrors import assert_api_error

from segmentation_api import create_app
from segmentation_api.backends import Instance, box_of_mask
from segmentation_api.subject import AutoSubject, MatteSigns, Overlap

SHAPE = (100, 100)


def _mask(top: int, bottom: int, left: int, right: int, soft: int = 0) -> np.ndarray:
    """A box of 1 in a ``SHAPE`` mask, with ``soft`` rows of 0.5 below it."""
    mask = np.zeros(SHAPE, np.float32)
    mask[top:bottom, left:right] = 1.0
    mask[bottom:bottom + soft, left:right] = 0.5
    return mask


class Stand:
    """A model standing in for MODNet or U^2-Net-p: it answers a fixed mask and counts calls."""

    classes_used = False
    class_aliases = MappingProxyType({})
    device = "cpu"

    def __init__(self, name: str, mask: np.ndarray | None, score: float = 0.99, kind: str = "matte"):
        self.name, self.mask, self.score, self.mask_kind = name, mask, score, kind
        self.class_names = ("person",)
        self.calls = 0

    def predict(self, rgb, classes, score_threshold, working_size=None):
        self.calls += 1
        if self.mask is None or self.score <= score_threshold:
            return []
        return [Instance(mask=self.mask, label="x", score=self.score, box=box_of_mask(self.mask))]


def _choose(person: Stand, other: Stand):
    return AutoSubject(person, other).choose(np.zeros((*SHAPE, 3), np.uint8), 0.6)


def test_a_clear_person_pays_for_the_people_model_only():
    person, other = Stand("modnet", _mask(10, 90, 30, 70)), Stand("u2netp", _mask(0, 100, 0, 100))
    choice = _choose(person, other)
    assert choice.backend is person and other.calls == 0
    assert choice.reason.startswith("subject=auto: modnet's matte looks like a person (score 0.99, 32% of")
    assert set(choice.timings_ms) == {"modnet"}


@pytest.mark.parametrize(("person_mask", "other_mask", "chosen", "words"), [
    (None, _mask(10, 90, 10, 90), "u2netp", "modnet found no person, so u2netp's salient object"),
    # soft, so not clearly a person; the object holds it and is 2.7x larger: a part of it
    (_mask(40, 60, 20, 80, soft=10), _mask(10, 90, 10, 90), "u2netp", "its object holds 100% of"),
    # soft; the object model sees the same thing
    (_mask(40, 60, 20, 80, soft=10), _mask(40, 68, 20, 80), "modnet", "they agree (IoU 0.93"),
    # soft; the object model sees something else
    (_mask(40, 60, 20, 80, soft=10), _mask(0, 30, 0, 30), "modnet", "they disagree (IoU 0.00"),
    (_mask(40, 60, 20, 80, soft=10), None, "modnet", "so u2netp ran too and found nothing: modnet"),
])
def test_the_object_model_serves_only_where_the_people_model_misses(person_mask, other_mask, chosen, words):
    person, other = Stand("modnet", person_mask), Stand("u2netp", other_mask, kind="segmentation")
    choice = _choose(person, other)
    assert choice.backend.name == chosen, choice.reason
    assert words in choice.reason
    assert other.calls == 1 and set(choice.timings_ms) == {"modnet", "u2netp"}


def test_a_small_region_is_not_clearly_a_person():
    tiny = _mask(0, 1, 0, 100)  # 1 % of the photo
    assert not MatteSigns.of([Instance(tiny, "x", 0.99, box_of_mask(tiny))], SHAPE).person_like
    assert MatteSigns.of([], SHAPE) == MatteSigns(0.0, 0.0, 0.0)


def test_overlap_figures():
    overlap = Overlap.of(_mask(0, 50, 0, 100), _mask(0, 100, 0, 100))
    assert (overlap.iou, overlap.held, overlap.growth) == (0.5, 1.0, 2.0)
    assert overlap.part_of_larger
    assert not Overlap.of(_mask(0, 50, 0, 100), _mask(0, 60, 0, 100)).part_of_larger


# ------------------------------------------------------------------ the real app


@pytest.fixture(scope="module")
def auto_client(models_dir, make_settings):
    return create_app(make_settings(models_dir, segmentation_backend="auto")).test_client()


def test_auto_keeps_the_portrait_on_the_people_model_alone(auto_client, sample_photo_bytes):
    resp = auto_client.post("/v1/mask", data={"image": (io.BytesIO(sample_photo_bytes), "a.png")})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.headers["X-Segmentation-Backend"] == "modnet"
    assert resp.headers["X-Mask-Kind"] == "matte"
    assert "looks like a person" in resp.headers["X-Segmentation-Reason"]
    assert resp.headers["X-Segmentation-Subject"] == "person"
    timing = resp.headers["Server-Timing"]
    assert "model-modnet;" in timing and "u2netp" not in timing


@pytest.mark.parametrize(("subject", "backend", "kind"), [("person", "modnet", "matte"),
                                                          ("object", "u2netp", "segmentation")])
def test_a_named_subject_picks_its_model(auto_client, sample_photo_bytes, subject, backend, kind):
    resp = auto_client.post("/v1/mask", data={"image": (io.BytesIO(sample_photo_bytes), "a.png"),
                                              "subject": subject})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.headers["X-Segmentation-Backend"] == backend
    assert resp.headers["X-Mask-Kind"] == kind
    assert resp.headers["X-Segmentation-Reason"].startswith(f"subject={subject}: {backend}; ")
    assert "X-Segmentation-Subject" not in resp.headers  # only subject=auto's rules say what they saw


@pytest.mark.parametrize(("fields", "words"), [
    ({"subject": "plant"}, "'plant' is not one of auto, person, object"),
    ({"subject": "object", "classes": "person"}, "object contradicts classes=person"),
    ({"subject": "person", "classes": "dog"}, "person contradicts classes=dog"),
])
def test_bad_subjects_are_400_naming_the_field(auto_client, sample_photo_bytes, fields, words):
    resp = auto_client.post("/v1/mask", data={"image": (io.BytesIO(sample_photo_bytes), "a.png"), **fields})
    error = assert_api_error(resp, 400, "invalid_parameter")
    assert error["field"] == "subject" and words in error["message"]


def test_no_subject_for_either_model_says_why(auto_client, grey_photo, encode_png):
    resp = auto_client.post("/v1/mask", data={"image": (io.BytesIO(encode_png(grey_photo)), "g.png")})
    error = assert_api_error(resp, 422, "no_subject")
    assert "no person or salient object" in error["message"]
    assert error["reason"] == "subject=auto: modnet found no person, so u2netp's salient object"
    assert resp.headers["X-Segmentation-Backend"] == "u2netp"


def test_object_asks_a_class_based_model_for_every_class_but_people(maskrcnn_client, sample_photo_bytes):
    """The test Mask R-CNN finds nothing but people: with subject=object it finds nothing."""
    found = maskrcnn_client.post("/v1/mask", data={"image": (io.BytesIO(sample_photo_bytes), "a.png")})
    assert found.status_code == 200
    resp = maskrcnn_client.post("/v1/mask", data={"image": (io.BytesIO(sample_photo_bytes), "a.png"),
                                                  "subject": "object"})
    error = assert_api_error(resp, 422, "no_subject")
    assert "person" not in error["classes"] and "dog" in error["classes"]
    assert resp.headers["X-Segmentation-Reason"].startswith("subject=object: ")
