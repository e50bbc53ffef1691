"""Live through a pipe: raw frames in on standard input, composited raw frames out on
standard output, as ffmpeg's ``rawvideo`` speaks::

    ffmpeg -i camera.mp4 -f rawvideo -pix_fmt bgr24 - \\
      | backdrop-video - - --input-size 640x480 --color green \\
      | ffmpeg -f rawvideo -pix_fmt bgr24 -s 640x480 -r 30 -i - out.mp4

Each frame is ``width x height x 3`` bytes (``bgr24`` or ``rgb24``, ``--pix-fmt``); the
output has the input's size and pixel format (``bgra``/``rgba`` with ``--transparent``).
A frame goes out as soon as it and the frames before it are done: the delay is bounded
by the requests in flight (``--jobs``), and a frame is written and flushed at once, so a
virtual camera or a live stream keeps up at the stack's frame rate. A stream that ends in
the middle of a frame is an error (the part is dropped, and said).
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from typing import BinaryIO

import numpy as np

from .closing import Closing
from .video_io import VideoError

#: Raw pixel formats read and written (ffmpeg's names) and their channel order.
PIXEL_FORMATS = ("bgr24", "rgb24")


class RawFrameReader(Closing):
    """Frames of ``size`` (``(width, height)``) in ``pix_fmt`` from a byte stream, as BGR.

    The same interface as :class:`client.video_io.VideoReader` (``size``, ``fps``,
    ``frame_count``, ``frames``) so that :func:`client.video.process_video` reads it alike;
    ``frame_count`` is 0 (unknown: a live stream).
    """

    def __init__(self, stream: BinaryIO, size: tuple[int, int], pix_fmt: str = "bgr24",
                 fps: Fraction = Fraction(30)) -> None:
        if pix_fmt not in PIXEL_FORMATS:
            raise ValueError(f"--pix-fmt must be one of {', '.join(PIXEL_FORMATS)}, got {pix_fmt!r}")
        self.stream, self.size, self.pix_fmt, self.fps = stream, size, pix_fmt, fps
        self.frame_count = 0

    @property
    def frame_bytes(self) -> int:
        return self.size[0] * self.size[1] * 3

    def _read_exactly(self, n: int) -> bytes:
        chunks, got = [], 0
        while got < n:
            chunk = self.stream.read(n - got)
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def frames(self, limit: int | None = None) -> Iterator[np.ndarray]:
        """``H x W x 3`` uint8 BGR frames until the stream ends (or ``limit`` frames)."""
        width, height = self.size
        count = 0
        while limit is None or count < limit:
            data = self._read_exactly(self.frame_bytes)
            if not data:
                return
            if len(data) < self.frame_bytes:
                raise VideoError(f"the input stream ended inside frame {count + 1}: {len(data)} of "
                                 f"{self.frame_bytes} bytes ({width}x{height} {self.pix_fmt}); is "
                                 "--input-size the size ffmpeg sends?")
            frame = np.frombuffer(data, np.uint8).reshape(height, width, 3)
            yield frame[..., ::-1].copy() if self.pix_fmt == "rgb24" else frame.copy()
            count += 1

    def close(self) -> None:
        """Nothing to close: the stream belongs to the caller."""


class RawFrameWriter(Closing):
    """Writes frames to a byte stream as raw ``pix_fmt`` bytes, flushed frame by frame.

    Args:
        stream: where to write (standard output's buffer).
        pix_fmt: ``bgr24`` or ``rgb24``; frames with alpha (``H x W x 4`` BGRA) are written as
            ``bgra`` or ``rgba``.
    """

    def __init__(self, stream: BinaryIO, pix_fmt: str = "bgr24") -> None:
        if pix_fmt not in PIXEL_FORMATS:
            raise ValueError(f"--pix-fmt must be one of {', '.join(PIXEL_FORMATS)}, got {pix_fmt!r}")
        self.stream, self.pix_fmt = stream, pix_fmt

    def write(self, frame: np.ndarray) -> None:
        """Write one ``H x W x 3`` BGR or ``H x W x 4`` BGRA uint8 frame."""
        if self.pix_fmt == "rgb24":
            order = [2, 1, 0] if frame.shape[2] == 3 else [2, 1, 0, 3]
            frame = frame[..., order]
        self.stream.write(np.ascontiguousarray(frame).tobytes())
        self.stream.flush()

    def close(self) -> None:
        self.stream.flush()
