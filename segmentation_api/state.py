"""What a segmentation app holds between requests: its loaded backends and the policy."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app

from .backends import Backend, Policy

EXTENSION_KEY = "backdrop_segmentation"


@dataclass(frozen=True)
class SegmentationState:
    """The loaded backends (name -> backend) and the policy for requests that name none.

    Attributes:
        backends: every loaded backend by name (each knows the class names it accepts).
        policy: which of them serves a request by its classes (``auto``), or always the
            same one.
    """

    backends: dict[str, Backend]
    policy: Policy

    @property
    def default(self) -> Backend:
        """The backend serving requests for people (the default classes)."""
        return self.backends[self.policy.person]

    def backend(self, name: str | None = None) -> Backend:
        """The backend called ``name`` (the default one for ``None``)."""
        return self.backends[name] if name else self.default


def attach(app: Flask, state: SegmentationState) -> None:
    app.extensions[EXTENSION_KEY] = state


def current_state() -> SegmentationState | None:
    """The state of the app handling the current request; ``None`` before models load."""
    return current_app.extensions.get(EXTENSION_KEY)
