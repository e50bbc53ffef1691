"""People first: the sample portrait through both real services with the offline defaults
(``auto``: MODNet, refined by closed-form matting with the prior), as ``make demo`` runs it."""

from __future__ import annotations

import io

import numpy as np
import pytest
import requests
from PIL import Image

from render import backgrounds
from service_common.config import REPO_ROOT

FLAG = (slice(0, 200), slice(0, 80))  # the US flag left of her shoulder
FLAG_EDGE = (slice(0, 512), slice(0, 10))  # the flag's strip along the left edge
SHUTTLE = (slice(0, 250), slice(360, 470))
FACE = (slice(100, 150), slice(190, 250))
HELMET = (slice(380, 480), slice(320, 460))


def _png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, format="PNG")
    return buf.getvalue()


def _matte(url: str, image: bytes, **fields: str) -> requests.Response:
    return requests.post(url + "/v1/matte", files={"image": ("a.png", image, "image/png")},
                         data=fields, timeout=120)


@pytest.mark.parametrize("mirrored", [False, True])
def test_flag_and_shuttle_are_background_face_and_helmet_foreground(offline_services, sample_photo,
                                                                    mirrored):
    _, mat = offline_services
    photo = sample_photo[:, ::-1] if mirrored else sample_photo
    resp = _matte(mat.url, _png(photo), channels="alpha")
    assert resp.status_code == 200, resp.text
    assert resp.headers["X-Segmentation-Backend"] == "modnet"
    alpha = np.asarray(Image.open(io.BytesIO(resp.content))).astype(np.float64) / 255.0
    if mirrored:
        alpha = alpha[:, ::-1]
    assert alpha[FLAG].max() < 0.05 and alpha[FLAG_EDGE].max() < 0.05
    assert alpha[SHUTTLE].max() < 0.05
    assert alpha[FACE].min() > 0.95 and alpha[HELMET].min() > 0.95  # no see-through helmet
    left, width = int(resp.headers["X-Foreground-Left"]), int(resp.headers["X-Foreground-Width"])
    if mirrored:
        left = 512 - (left + width)
    assert left >= 10  # the subject box excludes the flag's strip (her arm comes to x = 11)


def test_demo_composite_has_no_trace_of_the_flag(offline_services, sample_photo, sample_photo_bytes):
    _, mat = offline_services
    background = (REPO_ROOT / "samples" / "hubble_deep_field.jpg").read_bytes()
    resp = requests.post(mat.url + "/v1/matte", timeout=120, data={"format": "png"}, files={
        "image": ("astronaut.png", sample_photo_bytes, "image/png"),
        "bg_image": ("bg.jpg", background, "image/jpeg")})
    assert resp.status_code == 200, resp.text
    out = np.asarray(Image.open(io.BytesIO(resp.content))).astype(int)
    hubble = np.asarray(Image.open(io.BytesIO(background)).convert("RGB"))
    bg = backgrounds.cover_resize(hubble, 512, 512).astype(int)
    flag_red = sample_photo[FLAG].astype(int)
    # the flag's pixels show the new (dark, starry) background, not the flag's red and white
    assert np.abs(out[FLAG] - bg[FLAG]).mean() < 8
    assert np.abs(out[FLAG] - flag_red).mean() > 60
    assert np.abs(out[FACE] - sample_photo[FACE].astype(int)).max() <= 1


def test_poisson_over_a_dark_background_keeps_the_face(offline_services, sample_photo,
                                                        sample_photo_bytes):
    """blend=poisson over the Hubble Deep Field: the face keeps its mean colour (the classic
    whole-subject clone turned it nearly black: -167, -145, -135 levels)."""
    _, mat = offline_services
    background = (REPO_ROOT / "samples" / "hubble_deep_field.jpg").read_bytes()
    resp = requests.post(mat.url + "/v1/matte", timeout=120, data={"format": "png", "blend": "poisson"},
                         files={"image": ("astronaut.png", sample_photo_bytes, "image/png"),
                                "bg_image": ("bg.jpg", background, "image/jpeg")})
    assert resp.status_code == 200, resp.text
    out = np.asarray(Image.open(io.BytesIO(resp.content))).astype(np.float64)
    face_now = out[FACE].reshape(-1, 3).mean(axis=0)
    face_then = sample_photo[FACE].reshape(-1, 3).astype(np.float64).mean(axis=0)
    assert np.abs(face_now - face_then).max() < 3, (face_now, face_then)
