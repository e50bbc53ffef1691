"""``subject`` of ``/v1/matte`` and remove.bg's ``type`` mapped onto it: parsing, forwarding,
the OpenAPI document, and the real services."""

from __future__ import annotations

import pytest
import requests

from contract.parse import InvalidValue
from contract.vocab import SUBJECTS
from matting_api.openapi import MATTE_FORM
from matting_api.options import parse_matte_options
from matting_api.removebg import parse_removebg_options


@pytest.mark.parametrize(("given", "sent"), [(None, None), ("auto", None), ("Person", "person"),
                                             ("object", "object")])
def test_subject_is_forwarded_unless_auto(given, sent):
    options = parse_matte_options({"subject": given}, has_bg_image=False)
    assert options.segmentation.subject == sent
    assert options.segmentation.as_form().get("subject") == sent


def test_an_unknown_subject_is_refused_naming_the_field():
    with pytest.raises(InvalidValue) as info:
        parse_matte_options({"subject": "plant"}, has_bg_image=False)
    assert info.value.field == "subject" and "auto, person, object" in info.value.message


@pytest.mark.parametrize(("kind", "subject"), [("auto", None), ("person", "person"), ("product", "object"),
                                               ("car", "object"), ("animal", None)])
def test_removebg_type_maps_onto_subject(kind, subject):
    options, parsed = parse_removebg_options({"type": kind}, has_bg_image=False)
    assert parsed == kind and options.segmentation.subject == subject


def test_openapi_documents_the_choices():
    assert MATTE_FORM["subject"]["enum"] == list(SUBJECTS)
    assert MATTE_FORM["subject"]["default"] == "auto"


def test_subject_through_both_services(offline_services, sample_photo_bytes):
    url = offline_services[1].url
    answers = {subject: requests.post(url + "/v1/matte", files={"image": ("a.png", sample_photo_bytes)},
                                      data={"subject": subject, "channels": "alpha"}, timeout=120)
               for subject in SUBJECTS}
    backends = {s: r.headers.get("X-Segmentation-Backend") for s, r in answers.items()}
    assert backends == {"auto": "modnet", "person": "modnet", "object": "u2netp"}, answers["auto"].text
    assert "looks like a person" in answers["auto"].headers["X-Segmentation-Reason"]
    wrong = requests.post(url + "/v1/matte", files={"image": ("a.png", sample_photo_bytes)},
                          data={"subject": "object", "classes": "person"}, timeout=120)
    assert wrong.status_code == 400 and wrong.json()["error"]["field"] == "subject"
    product = requests.post(url + "/v1.0/removebg", files={"image_file": ("a.png", sample_photo_bytes)},
                            data={"type": "product"}, timeout=120)
    assert product.status_code == 200, product.text
    assert product.headers["X-Segmentation-Backend"] == "u2netp" and product.headers["X-Type"] == "product"
