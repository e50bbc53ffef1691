"""Limits: decompression bombs are refused before any pixel is allocated (the gunicorn
worker's memory, read from /proc, does not move), and the limits are configurable.

The services under test run with ``BACKDROP_MAX_UPLOAD_MB=1`` and
``BACKDROP_MAX_PIXELS=2000000`` (see conftest.py); the matrix checks the 413 answers.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from apierrors import assert_api_error
from robust_inputs import (
    MAX_PIXELS,
    MAX_UPLOAD_BYTES,
    compressed_bomb_png,
    jpeg_header_only,
    png_header_only,
    trimap_png,
)

from bench.load import proc_memory_kb, worker_pids
from service_common.config import Settings
from service_common.serve import services_from_settings

#: A refused bomb may cost the worker at most this much memory (its peak RSS), kB. Decoding
#: any of the bombs below would take 100 MB to 30 GB.
MAX_GROWTH_KB = 20 * 1024

BOMBS = {
    "png-header-100000x100000": png_header_only(100_000, 100_000),
    "jpeg-header-65000x65000": jpeg_header_only(65_000, 65_000),
    "png-compressed-10000x10000": compressed_bomb_png(10_000),  # valid, complete, 100 MP
}


@pytest.mark.parametrize("bomb", list(BOMBS))
@pytest.mark.parametrize("target", ["segmentation", "matting", "matting-trimap"])
def test_decompression_bomb_is_refused_without_allocating(stack, target, bomb):
    data = BOMBS[bomb]
    assert len(data) < MAX_UPLOAD_BYTES  # it passes the upload limit: the pixel limit must act
    service = stack.seg if target == "segmentation" else stack.mat
    (worker,) = worker_pids(service.process.pid)
    path = "/v1/trimap" if target == "segmentation" else "/v1/matte"
    # a first request imports what a worker imports lazily (the segmentation worker loads
    # torchvision for the COCO class names: ~700 MB), so that only the bomb is measured
    requests.post(service.url + path, files={"image": ("t.txt", b"text")}, timeout=60)
    before = proc_memory_kb(worker)
    if target != "matting-trimap":
        response = requests.post(service.url + path, files={"image": ("b.png", data)}, timeout=60)
    else:  # a bomb as the trimap of a normal image
        response = requests.post(service.url + "/v1/matte", timeout=60, files={
            "image": ("p.png", trimap_png(40, 30)), "trimap": ("b.png", data)})
    error = assert_api_error(response, 413, "image_too_large")
    assert error["width"] * error["height"] > MAX_PIXELS and error["max_pixels"] == MAX_PIXELS
    after = proc_memory_kb(worker)
    assert after["VmHWM"] - before["VmHWM"] < MAX_GROWTH_KB, (before, after)
    assert after["VmRSS"] - before["VmRSS"] < MAX_GROWTH_KB, (before, after)
    assert worker_pids(service.process.pid) == [worker]


def _cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")


def test_request_time_limit_reaches_gunicorn(stack):
    """``BACKDROP_REQUEST_TIMEOUT`` becomes gunicorn's worker ``--timeout`` (the longest a
    request may run before the worker is killed and replaced)."""
    settings = Settings.from_env({"BACKDROP_REQUEST_TIMEOUT": "17"})
    seg, mat = services_from_settings(settings)
    assert seg.timeout == mat.timeout == 17
    for service in (stack.seg, stack.mat):  # and the launcher passes it on the command line
        args = _cmdline(service.process.pid)
        assert args[args.index("--timeout") + 1] == str(service.timeout)


def test_body_and_pixel_limits_come_from_the_environment(stack):
    """The gunicorn apps read ``BACKDROP_MAX_UPLOAD_MB`` / ``BACKDROP_MAX_PIXELS`` (the
    defaults, 50 MB and 40 MP, would accept both requests below)."""
    just_over = b"\0" * (MAX_UPLOAD_BYTES + 1024)
    response = requests.post(stack.mat.url + "/v1/matte", data=just_over,
                             headers={"Content-Type": "image/png"}, timeout=60)
    assert_api_error(response, 413, "payload_too_large")
    wide = png_header_only(MAX_PIXELS // 1000 + 1, 1000)
    response = requests.post(stack.seg.url + "/v1/trimap", files={"image": ("w.png", wide)}, timeout=60)
    assert assert_api_error(response, 413, "image_too_large")["max_pixels"] == MAX_PIXELS
