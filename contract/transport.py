"""How images travel between the parts of Backdrop: lossless either way, compressed only when
the bytes go over a network.

On one machine (loopback) coding costs more than the bytes: a 640 x 480 frame takes 11 ms to
encode and 5 ms to decode as PNG, 0.3 ms and 0.4 ms as BMP, for 4.5x the bytes (0.9 MB). So
the matting service sends BMP to a segmentation service on the same machine and the video
client sends BMP to a matting service on the same machine; everything else, and every result
a user gets, is PNG (or what was asked for).
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


def upload_format(url: str, choice: str = "auto") -> str:
    """The format to send an image to ``url`` in: ``choice`` (``png`` or ``bmp``), or for
    ``auto`` BMP on this machine and PNG elsewhere."""
    if choice != "auto":
        return choice
    return "bmp" if is_loopback(url) else "png"
