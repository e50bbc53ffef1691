"""Frame <-> service encoding of the video client (pure parts)."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from client.api import MattingClient, MattingError
from client.video_matte import FrameMatter, decode_rgba, encode_frame, parse_server_timing
from contract.transport import answer_format, is_loopback, upload_format
from service_common.images import encode_image


def test_lossless_round_trips_and_rgba_decoding():
    frame = np.random.default_rng(0).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    for fmt in ("png", "bmp"):
        data = encode_frame(frame, fmt)
        assert np.array_equal(cv2.imdecode(np.frombuffer(data, np.uint8), 1), frame)
    assert encode_frame(frame, "bmp").startswith(b"BM")
    bgra = np.dstack([frame, np.full((6, 8), 51, np.uint8)])
    fg, alpha = decode_rgba(cv2.imencode(".png", bgra)[1].tobytes(), (8, 6))
    assert np.array_equal(fg, frame)
    assert alpha.dtype == np.float32 and np.allclose(alpha, 0.2)


def test_decode_rgba_refuses_wrong_answers():
    rgb = cv2.imencode(".png", np.zeros((6, 8, 3), np.uint8))[1].tobytes()
    with pytest.raises(MattingError, match="RGBA"):
        decode_rgba(rgb, (8, 6))
    rgba = cv2.imencode(".png", np.zeros((6, 8, 4), np.uint8))[1].tobytes()
    with pytest.raises(MattingError, match="expected 4x4"):
        decode_rgba(rgba, (4, 4))


def test_the_tiff_answer_decodes_as_the_png_does():
    """The service's uncompressed TIFF (straight alpha) gives the PNG's colours exactly, also
    where alpha is partial: OpenCV's reader would premultiply them (so Pillow reads it)."""
    rng = np.random.default_rng(2)
    rgba = rng.integers(0, 256, (6, 8, 4), dtype=np.uint8)
    rgba[0, :, 3] = 0
    rgba[1, :, 3] = 255
    png, tiff = encode_image(rgba, "png"), encode_image(rgba, "tiff")
    fg_png, alpha_png = decode_rgba(png, (8, 6))
    fg_tiff, alpha_tiff = decode_rgba(tiff, (8, 6))
    assert np.array_equal(fg_tiff, rgba[..., 2::-1]) and np.array_equal(fg_tiff, fg_png)
    assert np.array_equal(alpha_tiff, alpha_png) and alpha_tiff.dtype == np.float32
    assert np.array_equal(alpha_tiff, rgba[..., 3].astype(np.float32) * (1.0 / 255.0))
    premultiplied = cv2.imdecode(np.frombuffer(tiff, np.uint8), cv2.IMREAD_UNCHANGED)
    assert not np.array_equal(premultiplied[..., :3], fg_png)  # why not cv2.imdecode


def test_decode_rgba_refuses_wrong_tiffs(monkeypatch):
    rgb = encode_image(np.zeros((6, 8, 3), np.uint8), "tiff")
    with pytest.raises(MattingError, match="RGBA image .PNG or TIFF.* got a RGB TIFF"):
        decode_rgba(rgb, (8, 6))
    rgba = encode_image(np.zeros((6, 8, 4), np.uint8), "tiff")
    with pytest.raises(MattingError, match="answered 8x6, expected 4x4"):
        decode_rgba(rgba, (4, 4))
    with pytest.raises(MattingError, match="answered a TIFF that cannot be read") as err:
        decode_rgba(rgba[:-40], (8, 6))
    assert err.value.code == "bad_response"
    assert "PIL" not in err.value.message and "truncated" not in err.value.message.lower()
    monkeypatch.setattr("client.api.MAX_ANSWER_TIFF_BLOCKS", 0)
    with pytest.raises(MattingError, match="strips or tiles"):
        decode_rgba(rgba, (8, 6))


class _Recorder(MattingClient):
    """A client that answers every matte call with a transparent RGBA image in the format asked."""

    def __init__(self, server: str) -> None:
        super().__init__(server)
        self.asked: list[str] = []

    def matte(self, image, **fields):  # type: ignore[override]
        self.asked.append(fields["format"])
        frame = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_COLOR)
        rgba = np.dstack([frame[..., ::-1], np.full(frame.shape[:2], 102, np.uint8)])
        buf = io.BytesIO()
        Image.fromarray(rgba).save(buf, format={"png": "PNG", "tiff": "TIFF"}[fields["format"]])
        return buf.getvalue(), {"Server-Timing": "encode;dur=1"}


@pytest.mark.parametrize(("server", "answer"), [("http://127.0.0.1:5000", "tiff"),
                                                ("http://matting.internal:5000", "png")])
def test_frame_matter_asks_for_tiff_only_on_this_machine(server, answer):
    client = _Recorder(server)
    frame = np.random.default_rng(3).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    matted = FrameMatter(client)(frame)
    assert client.asked == [answer]
    assert np.array_equal(matted.fg, frame) and np.allclose(matted.alpha, 0.4)


def test_parse_server_timing():
    header = "decode;dur=1.5, segmentation;dur=700, matting;desc=x;dur=30.25, bad;dur=x"
    assert parse_server_timing(header) == {"decode": 1.5, "segmentation": 700.0, "matting": 30.25}
    assert parse_server_timing(None) == {}


def test_bmp_and_tiff_only_on_this_machine():
    assert is_loopback("http://127.0.0.1:5000") and is_loopback("http://localhost:5000")
    assert is_loopback("http://[::1]:5000") and is_loopback("http://127.1.2.3")
    assert not is_loopback("http://matting.internal:5000") and not is_loopback("http://10.0.0.7")
    assert upload_format("http://127.0.0.1:5000") == "bmp"
    assert upload_format("http://segmentation:3000") == "png"
    assert upload_format("http://127.0.0.1:5000", "png") == "png"
    assert answer_format("http://127.0.0.1:5000") == "tiff"
    assert answer_format("http://segmentation:3000") == "png"
