"""The input-validation matrix of both services, through a real gunicorn.

Every bad input is answered with its documented 4xx JSON error (never a 500, never a
traceback or a server path in the body), every unusual-but-valid image works and keeps its
(EXIF-rotated) size, and the service is still healthy after each case: ``/healthz`` answers
200 and the gunicorn worker is the same process (no crash and silent restart); after each
matting error a valid request still works, and after the whole matrix a valid request works
on both services (each segmentation check costs a model run, so it is done once).

Endpoints: ``trimap`` = segmentation ``POST /v1/trimap``; ``matte`` = matting
``POST /v1/matte``; ``removebg`` = matting ``POST /v1.0/removebg`` (remove.bg's envelope).
Matting cases about decoding or options send a trimap, so that they do not spend a
segmentation model run; the cases without one go through the segmentation service.

1 x 1 images: the segmentation service runs its model and finds nothing salient in one
pixel, so 422 ``no_subject`` (the matting service passes it on; remove.bg's envelope says
``unknown_foreground``); with a given trimap the matting service has nothing to find and
answers the 1 x 1 result. Zero-sized images cannot be opened: 400 ``invalid_image``.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import requests
from apierrors import assert_api_error, assert_no_leak
from PIL import Image
from robust_checks import check_removebg_error
from robust_inputs import (
    MAX_UPLOAD_BYTES,
    animated_gif,
    cmyk_jpeg,
    encode,
    exif_rotated_jpeg,
    grey_png,
    palette_png_with_transparency,
    photo_png,
    png16,
    png_header_only,
    rgba_png,
    trimap_png,
    truncated,
)

from bench.load import worker_pids

W, H = 72, 56  # the default test photo, px
PATHS = {"trimap": "/v1/trimap", "matte": "/v1/matte", "removebg": "/v1.0/removebg"}
IMAGE_FIELD = {"trimap": "image", "matte": "image", "removebg": "image_file"}


@dataclass(frozen=True)
class Case:
    """One request and the answer it must get.

    Attributes:
        endpoint: ``trimap``, ``matte`` or ``removebg``.
        image: the upload's bytes (``None``: no image field at all).
        status: the expected HTTP status.
        code: the expected error code (``None`` for 200).
        size: for 200: the result's expected ``(width, height)``.
        trimap: also send this trimap file (``matte`` only).
        data: form fields.
        files: extra files (name -> bytes).
        raw: send ``image`` as the raw body with this content type instead of multipart.
        chunked: send the raw body with ``Transfer-Encoding: chunked`` (no Content-Length).
        check: for 200: an extra check on the decoded result (``H x W [x C]`` uint8).
    """

    endpoint: str
    image: bytes | None
    status: int
    code: str | None = None
    size: tuple[int, int] | None = None
    trimap: bytes | None = None
    data: dict[str, str] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    raw: str | None = None
    chunked: bool = False
    check: Callable[[np.ndarray], None] | None = None


def _subject_on_the_left(result: np.ndarray) -> None:
    """The first GIF frame has the disk in the left half: the subject must be there."""
    weight = result[..., 3] if result.ndim == 3 and result.shape[2] == 4 else result
    weight = weight.astype(float)
    half = weight.shape[1] // 2
    assert weight[:, :half].sum() > 4 * weight[:, half:].sum()


def _full_trimap(width: int, height: int) -> bytes:
    return encode(np.full((height, width), 255, np.uint8))


PHOTO = photo_png(W, H)
JPEG = encode(np.asarray(Image.open(io.BytesIO(PHOTO))), "JPEG", quality=90)
TEXT = b"Dear server, I am a perfectly normal photo. Regards.\n" * 10
BOMB = png_header_only(100_000, 100_000)
ZERO = png_header_only(0, 0)
TINY = encode(np.array([[[200, 30, 30]]], np.uint8))  # 1 x 1
OVERSIZED = np.random.default_rng(0).integers(0, 256, MAX_UPLOAD_BYTES + 200_000, np.uint8).tobytes()
TOO_MANY_PIXELS = encode(np.zeros((1500, 1500), np.uint8))  # 2.25 MP > MAX_PIXELS, 8 kB
PPM = encode(np.zeros((8, 8, 3), np.uint8), "PPM")
TRI = trimap_png(W, H)

KINDS: dict[str, tuple[bytes, tuple[int, int]]] = {
    "cmyk-jpeg": (cmyk_jpeg(W, H), (W, H)),
    "16-bit-png": (png16(W, H), (W, H)),
    "palette-png-transparency": (palette_png_with_transparency(W, H), (W, H)),
    "greyscale": (grey_png(W, H), (W, H)),
    "rgba": (rgba_png(W, H), (W, H)),
    "exif-rotated-jpeg": (exif_rotated_jpeg(W, H), (H, W)),
    "webp": (encode(np.asarray(Image.open(io.BytesIO(PHOTO))), "WEBP"), (W, H)),
}

CASES: dict[str, Case] = {
    # ---- segmentation: bad uploads
    "trimap-empty-body": Case("trimap", None, 400, "empty_body"),
    "trimap-empty-raw-body": Case("trimap", b"", 400, "empty_body", raw="image/png"),
    "trimap-missing-field": Case("trimap", None, 400, "unknown_field", files={"photo": PHOTO}),
    "trimap-text-as-image": Case("trimap", TEXT, 400, "invalid_image"),
    "trimap-truncated-png": Case("trimap", truncated(PHOTO), 400, "invalid_image"),
    "trimap-truncated-jpeg": Case("trimap", truncated(JPEG), 400, "invalid_image"),
    "trimap-zero-sized": Case("trimap", ZERO, 400, "invalid_image"),
    "trimap-1x1-no-subject": Case("trimap", TINY, 422, "no_subject"),
    "trimap-decompression-bomb": Case("trimap", BOMB, 413, "image_too_large"),
    "trimap-too-many-pixels": Case("trimap", TOO_MANY_PIXELS, 413, "image_too_large"),
    "trimap-body-over-limit": Case("trimap", OVERSIZED, 413, "payload_too_large"),
    "trimap-raw-body-over-limit": Case("trimap", OVERSIZED, 413, "payload_too_large", raw="image/jpeg"),
    "trimap-chunked-body-over-limit": Case("trimap", OVERSIZED, 413, "payload_too_large",
                                           raw="image/jpeg", chunked=True),
    "trimap-ppm": Case("trimap", PPM, 415, "unsupported_format"),
    # ---- segmentation: bad parameters
    "trimap-unknown-class": Case("trimap", PHOTO, 400, "invalid_parameter", data={"classes": "unicorn"}),
    "trimap-score-above-1": Case("trimap", PHOTO, 400, "invalid_parameter", data={"score_threshold": "2"}),
    "trimap-score-nan": Case("trimap", PHOTO, 400, "invalid_parameter", data={"score_threshold": "nan"}),
    "trimap-unknown-instances": Case("trimap", PHOTO, 400, "invalid_parameter", data={"instances": "some"}),
    "trimap-unknown-backend": Case("trimap", PHOTO, 400, "invalid_parameter", data={"backend": "magic"}),
    "trimap-negative-band": Case("trimap", PHOTO, 400, "invalid_parameter", data={"band": "-1"}),
    "trimap-huge-band": Case("trimap", PHOTO, 400, "invalid_parameter", data={"band": "1" * 5000}),
    # ---- segmentation: unusual but valid images
    **{f"trimap-{kind}": Case("trimap", data, 200, size=size) for kind, (data, size) in KINDS.items()},
    "trimap-animated-gif-first-frame": Case("trimap", animated_gif(96, 48), 200, size=(96, 48),
                                            check=lambda t: _subject_on_the_left(t)),
    # ---- matting: bad uploads
    "matte-empty-body": Case("matte", None, 400, "empty_body"),
    "matte-missing-field": Case("matte", None, 400, "missing_field", data={"bg_color": "red"}),
    "matte-text-as-image": Case("matte", TEXT, 400, "invalid_image", trimap=TRI),
    "matte-truncated-png": Case("matte", truncated(PHOTO), 400, "invalid_image", trimap=TRI),
    "matte-truncated-jpeg": Case("matte", truncated(JPEG), 400, "invalid_image", trimap=TRI),
    "matte-zero-sized": Case("matte", ZERO, 400, "invalid_image"),
    "matte-1x1-no-subject": Case("matte", TINY, 422, "no_subject"),
    "matte-1x1-given-trimap": Case("matte", TINY, 200, size=(1, 1), trimap=_full_trimap(1, 1)),
    "matte-decompression-bomb": Case("matte", BOMB, 413, "image_too_large"),
    "matte-bomb-as-background": Case("matte", PHOTO, 413, "image_too_large", trimap=TRI,
                                     files={"bg_image": BOMB}),
    "matte-bomb-as-trimap": Case("matte", PHOTO, 413, "image_too_large", trimap=BOMB),
    "matte-body-over-limit": Case("matte", OVERSIZED, 413, "payload_too_large"),
    "matte-raw-body-over-limit": Case("matte", OVERSIZED, 413, "payload_too_large", raw="image/png"),
    "matte-chunked-body-over-limit": Case("matte", OVERSIZED, 413, "payload_too_large",
                                          raw="image/png", chunked=True),
    "matte-garbage-background": Case("matte", PHOTO, 400, "invalid_image", trimap=TRI,
                                     files={"bg_image": TEXT}),
    # ---- matting: given trimaps
    "matte-trimap-wrong-size": Case("matte", PHOTO, 400, "invalid_trimap", trimap=trimap_png(W // 2, H)),
    "matte-trimap-without-foreground": Case("matte", PHOTO, 400, "invalid_trimap",
                                            trimap=trimap_png(W, H, foreground=False)),
    "matte-trimap-not-an-image": Case("matte", PHOTO, 400, "invalid_image", trimap=TEXT),
    # ---- matting: bad parameters
    **{f"matte-bad-{name}": Case("matte", PHOTO, 400, "invalid_parameter", trimap=TRI, data=data)
       for name, data in {
           "colour": {"bg_color": "notacolour"},
           "colour-hex": {"bg_color": "#12345"},
           "negative-size": {"size": "-5"},
           "size-below-minimum": {"size": "10"},
           "size-not-a-number": {"size": "big"},
           "mode": {"bg_mode": "sepia"},
           "image-mode-without-image": {"bg_mode": "image"},
           "channels": {"channels": "cmyk"},
           "format": {"format": "gif"},
           "crop": {"crop": "maybe"},
           "crop-margin": {"crop": "true", "crop_margin": "abc"},
           "crop-margin-too-large": {"crop": "true", "crop_margin": "600px"},
           "crop-margin-five-values": {"crop": "true", "crop_margin": "1 2 3 4 5"},
           "blur-radius": {"bg_mode": "blur", "blur_radius": "-1"},
           "score-threshold": {"score_threshold": "2"},
           "score-threshold-nan": {"score_threshold": "nan"},
           "instances": {"instances": "some"},
           "class-name-syntax": {"classes": "person; DROP TABLE"},
           "blend": {"blend": "magic"},
           "poisson-without-background": {"blend": "poisson"},
           "segmentation-backend": {"backend": "magic"},
       }.items()},
    # the segmentation service knows the class names: an unknown one comes back as its 400
    "matte-unknown-class": Case("matte", PHOTO, 400, "invalid_parameter", data={"classes": "unicorn"}),
    "matte-segmentation-backend-not-loaded": Case("matte", PHOTO, 400, "invalid_parameter",
                                                  data={"backend": "maskrcnn"}),
    # a size cap above the image's size never upscales (an upscale would be an allocation bomb)
    "matte-huge-size-does-not-upscale": Case("matte", PHOTO, 200, size=(W, H), trimap=TRI,
                                             data={"size": "100000"}),
    # ---- matting: unusual but valid images (decoded the same way as the segmentation's)
    **{f"matte-{kind}": Case("matte", data, 200, size=size, trimap=trimap_png(*size))
       for kind, (data, size) in KINDS.items()},
    "matte-chunked-raw-body-exif-rotated": Case("matte", KINDS["exif-rotated-jpeg"][0], 200,
                                                size=(H, W), raw="image/jpeg", chunked=True),
    "matte-animated-gif-first-frame": Case("matte", animated_gif(96, 48), 200, size=(96, 48),
                                           data={"format": "png"}, check=_subject_on_the_left),
    # ---- remove.bg envelope
    "removebg-empty-body": Case("removebg", None, 400, "missing_field"),
    "removebg-text-as-image": Case("removebg", TEXT, 400, "invalid_image"),
    "removebg-decompression-bomb": Case("removebg", BOMB, 400, "image_too_large"),
    "removebg-body-over-limit": Case("removebg", OVERSIZED, 413, "payload_too_large"),
    "removebg-1x1-no-subject": Case("removebg", TINY, 400, "unknown_foreground"),
    "removebg-bad-size": Case("removebg", PHOTO, 400, "invalid_parameter", data={"size": "-5"}),
    "removebg-bad-colour": Case("removebg", PHOTO, 400, "invalid_parameter", data={"bg_color": "nope"}),
}


def _send(url: str, case: Case, request_id: str) -> requests.Response:
    headers = {"X-Request-Id": request_id}
    kwargs: dict[str, Any] = {"headers": headers, "data": dict(case.data), "timeout": 60}
    if case.raw is not None:
        headers["Content-Type"] = case.raw
        raw: bytes = case.image or b""
        body: Any = raw
        if case.chunked:  # a generator: requests streams it in chunks, no Content-Length
            body = (raw[i:i + 65536] for i in range(0, len(raw), 65536))
        return requests.post(url, params=case.data, data=body, headers=headers, timeout=60)
    files = {}
    if case.image is not None:
        files[IMAGE_FIELD[case.endpoint]] = ("upload.bin", case.image, "application/octet-stream")
    if case.trimap is not None:
        files["trimap"] = ("trimap.png", case.trimap, "image/png")
    for name, data in case.files.items():
        files[name] = (f"{name}.bin", data, "application/octet-stream")
    if files:
        kwargs["files"] = files
    return requests.post(url, **kwargs)


def _decoded(response: requests.Response) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(response.content)))


def _still_healthy(stack, endpoint: str, workers_before: list[int], valid_request: bool) -> None:
    """``/healthz`` 200, the same worker process, and (``valid_request``) a valid request
    still works (:func:`test_still_serving_after_the_matrix` checks that for the
    segmentation service once, as each of its checks costs a model run)."""
    service = stack.seg if endpoint == "trimap" else stack.mat
    assert requests.get(service.url + "/healthz", timeout=10).json() == {"status": "ok"}
    assert worker_pids(service.process.pid) == workers_before, "a worker died and was replaced"
    if not valid_request:
        return
    if endpoint == "trimap":
        ok = requests.post(service.url + "/v1/trimap", files={"image": ("p.png", PHOTO)}, timeout=60)
    else:  # a given trimap: the matting worker alone is checked, without a model run
        ok = requests.post(service.url + "/v1/matte",
                           files={"image": ("p.png", PHOTO), "trimap": ("t.png", TRI)}, timeout=60)
    assert ok.status_code == 200, ok.text[:300]
    assert _decoded(ok).shape[:2] == (H, W)


@pytest.mark.parametrize("name", list(CASES))
def test_input_matrix(stack, name):
    case = CASES[name]
    service = stack.seg if case.endpoint == "trimap" else stack.mat
    workers = worker_pids(service.process.pid)
    assert workers, "no gunicorn worker found"
    request_id = f"matrix-{name}"[:64]
    response = _send(service.url + PATHS[case.endpoint], case, request_id)

    assert response.headers.get("X-Request-Id") == request_id
    if case.status == 200:
        assert response.status_code == 200, response.text[:300]
        result = _decoded(response)
        assert (result.shape[1], result.shape[0]) == case.size
        if case.endpoint != "trimap":
            assert (response.headers["X-Width"], response.headers["X-Height"]) == tuple(
                str(v) for v in case.size)
        else:
            assert set(np.unique(result)) <= {0, 128, 255}
        if case.check is not None:
            case.check(result)
    elif case.endpoint == "removebg":
        check_removebg_error(response, case.status, case.code)
    else:
        error = assert_api_error(response, case.status, case.code)
        if case.code == "invalid_parameter" and case.data:
            assert error.get("field") in case.data, error
    # a case answered 200 was itself a valid request that worked
    _still_healthy(stack, case.endpoint, workers,
                   valid_request=case.status != 200 and case.endpoint != "trimap")


def test_still_serving_after_the_matrix(stack):
    """After every case above, both services still answer valid requests, through the
    whole pipeline (segmentation model, then matting)."""
    for service in (stack.seg, stack.mat):
        workers = worker_pids(service.process.pid)
        _still_healthy(stack, "trimap" if service is stack.seg else "matte", workers, True)
    full = requests.post(stack.mat.url + "/v1/matte", files={"image": ("p.png", PHOTO)},
                         data={"format": "png"}, timeout=60)
    assert full.status_code == 200, full.text[:300]
    assert full.headers["X-Segmentation-Backend"] == "u2netp"
    assert _decoded(full).shape == (H, W, 4)


def test_the_matrix_is_large_enough():
    """The issue asks for at least 25 cases; count the distinct kinds of input too."""
    assert len(CASES) >= 25
    assert {c.endpoint for c in CASES.values()} == set(PATHS)
    assert sum(c.status == 200 for c in CASES.values()) >= 10


def _thin_trimap(width: int, height: int) -> bytes:
    """Background, unknown and foreground thirds along the long side."""
    trimap = np.zeros((max(width, height),), np.uint8)
    third = len(trimap) // 3
    trimap[third:2 * third] = 128
    trimap[2 * third:] = 255
    return encode(np.broadcast_to(trimap[:, None] if height > width else trimap[None, :],
                                  (height, width)).copy())


#: Bugs this matrix found (each was a 500): kept as regression cases. The ones still open
#: are in OPEN_BUGS and marked xfail(strict=True): remove a name there once it is fixed.
KNOWN_BUGS: dict[str, tuple[Case, str]] = {
    "matte-size-with-5000-digits": (
        Case("matte", PHOTO, 400, "invalid_parameter", trimap=TRI, data={"size": "9" * 5000}),
        "matting_api/options.py parse_size: int() of more than 4300 digits raises ValueError",
    ),
    "matte-size-superscript-digit": (
        Case("matte", PHOTO, 400, "invalid_parameter", trimap=TRI, data={"size": "\u00b2"}),
        "matting_api/options.py parse_size: str.isdigit() accepts '\u00b2', int() does not",
    ),
    "matte-colour-out-of-range": (
        Case("matte", PHOTO, 400, "invalid_parameter", trimap=TRI, data={"bg_color": "rgb(999,0,0)"}),
        "matting_api/options.py parse_color: Pillow's getrgb returns 999; not range-checked",
    ),
    "removebg-colour-out-of-range": (
        Case("removebg", PHOTO, 400, "invalid_parameter", data={"bg_color": "hsv(0,100%,400%)"}),
        "matting_api/options.py parse_color: Pillow's getrgb returns 1020; not range-checked",
    ),
    "matte-2px-wide-image": (
        Case("matte", photo_png(2, 48), 200, size=(2, 48), trimap=_thin_trimap(2, 48)),
        "matting_api/backends/closed_form.py: no 3x3 Laplacian window fits an image under 3 px "
        "wide, the conjugate gradient does not converge (ValueError -> 500)",
    ),
}


OPEN_BUGS: set[str] = set()


@pytest.mark.parametrize(
    "name",
    [pytest.param(name, marks=[pytest.mark.xfail(strict=True, reason=reason)] if name in OPEN_BUGS else [])
     for name, (_, reason) in KNOWN_BUGS.items()],
)
def test_known_bugs_of_other_modules(stack, name):
    """Fixed bugs answer their documented status; open ones (OPEN_BUGS) still answer 500,
    and the service survives them."""
    case = KNOWN_BUGS[name][0]
    workers = worker_pids(stack.mat.process.pid)
    response = _send(stack.mat.url + PATHS[case.endpoint], case, f"bug-{name}"[:64])
    assert_no_leak(response)
    _still_healthy(stack, case.endpoint, workers, valid_request=True)
    if case.status == 200:
        assert response.status_code == 200, response.text[:300]
        assert _decoded(response).shape[1::-1] == case.size
    elif case.endpoint == "removebg":
        check_removebg_error(response, case.status, case.code)
    else:
        assert_api_error(response, case.status, case.code)
