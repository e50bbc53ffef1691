"""The allowed values of Backdrop's enumerated parameters and the fields of ``/v1/matte``.

One place for each list: the services validate against it, the OpenAPI document is built
from it, the clients offer it on the command line.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from .formats import RESULT_FORMATS

#: ``bg_mode``: what goes behind the subject.
BG_MODES = ("image", "color", "transparent", "blur", "grayscale")
#: ``blend``: ``alpha``: compositing with the matte; ``poisson`` / ``poisson_mixed``:
#: seamless cloning in the subject's edge band (:mod:`render.poisson`).
BLEND_MODES = ("alpha", "poisson", "poisson_mixed")
#: ``foreground``: how the subject's colour is estimated where it is see-through: ``best``
#: (multi-level estimation; photos) or ``fast`` (blur fusion, a few box blurs; video).
FOREGROUND_ESTIMATES = ("best", "fast")
#: ``channels``: the picture, or the matte only.
CHANNELS = ("rgba", "alpha")
#: ``format`` of ``/v1/matte`` (``auto``: PNG when the result has transparency, else JPEG);
#: the formats themselves are described in :mod:`contract.formats`.
FORMATS = ("auto", *RESULT_FORMATS)
#: ``instances``: keep every subject found, or the largest.
INSTANCES = ("all", "largest")
#: ``backend`` of the segmentation service (``auto``: its policy picks one per request): the
#: names its model modules register (:mod:`service_common.registry`; a test holds them equal),
#: repeated here for the clients, which never import a service.
SEGMENTATION_BACKENDS = ("auto", "maskrcnn", "maskrcnn_v2", "modnet", "u2netp", "deeplabv3",
                         "deeplabv3_mobilenet", "selfie")
#: ``subject``: what the photo is of, which decides the segmentation model: ``auto`` (the
#: segmentation service decides per photo from what its models see), ``person`` (the people
#: model) or ``object`` (the salient-object model, or every class but people).
SUBJECTS = ("auto", "person", "object")
#: ``BACKDROP_MATTING_BACKEND``: likewise the matting service's registered names.
MATTING_BACKENDS = ("auto", "fba", "closed_form")
#: ``X-Mask-Kind`` of ``/v1/mask``: ``matte`` (a matting model's alpha, right to the hair) or
#: ``segmentation`` (a segmentation or saliency mask, right in the large but not at the edge).
MASK_KINDS = ("matte", "segmentation")
#: ``shadow``: none, or the soft drop shadow cast from the matte (:mod:`render.shadow`).
SHADOWS = ("none", "drop")
#: Words accepted for true and false.
TRUE_WORDS = ("true", "1", "yes", "on")
FALSE_WORDS = ("false", "0", "no", "off")


@dataclass(frozen=True)
class SegmentationOptions:
    """The parameters a matting request passes on to the segmentation service, as the
    clients send them (``None`` = not sent: the service's default). Values are checked by
    whoever builds one (:mod:`contract.parse`); this only carries and spells them.

    Attributes:
        classes: comma-separated class names (``"person,dog"``).
        score_threshold: in ``[0, 1]``.
        instances: one of :data:`INSTANCES`.
        backend: one of :data:`SEGMENTATION_BACKENDS`; ``auto`` is the default, so not sent.
        model_size: the people model's working size, px.
        subject: one of :data:`SUBJECTS`; ``auto`` is the default, so not sent.
    """

    classes: str | None = None
    score_threshold: float | None = None
    instances: str | None = None
    backend: str | None = None
    model_size: int | None = None
    subject: str | None = None

    def as_form(self) -> dict[str, str]:
        """The form fields of the values given, in :data:`SEGMENTATION_FIELDS`' order."""
        return {name: _SPELLED.get(name, str)(value) for name in SEGMENTATION_FIELDS
                if (value := getattr(self, name)) is not None}


#: How a field's value is written into a form, where ``str`` would not do.
_SPELLED = {"score_threshold": lambda value: repr(float(value)), "model_size": lambda value: str(int(value))}

#: The parameters the matting service passes on to the segmentation service.
SEGMENTATION_FIELDS = tuple(f.name for f in fields(SegmentationOptions))
#: The form fields ``POST /v1/matte`` reads (besides the files).
MATTE_FIELDS = (
    "bg_mode", "bg_color", "blur_radius", "channels", "format", "size", "crop", "crop_margin",
    *SEGMENTATION_FIELDS, "blend", "foreground", "scale", "position", "roi", "shadow", "shadow_opacity",
)
#: The file fields of ``POST /v1/matte`` besides ``image``.
MATTE_FILES = ("bg_image", "trimap", "hints", "prior")
#: The form fields ``POST /v1/mask`` and ``POST /v1/trimap`` read: those the matting service
#: passes on, the trimap rule's (:class:`trimap.from_masks.TrimapOptions`) and the answer's
#: ``format``.
SEGMENT_FIELDS = (*SEGMENTATION_FIELDS, "fg_threshold", "bg_threshold", "band", "format")
#: ``format`` of ``/v1/mask`` and ``/v1/trimap``: PNG (the default) or uncompressed TIFF in
#: one strip (what the matting service asks a segmentation service on its machine for:
#: :func:`contract.transport.answer_format`); both lossless, the same values.
SEGMENT_FORMATS = ("png", "tiff")
#: Their one file field.
SEGMENT_FILES = ("image",)
