"""``POST /v1/matte`` with a ``prior`` (the video client's carried matte) and
``foreground=fast``, through the real services."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
import requests
from apierrors import assert_api_error
from PIL import Image

from matting_api.backends.foreground import estimate_foreground_fast


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def _post(url: str, files: dict, **data) -> requests.Response:
    return requests.post(url + "/v1/matte", files=files, data=data, timeout=120)


def _prior_of(url: str, photo: bytes) -> np.ndarray:
    answer = _post(url, {"image": ("p.png", photo)}, channels="alpha", format="png")
    assert answer.status_code == 200, answer.text
    return np.asarray(Image.open(io.BytesIO(answer.content)))


def test_a_prior_skips_segmentation_and_is_refined(offline_services, sample_photo_bytes: bytes) -> None:
    url = offline_services[1].url
    alpha = _prior_of(url, sample_photo_bytes)
    shifted = np.roll(alpha, 3, axis=1)  # as if carried from the previous frame
    answer = _post(url, {"image": ("p.png", sample_photo_bytes), "prior": ("prior.png", _png(shifted))},
                   channels="alpha", format="png", foreground="fast")
    assert answer.status_code == 200, answer.text
    assert answer.headers["X-Segmentation-Backend"] == "given-prior"
    refined = np.asarray(Image.open(io.BytesIO(answer.content))).astype(float)
    # the refinement pulls the shifted edge back towards the photo's own edge
    assert np.abs(refined - alpha).mean() < np.abs(shifted.astype(float) - alpha).mean()


def test_a_bad_prior_is_refused_with_a_reason(offline_services, sample_photo_bytes: bytes) -> None:
    url = offline_services[1].url
    image = ("p.png", sample_photo_bytes)
    small = _post(url, {"image": image, "prior": ("prior.png", _png(np.zeros((10, 10), np.uint8)))})
    assert_api_error(small, 400, "invalid_parameter")
    assert "must be the same size" in small.json()["error"]["message"]
    empty = _post(url, {"image": image, "prior": ("prior.png", _png(np.zeros((512, 512), np.uint8)))})
    assert_api_error(empty, 422, "no_subject")
    both = _post(url, {"image": image, "prior": ("prior.png", _png(np.full((512, 512), 255, np.uint8))),
                       "trimap": ("t.png", _png(np.full((512, 512), 255, np.uint8)))})
    assert_api_error(both, 400, "invalid_parameter")
    unknown = _post(url, {"image": image}, foreground="quick")
    assert_api_error(unknown, 400, "invalid_parameter")


def test_fast_foreground_recovers_the_subject_colour() -> None:
    """A red subject half-transparent over blue: the photo is purple at the edge, the
    estimate close to red; where alpha is 0 or 1 it is the photo."""
    alpha = np.zeros((40, 60), np.float32)
    alpha[:, 20:40] = np.linspace(0, 1, 20)[None, :]
    alpha[:, 40:] = 1.0
    red, blue = np.array([1.0, 0, 0], np.float32), np.array([0, 0, 1.0], np.float32)
    image = alpha[..., None] * red + (1 - alpha[..., None]) * blue
    fg = estimate_foreground_fast(image, alpha, radii=(10, 3))
    edge = (alpha > 0.2) & (alpha < 0.8)
    assert np.abs(fg[edge] - red).mean() < 0.7 * np.abs(image[edge] - red).mean()
    hard = (alpha == 0) | (alpha == 1)
    np.testing.assert_array_equal(fg[hard], image[hard])


def test_fast_foreground_on_more_soft_pixels_than_opencv_maps_hold() -> None:
    """90,000 soft pixels (cv2.remap refuses maps of 32,767 px or more a side: a video frame
    of a wide translucent object hit it as a 500): the subject's colour, finite, and the
    sampling equal to plain bilinear interpolation in numpy."""
    from matting_api.backends import foreground

    alpha = np.full((300, 300), 0.5, np.float32)
    red, blue = np.array([1.0, 0, 0], np.float32), np.array([0, 0, 1.0], np.float32)
    image = np.broadcast_to(0.5 * red + 0.5 * blue, (300, 300, 3)).astype(np.float32)
    fg = estimate_foreground_fast(image, alpha)
    assert fg.shape == (300, 300, 3) and np.isfinite(fg).all()
    field = np.random.default_rng(1).random((75, 75, 3)).astype(np.float32)
    ys, xs = np.nonzero(alpha > 0)
    by_remap = foreground._sample(field, ys, xs, (300, 300))
    original = foreground._REMAP_MAX_SIDE
    try:
        foreground._REMAP_MAX_SIDE = 10  # the numpy path
        by_numpy = foreground._sample(field, ys, xs, (300, 300))
    finally:
        foreground._REMAP_MAX_SIDE = original
    np.testing.assert_allclose(by_remap, by_numpy, atol=1e-3)


@pytest.mark.parametrize("full", [(239, 300), (301, 120)])
def test_coarse_fields_are_sampled_where_opencv_resize_puts_them(full) -> None:
    """The soft pixels' samples of a coarser grid equal the grid resized to the image's size
    (cv2.resize, bilinear) at those pixels, each axis at its own scale: the image is not
    square and its sides not multiples of the grid's."""
    from matting_api.backends import foreground

    height, width = full
    small = ((height + 1) // 2, (width + 1) // 2)
    gy, gx = np.mgrid[0:small[0], 0:small[1]].astype(np.float32)
    field = np.dstack([gy / small[0], gx / small[1], 0.5 + 0.3 * np.sin(gx / 7.0) * np.cos(gy / 5.0)])
    ys, xs = np.nonzero(np.random.default_rng(2).random(full) < 0.2)
    resized = cv2.resize(field.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(foreground._sample(field.astype(np.float32), ys, xs, full),
                               resized[ys, xs], atol=2e-3)
