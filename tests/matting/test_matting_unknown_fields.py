"""The API says what it did not understand (issue 25, item 1), over real HTTP to the running
services (``offline_services``): unknown fields, files and query parameters name the
closest known one; empty files are refused; numbers out of range say the range; no message
names a library."""

from __future__ import annotations

import re

import pytest
import requests
from apierrors import assert_api_error

from contract.parse import closest_name
from contract.vocab import MATTE_FIELDS, MATTE_FILES
from matting_api.removebg import REMOVEBG_FIELDS

#: Library names no answer may carry.
LIBRARIES = re.compile(r"Pillow|\bPIL\b|OpenCV|cv2|numpy|onnxruntime|torch|werkzeug", re.IGNORECASE)


def _matte(url: str, photo: bytes, data: dict | None = None, files: dict | None = None,
           params: dict | None = None) -> requests.Response:
    return requests.post(url + "/v1/matte", files={"image": ("a.png", photo), **(files or {})},
                         data=data or {}, params=params, timeout=120)


@pytest.mark.parametrize(("name", "suggestion"), [
    ("colour", "bg_color"),
    ("bgcolor", "bg_color"),
    ("color", "bg_color"),
    ("BG_COLOR", "bg_color"),
    ("bg-mode", "bg_mode"),
    ("blur", "blur_radius"),
    ("sizes", "size"),
    ("shadow_type", "shadow"),
])
def test_a_misspelt_field_of_matte_names_the_closest_one(offline_services, sample_photo_bytes, name,
                                                         suggestion):
    _, mat = offline_services
    error = assert_api_error(_matte(mat.url, sample_photo_bytes, {name: "red"}), 400, "unknown_field")
    assert (error["field"], error["did_you_mean"]) == (name, suggestion)
    assert f"did you mean {suggestion}?" in error["message"] and repr(name) in error["message"]


def test_a_misspelt_file_a_query_parameter_and_a_raw_body(offline_services, sample_photo_bytes):
    _, mat = offline_services
    # a background uploaded under the wrong name: matched among the files first
    error = assert_api_error(_matte(mat.url, sample_photo_bytes, files={"background": ("b.png", b"x")}),
                             400, "unknown_field")
    assert (error["field"], error["did_you_mean"]) == ("background", "bg_image")
    error = assert_api_error(_matte(mat.url, sample_photo_bytes, files={"trimaps": ("t.png", b"x")}),
                             400, "unknown_field")
    assert error["did_you_mean"] == "trimap"
    # the photo itself under another name, when it is missing
    resp = requests.post(mat.url + "/v1/matte", files={"photo": ("a.png", sample_photo_bytes)}, timeout=60)
    assert assert_api_error(resp, 400, "unknown_field")["did_you_mean"] == "image"
    # the query string, with a multipart body and with the image as the raw body
    error = assert_api_error(_matte(mat.url, sample_photo_bytes, params={"bg_colour": "red"}),
                             400, "unknown_field")
    assert "query parameter" in error["message"] and error["did_you_mean"] == "bg_color"
    resp = requests.post(mat.url + "/v1/matte?formt=png", data=sample_photo_bytes,
                         headers={"Content-Type": "image/png"}, timeout=60)
    assert assert_api_error(resp, 400, "unknown_field")["did_you_mean"] == "format"
    # nothing close: the message lists what the endpoint reads
    error = assert_api_error(_matte(mat.url, sample_photo_bytes, {"qqqq": "1"}), 400, "unknown_field")
    assert "did_you_mean" not in error
    assert all(name in error["message"] for name in (*MATTE_FIELDS, *MATTE_FILES))


def test_fields_in_the_wrong_place(offline_services, sample_photo_bytes):
    _, mat = offline_services
    as_file = _matte(mat.url, sample_photo_bytes, files={"bg_color": ("c.txt", b"red")})
    assert "text field" in assert_api_error(as_file, 400, "invalid_parameter")["message"]
    in_query = _matte(mat.url, sample_photo_bytes, params={"bg_image": "beach.png"})
    assert "multipart" in assert_api_error(in_query, 400, "invalid_parameter")["message"]
    as_text = _matte(mat.url, sample_photo_bytes, {"trimap": "t.png"})
    assert assert_api_error(as_text, 400, "invalid_parameter")["field"] == "trimap"
    # the URL fields of remove.bg clients keep their own answer
    url = _matte(mat.url, sample_photo_bytes, {"bg_image_url": "https://example.com/b.jpg"})
    assert "does not fetch URLs" in assert_api_error(url, 400, "invalid_parameter")["message"]
    raw = requests.post(mat.url + "/v1/matte?image_url=https://example.com/a.jpg", data=sample_photo_bytes,
                        headers={"Content-Type": "image/png"}, timeout=60)
    assert assert_api_error(raw, 400, "invalid_parameter")["field"] == "image_url"


@pytest.mark.parametrize("field", MATTE_FILES)
def test_an_empty_file_in_any_file_field_is_refused(offline_services, sample_photo_bytes, field):
    _, mat = offline_services
    error = assert_api_error(_matte(mat.url, sample_photo_bytes, files={field: ("empty.png", b"")}),
                             400, "empty_body")
    assert field in error["message"] and "leave the field out" in error["message"]


