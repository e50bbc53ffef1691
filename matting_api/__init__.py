"""The matting service (port 5000): trimap -> matte -> new background, over HTTP.

``create_app()`` builds the Flask app for one gunicorn worker::

    gunicorn 'matting_api:gunicorn_app()'

(:func:`gunicorn_app` is :func:`create_app` where a start-up failure is one log line.)

It reads the ``BACKDROP_*`` settings, loads the matting backend once (FBA when
``models/FBA.pth`` exists, else closed-form matting, warmed up so the first request is not
slow), opens one pooled HTTP session to the segmentation service and registers the
endpoints: ``POST /v1/matte``, ``POST /v1.0/removebg``, ``GET /healthz``, ``GET /readyz``,
``GET /openapi.json`` and the web page at ``GET /`` (:mod:`matting_api.page`). Importing this
package loads nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Flask

from service_common.config import Settings

if TYPE_CHECKING:
    from .backends import MattingBackend

__all__ = ["create_app", "gunicorn_app"]


def create_app(settings: Settings | None = None, matting_backend: MattingBackend | None = None) -> Flask:
    """The matting service's Flask app.

    Args:
        settings: defaults to :meth:`Settings.from_env`.
        matting_backend: an already built backend (tests); default: loaded from the settings
            by :func:`matting_api.backends.load_matting_backend`.
    """
    from service_common.web import attach_state, init_app

    from . import openapi, page, removebg, routes
    from .backends import load_matting_backend
    from .pipeline import Pipeline
    from .segmentation_client import SegmentationClient
    from .state import MattingState

    settings = settings or Settings.from_env()
    app = Flask(__name__)
    init_app(app, settings)
    backend = matting_backend or load_matting_backend(settings)
    segmentation = SegmentationClient(
        settings.segmentation_url,
        connect_timeout=settings.segmentation_connect_timeout,
        read_timeout=settings.segmentation_timeout,
        transport=settings.segmentation_transport,
    )
    attach_state(app, MattingState(
        settings=settings,
        backend=backend,
        segmentation=segmentation,
        pipeline=Pipeline(backend, segmentation, settings.max_pixels),
    ))
    app.register_blueprint(routes.bp)
    app.register_blueprint(removebg.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(page.bp)
    app.logger.info("matting service ready: backend %s on %s, segmentation at %s",
                    backend.name, backend.device, settings.segmentation_url)
    return app


def gunicorn_app() -> Flask:
    """:func:`create_app` for a gunicorn worker: a missing model or a bad setting is one log
    line saying what to change, then the server stops (:func:`service_common.web.boot`)."""
    from service_common.web import boot

    return boot("matting", create_app)
