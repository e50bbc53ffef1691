"""What the matting service sends its segmentation neighbour: the image as the request's
body, uncompressed (BMP) when the neighbour is on this machine, PNG when told so, and the
segmentation parameters (``model_size`` included) in the query string. A relay in between
records the real request; the answers come from the real segmentation service."""

from __future__ import annotations

import io
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from PIL import Image


def _query(path: str) -> dict[str, str]:
    """The query string of a request's path -> {name: value}; each name once."""
    fields = parse_qs(urlsplit(path).query, strict_parsing=False)
    assert all(len(values) == 1 for values in fields.values()), fields
    return {name: values[0] for name, values in fields.items()}


@pytest.mark.parametrize(("transport", "mime", "pil_format"), [
    ("auto", "image/bmp", "BMP"),  # the relay listens on 127.0.0.1
    ("png", "image/png", "PNG"),
])
def test_image_format_on_the_hop(make_app, make_neighbour, offline_services, sample_photo, png,
                                 transport, mime, pil_format):
    seg, _ = offline_services
    relay = make_neighbour()
    relay.target, relay.mode = seg.url, "relay"
    relay.start()
    client = make_app(segmentation_url=relay.url, segmentation_transport=transport,
                      segmentation_timeout=30.0).test_client()
    photo = np.asarray(Image.fromarray(sample_photo).resize((160, 160)))
    resp = client.post("/v1/matte", data={"image": (io.BytesIO(png(photo)), "p.png"),
                                          "bg_color": "white", "model_size": "256"})
    assert resp.status_code == 200, resp.get_json()
    [request] = relay.received
    assert request.headers["Content-Type"] == mime
    sent = Image.open(io.BytesIO(request.body))
    assert sent.format == pil_format
    assert np.array_equal(np.asarray(sent.convert("RGB")), photo)  # lossless either way
    assert _query(request.path)["model_size"] == "256"
    assert request.headers["X-Backdrop-In-Flight"] == "1"  # one request at the matting service


def test_a_huge_photo_travels_scaled_down_and_its_mask_comes_back_full_size(
        make_app, make_neighbour, offline_services, sample_photo, png, monkeypatch):
    """Above SEND_MAX_SIDE the hop carries a smaller copy (every model works below it), so a
    40 MP photo does not exceed the segmentation service's upload limit; the matte is full size."""
    from matting_api import segmentation_client

    monkeypatch.setattr(segmentation_client, "SEND_MAX_SIDE", 256)  # a small stand-in for 3072
    seg, _ = offline_services
    relay = make_neighbour()
    relay.target, relay.mode = seg.url, "relay"
    relay.start()
    client = make_app(segmentation_url=relay.url, segmentation_timeout=30.0).test_client()
    photo = np.asarray(Image.fromarray(sample_photo).resize((640, 640)))
    resp = client.post("/v1/matte", data={"image": (io.BytesIO(png(photo)), "p.png"),
                                          "channels": "alpha", "format": "png"})
    assert resp.status_code == 200, resp.get_json()
    [request] = relay.received
    sent = Image.open(io.BytesIO(request.body))
    assert sent.size == (256, 256)
    alpha = np.asarray(Image.open(io.BytesIO(resp.data)))
    assert alpha.shape == (640, 640)
    assert (alpha[150:176, 262:288] == 255).all() and (alpha[:20, -20:] == 0).all()  # face, wall
