"""What one worker holds: settings, the matting backend, the segmentation client, the pipeline.

Built once by :func:`matting_api.create_app` and kept in ``app.extensions["matting"]``.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from service_common.config import Settings

from .backends import MattingBackend
from .pipeline import Pipeline
from .segmentation_client import SegmentationClient

EXTENSION_KEY = "matting"


@dataclass
class MattingState:
    settings: Settings
    backend: MattingBackend
    segmentation: SegmentationClient
    pipeline: Pipeline


def get_state() -> MattingState:
    """The current app's :class:`MattingState`."""
    return current_app.extensions[EXTENSION_KEY]