@pytest.mark.parametrize(("field", "value", "says"), [
    ("size", "99999999999", "outside 16..100000 px"),
    ("size", "8", "outside 16..100000 px"),
    ("size", "9" * 5000, "outside 16..100000 px"),
    ("model_size", "99999999", "outside 128..1024 px"),
    ("blur_radius", "1e999", "(0, 1000]"),
    ("score_threshold", "7", "[0, 1]"),
    ("scale", "200%", "outside 10%..100%"),
    ("shadow_opacity", "101", "[0, 100]"),
    ("position", "120%", "outside 0%..100%"),
    ("crop_margin", "9999px", "maximum of 500px"),
])
def test_numbers_out_of_range_say_the_range(offline_services, sample_photo_bytes, field, value, says):
    _, mat = offline_services
    data = {field: value, **({"shadow": "drop"} if field == "shadow_opacity" else {})}
    error = assert_api_error(_matte(mat.url, sample_photo_bytes, data), 400, "invalid_parameter")
    assert error["field"] == field and says in error["message"], error
    assert "neither" not in error["message"]


def test_no_message_names_a_library(offline_services, sample_photo_bytes):
    """Broken uploads of every kind, to both services: the messages say what to send."""
    seg, mat = offline_services
    text = b"just some text, honestly\n" * 20
    answers = [
        _matte(mat.url, text),
        _matte(mat.url, sample_photo_bytes, files={"bg_image": ("b.png", text)}),
        _matte(mat.url, sample_photo_bytes, files={"trimap": ("t.png", b"GIF89a" + b"\0" * 30)}),
        _matte(mat.url, sample_photo_bytes, {"bg_color": "rgb(999,0,0)"}),
        requests.post(seg.url + "/v1/mask", files={"image": ("a.png", text)}, timeout=60),
        requests.post(mat.url + "/v1.0/removebg", files={"image_file": ("a.png", text)}, timeout=60),
    ]
    for resp in answers:
        assert resp.status_code == 400, resp.text
        assert not LIBRARIES.search(resp.text), resp.text


# --- remove.bg's endpoint: its envelope, its fields ------------------------------------------


def _removebg(url: str, photo: bytes, data: dict | None = None, files: dict | None = None,
              params: dict | None = None) -> requests.Response:
    return requests.post(url + "/v1.0/removebg", files={"image_file": ("a.png", photo), **(files or {})},
                         data=data or {}, params=params, timeout=120)


@pytest.mark.parametrize(("how", "name", "suggestion"), [
    ("form", "bgcolor", "bg_color"),
    ("form", "image_b64", "image_file_b64"),
    ("form", "shadowtype", "shadow_type"),
    ("form", "shadow_opacty", "shadow_opacity"),
    ("query", "croped", "crop"),
    ("file", "bg_image", "bg_image_file"),
    ("file", "image", "image_file"),
])
def test_removebg_unknown_fields_in_its_envelope(offline_services, sample_photo_bytes, how, name,
                                                 suggestion):
    _, mat = offline_services
    if how == "file" and name == "image":
        resp = requests.post(mat.url + "/v1.0/removebg", files={name: ("a.png", sample_photo_bytes)},
                             timeout=60)
    elif how == "file":
        resp = _removebg(mat.url, sample_photo_bytes, files={name: ("b.png", sample_photo_bytes)})
    elif how == "query":
        resp = _removebg(mat.url, sample_photo_bytes, params={name: "true"})
    else:
        resp = _removebg(mat.url, sample_photo_bytes, {name: "red"})
    assert resp.status_code == 400, resp.text
    (error,) = resp.json()["errors"]
    assert error["code"] == "unknown_field" and error["source"] == {"parameter": name}
    assert f"did you mean {suggestion}?" in error["title"]


def test_removebg_documented_fields_are_all_known(offline_services, sample_photo_bytes):
    """Every field remove.bg documents is read or refused with a reason, never 'unknown';
    the two it does not implement say so."""
    for name in REMOVEBG_FIELDS:
        assert closest_name(name, REMOVEBG_FIELDS) == name
    _, mat = offline_services
    for name in ("image_url", "bg_image_url"):
        resp = _removebg(mat.url, sample_photo_bytes, {name: "https://example.com/a.jpg"})
        (error,) = resp.json()["errors"]
        assert resp.status_code == 400 and error["code"] == "invalid_parameter"
        assert "not supported by this server" in error["title"] and "upload the file" in error["title"]
    empty = _removebg(mat.url, sample_photo_bytes, files={"bg_image_file": ("b.png", b"")})
    assert empty.status_code == 400 and empty.json()["errors"][0]["code"] == "empty_body"
    big = _removebg(mat.url, sample_photo_bytes, {"scale": "5%"})
    assert "outside 10%..100%" in big.json()["errors"][0]["title"]


@pytest.mark.parametrize(("path", "file_field"), [("/v1/matte", "image"), ("/v1.0/removebg", "image_file")])
def test_a_form_part_without_a_name_is_a_400_not_a_500(offline_services, sample_photo_bytes, path,
                                                        file_field):
    """A multipart part whose Content-Disposition has no name (werkzeug keys it None; the
    OpenAPI fuzzer sent one): an unknown-field answer that says so, not a traceback."""
    _, mat = offline_services
    part = f'--XX\r\nContent-Disposition: form-data; name="{file_field}"; filename="a.png"\r\n'
    body = (b"--XX\r\nContent-Disposition: form-data\r\n\r\n[null]\r\n" + part.encode()
            + b"Content-Type: image/png\r\n\r\n" + sample_photo_bytes + b"\r\n--XX--\r\n")
    response = requests.post(mat.url + path, data=body, timeout=60,
                             headers={"Content-Type": "multipart/form-data; boundary=XX"})
    assert response.status_code == 400, response.text[:300]
    assert "has no name" in response.text and "unknown_field" in response.text
