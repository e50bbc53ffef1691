"""The allowed values of Backdrop's enumerated parameters and the fields of ``/v1/matte``.

One place for each list: the services validate against it, the OpenAPI document is built
from it, the clients offer it on the command line.
"""

from __future__ import annotations

#: ``bg_mode``: what goes behind the subject.
BG_MODES = ("image", "color", "transparent", "blur", "grayscale")
#: ``blend``: ``alpha``: compositing with the matte; ``poisson`` / ``poisson_mixed``:
#: seamless cloning in the subject's edge band (:mod:`render.poisson`).
BLEND_MODES = ("alpha", "poisson", "poisson_mixed")
#: ``channels``: the picture, or the matte only.
CHANNELS = ("rgba", "alpha")
#: ``format`` of ``/v1/matte`` (``auto``: PNG when the result has transparency, else JPEG).
FORMATS = ("auto", "png", "jpg", "webp")
#: ``instances``: keep every subject found, or the largest.
INSTANCES = ("all", "largest")
#: ``backend`` of the segmentation service (``auto``: its policy picks one per request).
SEGMENTATION_BACKENDS = ("auto", "maskrcnn", "maskrcnn_v2", "modnet", "u2netp", "deeplabv3",
                         "deeplabv3_mobilenet")
#: ``BACKDROP_MATTING_BACKEND``.
MATTING_BACKENDS = ("auto", "fba", "closed_form")
#: Words accepted for true and false.
TRUE_WORDS = ("true", "1", "yes", "on")
FALSE_WORDS = ("false", "0", "no", "off")

#: The form fields ``POST /v1/matte`` reads (besides the files).
MATTE_FIELDS = (
    "bg_mode", "bg_color", "blur_radius", "channels", "format", "size", "crop", "crop_margin",
    "classes", "score_threshold", "instances", "backend", "model_size", "blend",
)
#: The file fields of ``POST /v1/matte`` besides ``image``.
MATTE_FILES = ("bg_image", "trimap", "hints")
#: The parameters the matting service passes on to the segmentation service.
SEGMENTATION_FIELDS = ("classes", "score_threshold", "instances", "backend", "model_size")
