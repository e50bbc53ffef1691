"""API fuzzing with schemathesis against the matting service's own ``/openapi.json``.

The matting app runs in-process (WSGI, fastest) with the real closed-form backend and the
real segmentation service of ``stack`` behind it. Every operation of the document gets
generated requests (valid and invalid fields, random uploads); every answer must be no 5xx
and must conform to the document: a documented status, its content type, its headers and
its JSON schema. Half of the generated uploads are replaced by a real photo (and a trimap),
so that the generated options reach matting, compositing and encoding. The default run is
bounded (:data:`EXAMPLES` per operation and mode, a few seconds); ``-m slow`` runs
:data:`SLOW_EXAMPLES`.

The segmentation service serves no OpenAPI document (``/openapi.json`` is a 404 there; its
contract is docs/api.md's), so only the matting service is fuzzed.
"""

from __future__ import annotations

import base64

import pytest
import requests
from apierrors import assert_api_error
from robust_inputs import photo_png, trimap_png

from matting_api.openapi import build_openapi

schemathesis = pytest.importorskip("schemathesis")  # a dev dependency (it brings hypothesis)
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.generation import GenerationMode  # noqa: E402

EXAMPLES = 12
SLOW_EXAMPLES = 150
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]


#: ``(method, path)`` of every operation of the document (built without an app).
OPERATIONS = [(method.upper(), path) for path, item in build_openapi()["paths"].items()
              for method in item]
#: Operations that take input: only they have invalid requests to generate.
WITH_INPUT = [(m, p) for m, p in OPERATIONS if m == "POST"]
PHOTO = photo_png(48, 40, seed=11)
TRIMAP = trimap_png(48, 40)


@pytest.fixture(scope="module")
def matting_schema(stack, models_dir):
    """The schema loaded from the in-process app's own ``/openapi.json``."""
    from matting_api import create_app
    from matting_api.backends.closed_form import ClosedFormBackend
    from service_common.config import Settings

    backend = ClosedFormBackend()
    backend.warm_up()  # /readyz says 503 until it is
    app = create_app(Settings(
        models_dir=models_dir, matting_backend="closed_form", segmentation_url=stack.seg.url,
        segmentation_timeout=30.0, max_upload_bytes=1024 * 1024, max_pixels=2_000_000,
        log_level="ERROR",
    ), matting_backend=backend)
    return schemathesis.openapi.from_wsgi("/openapi.json", app)


def _fuzz(schema, method: str, path: str, mode: GenerationMode, examples: int,
          media_type: str | None = None) -> None:
    """Run ``examples`` generated cases of one operation through every check (only bodies
    of ``media_type`` when given).

    (schemathesis' lazy ``from_fixture`` loader does not work with pytest 9, hence its
    strategies with Hypothesis' ``@given``, as its documentation offers.)"""
    operation = schema[path][method]
    strategy = operation.as_strategy(generation_mode=mode, media_type=media_type)

    @given(case=strategy, real=st.booleans())
    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    def run(case, real: bool) -> None:
        if real:
            _real_files(case)
        case.call_and_validate(checks=CHECKS)

    run()


def _real_files(case) -> None:
    """Put real images in the generated upload fields (random bytes are rarely an image), so
    that the generated options reach matting and compositing. A trimap comes along with the
    image, so that no case waits for the segmentation model."""
    body = case.body
    if not isinstance(body, dict):
        return
    for name in ("image", "image_file", "bg_image", "bg_image_file"):
        if name in body:
            body[name] = PHOTO
    if "image_file_b64" in body:
        body["image_file_b64"] = base64.b64encode(PHOTO).decode("ascii")
    if "image" in body:
        body["trimap"] = TRIMAP


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_matting_api_conforms_to_its_openapi_document(matting_schema, method, path):
    # multipart only: a raw image body has no trimap, and each would cost a model run
    media_type = "multipart/form-data" if path == "/v1/matte" else None
    _fuzz(matting_schema, method, path, GenerationMode.POSITIVE, EXAMPLES, media_type)


@pytest.mark.parametrize(("method", "path"), WITH_INPUT)
def test_matting_api_answers_invalid_requests_as_documented(matting_schema, method, path):
    _fuzz(matting_schema, method, path, GenerationMode.NEGATIVE, EXAMPLES)


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                         ids=["valid", "invalid"])
@pytest.mark.parametrize(("method", "path"), WITH_INPUT)
def test_matting_api_conforms_longer_run(matting_schema, method, path, mode):
    _fuzz(matting_schema, method, path, mode, SLOW_EXAMPLES)


def test_segmentation_service_has_no_openapi_document(stack):
    assert_api_error(requests.get(stack.seg.url + "/openapi.json", timeout=10), 404, "not_found")
