"""What a segmentation app holds between requests: its settings, loaded backends and policy."""

from __future__ import annotations

from dataclasses import dataclass

from service_common.config import Settings

from .backends import Backend, Policy


@dataclass(frozen=True)
class SegmentationState:
    """Built once per worker by :func:`segmentation_api.create_app`
    (:func:`service_common.web.attach_state`).

    Attributes:
        settings: the worker's settings.
        backends: every loaded backend by name (each knows the class names it accepts).
        policy: which of them serves a request by its classes (``auto``), or always the
            same one.
    """

    settings: Settings
    backends: dict[str, Backend]
    policy: Policy

    @property
    def default(self) -> Backend:
        """The backend serving requests for people (the default classes)."""
        return self.backends[self.policy.person]

    def backend(self, name: str | None = None) -> Backend:
        """The backend called ``name`` (the default one for ``None``)."""
        return self.backends[name] if name else self.default
