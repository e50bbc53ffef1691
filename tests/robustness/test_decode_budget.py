"""The decode budget on the real services: every file field, every format's structure.

* a TIFF of more strips than :data:`service_common.images.MAX_TIFF_BLOCKS` (one row per strip,
  the issue's attack scaled to the test services' 1 MB upload limit) is a 422
  ``image_too_complex`` naming the limit, as ``image``, ``bg_image``, ``trimap``, ``hints``,
  ``prior`` and on the segmentation service, and the worker's peak memory does not move;
* L*a*b* and float TIFFs are decoded (as image, trimap and hints), never a 500;
* an empty file in an optional field is a 400 ``empty_body`` naming the field, not ignored
  (a nameless empty part, what a browser sends for a file input left unset, still counts as
  absent).
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import requests
from apierrors import assert_api_error
from PIL import Image
from robust_checks import check_removebg_error
from robust_inputs import MAX_UPLOAD_BYTES, photo_png, trimap_png

from bench.load import proc_memory_kb, worker_pids
from service_common.images import MAX_TIFF_BLOCKS
from tests.common.test_images import one_column_tiff

W, H = 64, 48
#: A refused file may cost the worker at most this much memory (its peak RSS), kB.
MAX_GROWTH_KB = 20 * 1024
STRIPS = MAX_TIFF_BLOCKS + 4_464  # 70,000 rows of one pixel: 0.6 MB, under the upload limit


@pytest.fixture(scope="module")
def strips_tiff() -> bytes:
    data = one_column_tiff(STRIPS)
    assert len(data) < MAX_UPLOAD_BYTES
    return data


def _tiff(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="TIFF")
    return buf.getvalue()


def _matte(stack, **files: tuple[str, bytes]) -> requests.Response:
    parts = {"image": ("p.png", photo_png(W, H))}
    parts.update(files)
    data = {"bg_mode": "image"} if "bg_image" in files else {}
    return requests.post(stack.mat.url + "/v1/matte", files=parts, data=data, timeout=120)


@pytest.mark.parametrize("field", ["image", "bg_image", "trimap", "hints", "prior", "segmentation"])
def test_a_tiff_of_too_many_strips_is_refused_in_every_field(stack, strips_tiff, field):
    service = stack.seg if field == "segmentation" else stack.mat
    (worker,) = worker_pids(service.process.pid)
    requests.post(service.url + ("/v1/trimap" if field == "segmentation" else "/v1/matte"),
                  files={"image": ("t.txt", b"text")}, timeout=60)  # lazy imports before measuring
    before = proc_memory_kb(worker)
    if field == "segmentation":
        response = requests.post(stack.seg.url + "/v1/mask", files={"image": ("s.tif", strips_tiff)},
                                 timeout=60)
    else:
        response = _matte(stack, **{field: ("s.tif", strips_tiff)})
    error = assert_api_error(response, 422, "image_too_complex")
    assert error["blocks"] == STRIPS and error["max_blocks"] == MAX_TIFF_BLOCKS == error["limit"]
    assert f"{MAX_TIFF_BLOCKS:,}" in error["message"] and "strips" in error["message"]
    after = proc_memory_kb(worker)
    assert after["VmHWM"] - before["VmHWM"] < MAX_GROWTH_KB, (before, after)
    assert worker_pids(service.process.pid) == [worker]


def _lab(values: np.ndarray) -> Image.Image:
    """An ``H x W x 3`` uint8 array as a LAB picture (L 0..255, a and b offset by 128)."""
    return Image.frombytes("LAB", (values.shape[1], values.shape[0]), values.tobytes())


def test_lab_tiffs_work_as_image_trimap_and_hints(stack):
    trimap = np.asarray(Image.open(io.BytesIO(trimap_png(W, H))))
    neutral = np.full((H, W, 3), 128, np.uint8)
    lab_trimap = neutral.copy()
    lab_trimap[..., 0] = trimap
    response = _matte(stack, trimap=("t.tif", _tiff(_lab(lab_trimap))))
    assert response.status_code == 200, response.text[:300]
    assert response.headers["X-Segmentation-Backend"] == "given-trimap"
    strokes = neutral.copy()  # mid-grey: no stroke, except a keep stroke in the middle
    strokes[H // 2 - 2:H // 2 + 2, W // 2 - 2:W // 2 + 2, 0] = 255
    response = _matte(stack, trimap=("t.png", trimap_png(W, H)), hints=("h.tif", _tiff(_lab(strokes))))
    assert response.status_code == 200, response.text[:300]
    photo = np.asarray(Image.open(io.BytesIO(photo_png(W, H))).convert("L"))
    lab_photo = neutral.copy()
    lab_photo[..., 0] = photo
    response = requests.post(stack.mat.url + "/v1/matte", timeout=120, files={
        "image": ("p.tif", _tiff(_lab(lab_photo))), "trimap": ("t.png", trimap_png(W, H))})
    assert response.status_code == 200, response.text[:300]


def test_a_float_tiff_trimap_in_zero_one_is_read_as_a_trimap(stack):
    """0 / 0.5 / 1 floats: before, they decoded black and the trimap had no foreground."""
    trimap = np.asarray(Image.open(io.BytesIO(trimap_png(W, H)))).astype(np.float32) / 255.0
    response = _matte(stack, trimap=("t.tif", _tiff(Image.fromarray(trimap, mode="F"))))
    assert response.status_code == 200, response.text[:300]
    assert response.headers["X-Segmentation-Backend"] == "given-trimap"


@pytest.mark.parametrize("field", ["bg_image", "trimap", "hints", "prior"])
def test_an_empty_optional_file_is_a_400(stack, field):
    error = assert_api_error(_matte(stack, **{field: ("empty.png", b"")}), 400, "empty_body")
    assert error["field"] == field and field in error["message"]


def test_an_empty_bg_image_file_is_a_400_in_removebg(stack):
    response = requests.post(stack.mat.url + "/v1.0/removebg", timeout=120, files={
        "image_file": ("p.png", photo_png(W, H)), "bg_image_file": ("bg.png", b"")})
    error = check_removebg_error(response, 400, "empty_body")
    assert "bg_image_file" in error["title"]


def test_a_browsers_unset_file_input_is_absent(stack):
    """An HTML form sends a file input left unset as an empty part with ``filename=""``."""
    response = _matte(stack, trimap=("t.png", trimap_png(W, H)), hints=("", b""))
    assert response.status_code == 200, response.text[:300]
