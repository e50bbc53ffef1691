"""Clients of the Backdrop services.

* :mod:`client.api`: :class:`MattingClient`, HTTP calls to the matting service.
* :mod:`client.cli`: ``python -m client`` / ``backdrop``, photos and folders of photos.
* :mod:`client.video`: ``python -m client.video`` / ``backdrop-video``, videos.
"""

from .api import MattingClient, MattingError, ServiceUnreachable

__all__ = ["MattingClient", "MattingError", "ServiceUnreachable"]
