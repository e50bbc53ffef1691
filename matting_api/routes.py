"""HTTP endpoints of the matting service: ``POST /v1/matte``, ``GET /healthz``, ``GET /readyz``.

Only HTTP here: read the uploads and fields, validate them into
:class:`~matting_api.options.MatteOptions`, run the shared pipeline, answer.
"""

from __future__ import annotations

from flask import Blueprint, g, jsonify

from contract.vocab import MATTE_FIELDS, MATTE_FILES
from service_common.errors import ApiError
from service_common.front import READY_WAIT_S
from service_common.web import app_state, check_fields, param, read_upload

from .options import parse_matte_options
from .pipeline import MatteRequest
from .responses import image_response

bp = Blueprint("matting", __name__)

#: Fields some clients send to make the server fetch an image: refused, never fetched.
URL_FIELDS = ("image_url", "bg_image_url")
#: Longest ``/readyz`` waits for the segmentation service's own readiness, seconds: half of
#: what the front waits for this answer (:data:`service_common.front.READY_WAIT_S`), so that
#: a stalled neighbour is reported as such rather than cut off by the front as busy threads.
NEIGHBOUR_READY_S = READY_WAIT_S / 2


def _refuse_urls() -> None:
    """400 ``invalid_parameter`` when the request asks the server to fetch a URL."""
    for name in URL_FIELDS:
        if param(name) is not None:
            upload = name.removesuffix("_url")
            raise ApiError(
                "invalid_parameter",
                f"{name}: this service does not fetch URLs; upload the file as '{upload}'",
                field=name,
            )


@bp.post("/v1/matte")
def matte():
    """The image with its background replaced (see the OpenAPI document)."""
    _refuse_urls()
    check_fields(MATTE_FIELDS, ("image", *MATTE_FILES), refused=URL_FIELDS, required_file="image")
    image = read_upload("image", raw_body=True)
    bg_image = read_upload("bg_image", required=False)
    trimap = read_upload("trimap", required=False)
    hints = read_upload("hints", required=False)
    prior = read_upload("prior", required=False)
    params = {name: param(name) for name in MATTE_FIELDS}
    options = parse_matte_options(params, has_bg_image=bg_image is not None)
    request = MatteRequest(image=image or b"", options=options, bg_image=bg_image, trimap=trimap,
                           hints=hints, prior=prior)
    result = app_state().pipeline.run(request, getattr(g, "request_id", None))
    return image_response(result)


@bp.get("/healthz")
def healthz():
    """200 while the process is alive."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    """200 when this worker's matting backend is loaded (and warmed up) and the segmentation
    service says it is ready; 503 ``not_ready`` otherwise, saying which part is missing."""
    state = app_state()
    backend_info = state.backend.info()
    backend_ready = backend_info.get("warmed_up", True) is not False
    seg_ready, seg_info = state.segmentation.readiness(timeout=NEIGHBOUR_READY_S)
    body = {
        "backend": state.backend.name,
        "device": state.backend.device,
        "backends": [state.backend.name],
        "matting": backend_info,
        "segmentation": seg_info,
    }
    if backend_ready and seg_ready:
        return jsonify({"status": "ready", **body})
    missing = []
    if not backend_ready:
        missing.append("the matting backend is not warmed up")
    if not seg_ready:
        if seg_info.get("error") == "ReadTimeout":
            missing.append(f"the segmentation service did not answer its readiness check within "
                           f"{NEIGHBOUR_READY_S:g} s (busy or stalled)")
        else:
            missing.append(f"the segmentation service is {seg_info.get('status', 'not ready')}")
    raise ApiError("not_ready", "; ".join(missing), **body)
