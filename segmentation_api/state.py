"""What a segmentation app holds between requests: its loaded backends."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app

from .backends import Backend

EXTENSION_KEY = "backdrop_segmentation"


@dataclass(frozen=True)
class SegmentationState:
    """The loaded backends (name -> backend) and which one is the default.

    Attributes:
        backends: every loaded backend by name (each knows the class names it accepts).
        default: name of the backend used when a request does not choose one.
    """

    backends: dict[str, Backend]
    default: str

    def backend(self, name: str | None = None) -> Backend:
        """The backend called ``name`` (the default one for ``None``)."""
        return self.backends[name or self.default]


def attach(app: Flask, state: SegmentationState) -> None:
    app.extensions[EXTENSION_KEY] = state


def current_state() -> SegmentationState | None:
    """The state of the app handling the current request; ``None`` before models load."""
    return current_app.extensions.get(EXTENSION_KEY)
