"""One video frame through the matting service: BGR frame in, foreground and alpha out.

The frame is sent losslessly with ``bg_mode=transparent`` (BMP to a service on this machine,
PNG elsewhere: :mod:`contract.transport`); the answer is the service's RGBA image
(decontaminated foreground colours + alpha; uncompressed TIFF from a service on this machine,
PNG elsewhere), which the video client then smooths over time and composites itself.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from contract.transport import answer_format, upload_format
from contract.vocab import SEGMENTATION_BACKENDS, SegmentationOptions

from .api import MattingClient, MattingError, check_tiff_blocks

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MattedFrame:
    """A frame and its matte.

    Attributes:
        frame: ``H x W x 3`` uint8 BGR, the frame sent.
        fg: ``H x W x 3`` uint8 BGR foreground colours (straight alpha).
        alpha: ``H x W`` float32 in ``[0, 1]``.
        no_subject: the service found no subject (alpha is all 0, ``fg`` is the frame).
        timing_ms: the service's ``Server-Timing`` stages in ms (``segmentation``,
            ``matting``, ...), plus ``request`` (the client's wall time for the call).
        subject: the answer's ``X-Segmentation-Subject`` (with ``subject=auto``: ``person``
            or ``object``, what the segmentation service saw), else ``""``.
        backend: the answer's ``X-Segmentation-Backend`` (the model that found the subject:
            ``modnet``, ``u2netp``, ``selfie``, ...), or ``""``.
    """

    frame: np.ndarray
    fg: np.ndarray
    alpha: np.ndarray
    no_subject: bool = False
    timing_ms: Mapping[str, float] = field(default_factory=dict)
    subject: str = ""
    backend: str = ""


def parse_server_timing(header: str | None) -> dict[str, float]:
    """``"decode;dur=1.5, matting;dur=30"`` -> ``{"decode": 1.5, "matting": 30.0}``."""
    out: dict[str, float] = {}
    for entry in (header or "").split(","):
        name, _, params = entry.strip().partition(";")
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if name and key == "dur":
                try:
                    out[name] = float(value)
                except ValueError:
                    continue
    return out


def encode_frame(frame: np.ndarray, fmt: str = "png") -> bytes:
    """``H x W x 3`` uint8 BGR (or ``H x W`` grey) -> ``fmt`` (``png``: fast compression;
    ``bmp``) bytes, lossless."""
    params = [cv2.IMWRITE_PNG_COMPRESSION, 1] if fmt == "png" else []
    ok, buf = cv2.imencode(f".{fmt}", frame, params)
    if not ok:
        raise ValueError(f"OpenCV could not encode the frame as {fmt.upper()}")
    return buf.tobytes()


#: The first bytes of a TIFF file (little- and big-endian).
TIFF_MAGIC = (b"II*\x00", b"MM\x00*")


def decode_rgba(data: bytes, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The service's RGBA answer (PNG or TIFF) -> ``(fg H x W x 3 uint8 BGR, alpha H x W
    float32 [0, 1])``.

    A TIFF is read with Pillow: OpenCV reads an RGBA TIFF through libtiff's RGBA interface,
    which premultiplies the colours by alpha (the service writes them straight, as in PNG).

    Raises:
        MattingError: ``bad_response`` when the answer is not a ``size`` image with alpha.
    """
    if data[:4] in TIFF_MAGIC:
        img, to_bgr = _decode_tiff(data, size), cv2.COLOR_RGBA2BGR
    else:
        img, to_bgr = _decode_cv2(data), cv2.COLOR_BGRA2BGR
    if img.dtype != np.uint8:  # a 16-bit PNG
        img = (img // 257).astype(np.uint8)
    if (img.shape[1], img.shape[0]) != size:
        raise MattingError("bad_response", f"the service answered {img.shape[1]}x{img.shape[0]}, "
                           f"expected {size[0]}x{size[1]}")
    fg = cv2.cvtColor(img, to_bgr)
    alpha = np.multiply(img[..., 3], np.float32(1.0 / 255.0), dtype=np.float32)
    return fg, alpha


def _decode_cv2(data: bytes) -> np.ndarray:
    """A PNG answer -> ``H x W x 4`` BGRA."""
    img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None or img.ndim != 3 or img.shape[2] != 4:
        shape = None if img is None else img.shape
        raise MattingError("bad_response", "expected an RGBA image (PNG or TIFF) from the service, "
                           f"got {shape}")
    return img


def _decode_tiff(data: bytes, size: tuple[int, int]) -> np.ndarray:
    """A TIFF answer -> ``H x W x 4`` uint8 RGBA, its strips and size checked before its pixels
    are read."""
    check_tiff_blocks(data, "TIFF")
    try:
        with Image.open(io.BytesIO(data), formats=["TIFF"]) as im:
            if im.mode != "RGBA":
                raise MattingError("bad_response", "expected an RGBA image (PNG or TIFF) from the "
                                   f"service, got a {im.mode} TIFF")
            if im.size != size:
                raise MattingError("bad_response", f"the service answered {im.size[0]}x{im.size[1]}, "
                                   f"expected {size[0]}x{size[1]}")
            return np.asarray(im)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as exc:
        log.debug("the service's TIFF answer: %s", exc)
        raise MattingError("bad_response", "the service answered a TIFF that cannot be read; is "
                           "the server a Backdrop matting service of this version?") from None


class FrameMatter:
    """Callable: ``MattedFrame = matter(frame)``, thread-safe (one shared client).

    Args:
        client: the matting service's client.
        segmentation: what a frame's request passes on to the segmentation service (not
            sent with a prior, which skips it).
    """

    def __init__(self, client: MattingClient, segmentation: SegmentationOptions | None = None) -> None:
        self.client = client
        self.options = (segmentation or SegmentationOptions()).as_form()
        self.upload = upload_format(client.server)
        self.answer = answer_format(client.server)

    def __call__(self, frame: np.ndarray) -> MattedFrame:
        """Matte one ``H x W x 3`` uint8 BGR frame. A frame without a subject (``no_subject``)
        becomes all background; every other error is raised (:class:`MattingError`)."""
        return self._send(frame, None)

    def refine(self, frame: np.ndarray, prior: np.ndarray) -> MattedFrame:
        """Matte ``frame`` from ``prior`` (``H x W`` float32 in ``[0, 1]``, a matte carried
        from another frame: :mod:`client.motion`): the service refines it in a band around
        its edge and skips segmentation."""
        grey = np.clip(prior * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return self._send(frame, encode_frame(grey, self.upload))

    def _send(self, frame: np.ndarray, prior: bytes | None) -> MattedFrame:
        size = (frame.shape[1], frame.shape[0])
        started = time.perf_counter()
        options = self.options if prior is None else {}
        try:
            body, headers = self.client.matte(encode_frame(frame, self.upload),
                                              filename=f"frame.{self.upload}", prior=prior,
                                              bg_mode="transparent", format=self.answer,
                                              foreground="fast", **options)
        except MattingError as exc:
            if exc.code != "no_subject":
                raise
            timing = {"request": (time.perf_counter() - started) * 1000.0}
            return MattedFrame(frame, frame, np.zeros(frame.shape[:2], np.float32), True, timing)
        timing = parse_server_timing(headers.get("Server-Timing"))
        timing["request"] = (time.perf_counter() - started) * 1000.0
        fg, alpha = decode_rgba(body, size)
        subject = headers.get("X-Segmentation-Subject", "")
        subject = subject if subject in ("person", "object") else ""
        backend = headers.get("X-Segmentation-Backend", "")
        backend = backend if backend in SEGMENTATION_BACKENDS else ""
        return MattedFrame(frame, fg, alpha, False, timing, subject, backend)
