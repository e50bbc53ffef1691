"""Frame <-> service encoding of the video client (pure parts)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from client.api import MattingError
from client.video_matte import decode_rgba, encode_frame, parse_server_timing
from contract.transport import is_loopback, upload_format


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


def test_parse_server_timing():
    header = "decode;dur=1.5, segmentation;dur=700, matting;desc=x;dur=30.25, bad;dur=x"
    assert parse_server_timing(header) == {"decode": 1.5, "segmentation": 700.0, "matting": 30.25}
    assert parse_server_timing(None) == {}


def test_bmp_only_on_this_machine():
    assert is_loopback("http://127.0.0.1:5000") and is_loopback("http://localhost:5000")
    assert is_loopback("http://[::1]:5000") and is_loopback("http://127.1.2.3")
    assert not is_loopback("http://matting.internal:5000") and not is_loopback("http://10.0.0.7")
    assert upload_format("http://127.0.0.1:5000") == "bmp"
    assert upload_format("http://segmentation:3000") == "png"
    assert upload_format("http://127.0.0.1:5000", "png") == "png"
