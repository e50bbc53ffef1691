"""The answers of ``/v1/mask`` and ``/v1/trimap``: the picture (PNG, or TIFF with
``format=tiff``), or JSON (the PNG in base64), with the common headers."""

from __future__ import annotations

import base64
import time

from flask import Response, g, jsonify

from service_common.images import mime_type

from .backends import Backend
from .pipeline import SegmentAnswer

#: The JSON key of each output's PNG.
BODY_KEYS = {"mask": "mask_png16_base64", "trimap": "trimap_png_base64"}


def segment_response(answer: SegmentAnswer, backend: Backend, reason: str, output: str,
                     as_json: bool) -> Response:
    """The picture in ``answer.format`` (``as_json``: the JSON description with the PNG in
    base64; the routes refuse ``format=tiff`` with JSON) and the headers
    ``X-Subjects``, ``X-Mask-Kind``, ``X-Subject-Box``, ``X-Processing-Ms``, ``Server-Timing``
    (``X-Segmentation-Backend`` and ``-Reason`` are set for every answer by the blueprint)."""
    total_ms = (time.perf_counter() - g.started) * 1000.0
    result = answer.result
    if as_json:
        response = jsonify({
            "backend": backend.name,
            "mask_kind": backend.mask_kind,
            "reason": reason,
            "device": backend.device,
            "width": answer.width,
            "height": answer.height,
            "subjects": len(result.instances),
            "box": list(answer.box),
            "instances": [
                {"label": inst.label, "score": round(inst.score, 4), "box": list(inst.box)}
                for inst in result.instances
            ],
            "classes_ignored": not backend.classes_used,
            BODY_KEYS[output]: base64.b64encode(answer.body).decode("ascii"),
            "timing_ms": {k: round(v, 1) for k, v in {**answer.timings_ms, "total": total_ms}.items()},
        })
    else:
        response = Response(answer.body, mimetype=mime_type(answer.format))
    response.headers["X-Subjects"] = str(len(result.instances))
    response.headers["X-Mask-Kind"] = backend.mask_kind
    response.headers["X-Subject-Box"] = answer.box.text()
    response.headers["X-Processing-Ms"] = f"{total_ms:.1f}"
    response.headers["Server-Timing"] = ", ".join(f"{k};dur={v:.1f}" for k, v in answer.timings_ms.items())
    return response
