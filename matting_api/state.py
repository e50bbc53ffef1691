"""What one matting worker holds: settings, the matting backend, the segmentation client,
the pipeline. Built once by :func:`matting_api.create_app`
(:func:`service_common.web.attach_state`)."""

from __future__ import annotations

from dataclasses import dataclass

from service_common.config import Settings

from .backends import MattingBackend
from .pipeline import Pipeline
from .segmentation_client import SegmentationClient


@dataclass
class MattingState:
    settings: Settings
    backend: MattingBackend
    segmentation: SegmentationClient
    pipeline: Pipeline
