"""The real PyPI ``removebg`` client (``pip install removebg``, in the ``dev`` extra) against
``POST /v1.0/removebg`` of the running service, redirected as docs/removebg.md says.

The client hard-codes remove.bg's address in ``removebg.removebg.API_ENDPOINT``; the one
line of the docs replaces it, here with ``monkeypatch`` so that it is put back afterwards.
Each of the client's three calls is driven: a file, base64 text (``image_file_b64``) and an
image URL (which this service refuses: it fetches nothing).
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import requests
from PIL import Image

from service_common.config import REPO_ROOT

removebg = pytest.importorskip(
    "removebg", reason="the removebg client is not installed: pip install -e '.[dev]'")
import removebg.removebg as removebg_module  # noqa: E402  (after the skip)

FACE = (slice(120, 141), slice(210, 231))
CORNERS = [(slice(0, 12), slice(0, 12)), (slice(0, 12), slice(-12, None))]


@pytest.fixture
def client(offline_services, monkeypatch, tmp_path) -> removebg.RemoveBg:
    """A ``RemoveBg`` whose requests go to the matting service (its key is not checked)."""
    _, mat = offline_services
    monkeypatch.setattr(removebg_module, "API_ENDPOINT", mat.url + "/v1.0/removebg")
    return removebg.RemoveBg("any-key", str(tmp_path / "removebg-errors.log"))


def test_a_file_with_a_colour_at_the_regular_size(client, tmp_path, sample_photo_bytes):
    photo = tmp_path / "astronaut.png"
    photo.write_bytes(sample_photo_bytes)
    client.remove_background_from_img_file(str(photo), size="regular", bg_color="81d4fa")
    # the client writes its result next to the input, as <input>_no_bg.png
    result = Image.open(tmp_path / "astronaut.png_no_bg.png")
    # format=auto, as at remove.bg: no transparency left, so JPEG (whatever the client's name)
    assert (result.format, result.mode) == ("JPEG", "RGB")
    assert result.width * result.height <= 250_000  # regular: 0.25 megapixels at most
    assert result.width == result.height
    pixels = np.asarray(result).astype(int)
    colour = np.array([0x81, 0xD4, 0xFA])
    for corner in CORNERS:
        assert (np.abs(pixels[corner] - colour) <= 3).all()  # JPEG's rounding
    face = pixels[110:130, 205:225]  # the face, at the smaller scale
    assert (np.abs(face - colour).max(axis=2) > 40).all()


def test_base64_text_sent_as_image_file_b64(client, tmp_path, sample_photo_bytes):
    out = tmp_path / "from-b64.png"
    client.remove_background_from_base64_img(
        base64.b64encode(sample_photo_bytes).decode("ascii"), size="full", new_file_name=str(out))
    result = Image.open(out)
    assert (result.format, result.mode, result.size) == ("PNG", "RGBA", (512, 512))  # full: as sent
    alpha = np.asarray(result)[..., 3]
    assert (alpha[FACE] == 255).all()
    for corner in CORNERS:
        assert (alpha[corner] == 0).all()


def test_an_image_url_is_refused_in_remove_bg_envelope(client, tmp_path):
    """This service fetches no URLs: a 400 the client raises, with remove.bg's error shape."""
    out = tmp_path / "never.png"
    with pytest.raises(requests.HTTPError) as raised:
        client.remove_background_from_img_url("http://example.invalid/photo.jpg", new_file_name=str(out))
    response = raised.value.response
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert "image_url" in error["title"]
    assert not out.exists()


def test_the_redirect_is_the_one_line_the_docs_show(offline_services, tmp_path):
    """docs/removebg.md's override, run as written in a fresh interpreter (no monkeypatch)."""
    docs = (REPO_ROOT / "docs" / "removebg.md").read_text(encoding="utf-8")
    block = re.search(r"```python\n(.*?)```", docs, re.S)
    assert block and "removebg.removebg.API_ENDPOINT = " in block.group(1), \
        "docs/removebg.md lost its Python example"
    _, mat = offline_services
    code = textwrap.dedent(block.group(1)).replace("http://localhost:5000", mat.url)
    # the docs' file name (the content is a PNG: the service reads it by its bytes)
    shutil.copy(REPO_ROOT / "samples" / "astronaut.png", tmp_path / "photo.jpg")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    result = Image.open(tmp_path / "photo.jpg_no_bg.png")
    assert result.width * result.height <= 250_000
