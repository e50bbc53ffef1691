"""How images travel between the parts of Backdrop: lossless either way, compressed only when
the bytes go over a network.

On one machine (loopback) coding costs more than the bytes: a 640 x 480 frame takes 11 ms to
encode and 5 ms to decode as PNG, 0.3 ms and 0.4 ms as BMP, for 4.5x the bytes (0.9 MB). So
the matting service sends BMP to a segmentation service on the same machine and the video
client sends BMP to a matting service on the same machine.

The answer back, the RGBA image (foreground colours + alpha) of a 640 x 480 frame
(asl_help_parking, 4 frames, on 2 busy cores), costs the service 15 to 26 ms to encode as PNG
level 3 (its ``Server-Timing`` encode: 19 to 33 ms) and the video client 5 to 7 ms to decode
(:func:`client.video_matte.decode_rgba`); as uncompressed TIFF, 0.5 to 2.7 ms to encode
(``Server-Timing``: 1 to 2 ms) and 0.9 ms to decode (Pillow), for 10x the bytes (1.2 MB
against 0.12 MB), the same pixels. So the video client asks a matting service
on the same machine for TIFF (:func:`answer_format`). It reads it with Pillow:
``cv2.imdecode`` (2.5 ms) goes through libtiff's RGBA interface, which premultiplies the
colours by the straight alpha the service writes.

The segmentation service's answer, the 16-bit soft mask of a 640 x 480 frame (MODNet on 4
frames of asl_help_parking, 2 busy cores), costs it 8.6 to 10.7 ms to encode as PNG level 1
(6 to 7.5 ms since the quantisation no longer goes through ``np.nan_to_num``; its
``Server-Timing`` encode: 6.2 to 7.7 ms) and the matting service 2.8 to 4.2 ms to decode
(:func:`service_common.images.decode_mask16`; 2.5 to 5.5 ms as it comes off the socket); as
uncompressed 16-bit TIFF in one strip, 0.6 ms to encode (``Server-Timing``: 1.1 to 1.8 ms)
and 0.4 to 0.6 ms to decode (1.6 to 2.8 ms off the socket), for 615 kB against 44 to 85 kB,
the same values. So the matting service asks a segmentation service it sends BMP to for
TIFF (:func:`mask_format`), and checks the TIFF's strips, size and mode before decoding it.
Everything else, and every result a user gets, is PNG (or what was asked for).
"""

from __future__ import annotations

import ipaddress
import urllib.parse

#: Host names that mean "this machine" (besides the loopback addresses).
LOOPBACK_HOSTS = frozenset({"localhost"})


def is_loopback(url: str) -> bool:
    """Whether ``url``'s host is this machine (``localhost``, ``127.x.x.x``, ``::1``)."""
    host = (urllib.parse.urlsplit(url).hostname or "").lower()
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name other than localhost: maybe another machine
        return False


def answer_format(url: str) -> str:
    """The ``format`` to ask ``url`` (the matting service) for an RGBA answer in: ``tiff``
    (uncompressed) on this machine, ``png`` elsewhere; both lossless."""
    return "tiff" if is_loopback(url) else "png"


def upload_format(url: str, choice: str = "auto") -> str:
    """The format to send an image to ``url`` in: ``choice`` (``png`` or ``bmp``), or for
    ``auto`` BMP on this machine and PNG elsewhere."""
    if choice != "auto":
        return choice
    return "bmp" if is_loopback(url) else "png"


def mask_format(url: str, choice: str = "auto") -> str:
    """The ``format`` to ask ``url`` (the segmentation service) for its 16-bit mask in:
    ``tiff`` (uncompressed) where the image goes uncompressed (:func:`upload_format` with
    ``choice``: BMP on this machine for ``auto``), ``png`` otherwise; both lossless. One
    setting (``BACKDROP_SEGMENTATION_TRANSPORT``) decides both ways of the hop."""
    return "tiff" if upload_format(url, choice) == "bmp" else "png"
