"""Segmentation service: finds the subject of a photo and returns its trimap.

Run it with gunicorn (each worker builds the app, and so loads the models, once)::

    gunicorn 'segmentation_api:gunicorn_app()'

(:func:`gunicorn_app` is :func:`create_app` where a start-up failure is one log line.)

Importing this package has no side effects: no model is loaded until :func:`create_app`.
"""

from __future__ import annotations

import logging

from flask import Flask

from service_common.config import Settings
from service_common.web import attach_state, boot, init_app

from .backends import Backend, load_backends
from .routes import bp
from .state import SegmentationState

__all__ = ["create_app", "gunicorn_app"]

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, backend: Backend | None = None,
               extra_backends: list[Backend] | None = None) -> Flask:
    """The segmentation Flask app, with its models loaded.

    Args:
        settings: the configuration; ``Settings.from_env()`` when ``None``.
        backend: an already built default backend (tests inject one); when ``None`` the one
            ``settings.segmentation_backend`` names is loaded here, once.
        extra_backends: already built backends a request may also pick; when ``None`` the
            ones ``settings.segmentation_preload`` names are loaded here, once.

    Raises:
        ModelError: a model's weights are missing or unusable (the message says which
            file to put where).
    """
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    init_app(app, settings)
    backends, policy = load_backends(settings, default=backend, extra=extra_backends)
    state = SegmentationState(settings=settings, backends=backends, policy=policy)
    attach_state(app, state)
    app.register_blueprint(bp)
    log.info("segmentation service ready: backend %s on %s; loaded: %s; %s",
             state.default.name, state.default.device, ", ".join(backends), policy.why)
    return app


def gunicorn_app() -> Flask:
    """:func:`create_app` for a gunicorn worker: a missing model or a bad setting is one log
    line saying what to change, then the server stops (:func:`service_common.web.boot`)."""
    return boot("segmentation", create_app)
