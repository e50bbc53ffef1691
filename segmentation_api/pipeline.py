"""The segmentation pipeline: decode -> instances -> soft mask (-> trimap) -> encode. No HTTP.

:func:`segment` runs a backend on an RGB image, keeps the requested instances and combines
their soft masks; :func:`with_trimap` adds the trimap built from them; :func:`run` does the
whole request, upload bytes to the encoded answer (the 16-bit mask of ``/v1/mask`` or the
trimap of ``/v1/trimap``, PNG or uncompressed TIFF), each step timed for ``Server-Timing``,
once the worker's memory budget admits the peak :func:`peak_bytes` estimates for it
(:mod:`service_common.memory`: 503 ``overloaded`` with ``Retry-After`` beside other large
requests, 413 ``image_too_large`` when it could never fit; both before decoding).
The routes only parse HTTP and turn the :class:`SegmentAnswer` into a response
(:mod:`segmentation_api.responses`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from contract.values import Box
from contract.vocab import INSTANCES, SEGMENT_FORMATS
from service_common import memory
from service_common.errors import ApiError
from service_common.images import decode_image, encode_image, encode_mask16, probe
from trimap.from_masks import Trimap, TrimapOptions, build_trimap, combine_masks

from .backends import Backend, Instance, box_of_mask
from .backends.modnet import DEFAULT_SHORT_SIDE as MODNET_SHORT_SIDE
from .backends.modnet import input_size as modnet_input_size
from .semantic import resized_size
from .subject import AutoSubject

#: What a request may ask for: the soft mask (``/v1/mask``) or the trimap (``/v1/trimap``).
OUTPUTS = ("mask", "trimap")


@dataclass(frozen=True)
class SegmentOptions:
    """What one request asks for (already validated).

    Attributes:
        classes: class names to keep (COCO names for Mask R-CNN, VOC names for DeepLabV3).
        score_threshold: keep detections with score ``> score_threshold``, in [0, 1].
        instances: ``"all"`` or ``"largest"`` (the instance with the largest mask area).
        trimap: thresholds and band of the trimap.
        model_size: the people model's working size (shorter side, px), or ``None``.
        subject: one of :data:`~contract.vocab.SUBJECTS` (the routes pick the backend by it).
    """

    classes: tuple[str, ...] = ("person",)
    score_threshold: float = 0.6
    instances: str = "all"
    trimap: TrimapOptions = field(default_factory=TrimapOptions)
    model_size: int | None = None
    subject: str = "auto"


@dataclass(frozen=True)
class SegmentResult:
    """The outcome of :func:`segment`.

    Attributes:
        instances: the instances kept (empty when nothing was found).
        mask: their combined soft mask (per-pixel maximum), ``H x W`` float32 in [0, 1];
            ``None`` when there is no subject.
        trimap: the trimap (:func:`with_trimap`), or ``None`` (no subject, or not built).
        timings_ms: ``{"model": ...}`` (the model, selecting and combining the instances;
            with ``subject=auto`` also ``"model-NAME"`` per model that ran), plus ``"trimap"``
            after :func:`with_trimap`, in milliseconds.
        backend: the backend whose answer this is, or ``None`` (not recorded).
        reason: why that backend (``subject=auto``: which rule decided), or ``""``.
        subject: with ``subject=auto``, what the rules saw: ``"person"`` or ``"object"``
            (:class:`~segmentation_api.subject.SubjectChoice`); ``""`` otherwise.
    """

    instances: list[Instance]
    mask: np.ndarray | None
    timings_ms: dict[str, float]
    trimap: Trimap | None = None
    backend: Backend | None = None
    reason: str = ""
    subject: str = ""

    @property
    def found(self) -> bool:
        """Whether a subject was found."""
        return self.mask is not None


def select_instances(instances: list[Instance], mode: str) -> list[Instance]:
    """All instances, or only the one with the largest mask area (``mode="largest"``)."""
    if mode not in INSTANCES:
        raise ValueError(f"instances={mode!r}: expected one of {INSTANCES}")
    if mode == "largest" and len(instances) > 1:
        return [max(instances, key=lambda inst: inst.area)]
    return list(instances)


def segment(backend: Backend | AutoSubject, rgb: np.ndarray, options: SegmentOptions) -> SegmentResult:
    """Find the subjects of ``rgb`` (``H x W x 3`` uint8) and combine their soft masks.

    ``backend`` is one model, or :class:`~segmentation_api.subject.AutoSubject`, which
    chooses between two for this photo (``result.backend`` and ``result.reason`` say which
    and why). No subject (no instance kept, or none with a pixel at or above 0.5) gives a
    result with ``mask is None``.
    """
    started = time.perf_counter()
    per_model: dict[str, float] = {}
    reason = subject = ""
    if isinstance(backend, AutoSubject):
        choice = backend.choose(rgb, options.score_threshold, options.model_size)
        found, served, reason, subject = choice.instances, choice.backend, choice.reason, choice.subject
        per_model = {f"model-{name}": ms for name, ms in choice.timings_ms.items()}
    else:
        served = backend
        found = backend.predict(rgb, list(options.classes), options.score_threshold, options.model_size)
    kept = select_instances(found, options.instances)
    mask = combine_masks(np.stack([inst.mask for inst in kept])) if kept else None
    if mask is not None and not (mask >= options.trimap.subject_level).any():
        mask = None
    return SegmentResult(
        instances=kept if mask is not None else [],
        mask=mask,
        timings_ms={"model": (time.perf_counter() - started) * 1000.0, **per_model},
        backend=served,
        reason=reason,
        subject=subject,
    )


def with_trimap(result: SegmentResult, options: TrimapOptions) -> SegmentResult:
    """``result`` with its trimap (:func:`~trimap.from_masks.build_trimap`) and the time it took."""
    if result.mask is None:
        return result
    started = time.perf_counter()
    trimap = build_trimap(result.mask, options)
    timings = {**result.timings_ms, "trimap": (time.perf_counter() - started) * 1000.0}
    return replace(result, trimap=trimap, timings_ms=timings)


@dataclass(frozen=True)
class SegmentAnswer:
    """A whole request's outcome, ready to answer.

    Attributes:
        result: the instances and the soft mask (and the trimap for ``output="trimap"``).
        body: the encoded picture (16-bit mask, or 8-bit 0/128/255 trimap).
        box: the subject box: pixels >= 0.5 of the mask, or non-background of the trimap.
        width, height: the image's size in px.
        timings_ms: step -> milliseconds, in order (``decode``, ``model``, [``trimap``],
            ``encode``).
        format: the body's format, one of :data:`~contract.vocab.SEGMENT_FORMATS`.
    """

    result: SegmentResult
    body: bytes
    box: Box
    width: int
    height: int
    timings_ms: dict[str, float]
    format: str = "png"


def no_subject(options: SegmentOptions, backend: Backend | AutoSubject, reason: str = "",
               served: Backend | None = None) -> ApiError:
    """422 ``no_subject`` saying what was looked for, by which backend, above which score.

    Args:
        options: the request's options.
        backend: the model asked, or :class:`~segmentation_api.subject.AutoSubject`.
        reason: why that backend (given as the error's ``reason``), or ``""``.
        served: the model that answered last (``subject=auto``), given as the error's
            ``backend``; ``None``: ``backend``.
    """
    if isinstance(backend, AutoSubject):
        what, name = "person or salient object", f"{backend.person.name} and {backend.other.name}"
    else:
        what = ", ".join(options.classes) if backend.classes_used else "salient object"
        name = backend.name
    extra = {"reason": reason} if reason else {}
    return ApiError(
        "no_subject",
        f"no {what} found with score > {options.score_threshold:g} (backend {name})",
        **extra,
        backend=(served or backend).name,
        classes=list(options.classes),
        score_threshold=options.score_threshold,
    )


def run(backend: Backend | AutoSubject, image: bytes, options: SegmentOptions, output: str,
        max_pixels: int, fmt: str = "png") -> SegmentAnswer:
    """Decode ``image`` (limits, EXIF), segment it with ``backend`` (a model, or
    :class:`~segmentation_api.subject.AutoSubject`), encode ``output`` (one of :data:`OUTPUTS`)
    as ``fmt`` (one of :data:`~contract.vocab.SEGMENT_FORMATS`: ``png``, or ``tiff``,
    uncompressed).

    The work starts once the worker's memory budget admits :func:`peak_bytes` (checked from
    the upload's header alone, before decoding).

    Raises:
        ApiError: the upload is unusable (``invalid_image``, ``image_too_large``, ...),
            its estimated peak does not fit beside the requests in flight (503
            ``overloaded`` with ``Retry-After``) or in the worker at all (413
            ``image_too_large``), or nothing was found (422 ``no_subject``).
    """
    if output not in OUTPUTS:
        raise ValueError(f"output={output!r}: expected one of {OUTPUTS}")
    if fmt not in SEGMENT_FORMATS:
        raise ValueError(f"fmt={fmt!r}: expected one of {SEGMENT_FORMATS}")
    need = peak_bytes(backend, image, options, max_pixels)
    with memory.budget().admit(need, "this picture", "send a smaller picture (fewer pixels)"):
        return _run(backend, image, options, output, max_pixels, fmt)


def _run(backend: Backend | AutoSubject, image: bytes, options: SegmentOptions, output: str,
         max_pixels: int, fmt: str) -> SegmentAnswer:
    started = time.perf_counter()
    decoded = decode_image(image, max_pixels)
    decode_ms = (time.perf_counter() - started) * 1000.0
    result = segment(backend, decoded.rgb, options)
    if not result.found:
        raise no_subject(options, backend, result.reason, result.backend)
    if output == "trimap":
        result = with_trimap(result, options.trimap)
    started = time.perf_counter()
    if result.trimap is not None:
        body, box = encode_image(result.trimap.trimap, fmt), result.trimap.box
    else:
        body, box = encode_mask16(result.mask, fmt), box_of_mask(result.mask)
    encode_ms = (time.perf_counter() - started) * 1000.0
    return SegmentAnswer(
        result=result, body=body, box=box, width=decoded.width, height=decoded.height,
        timings_ms={"decode": decode_ms, **result.timings_ms, "encode": encode_ms}, format=fmt,
    )


# ------------------------------------------------------------------ the memory estimate

#: Peak bytes per pixel of the photo beyond decoding (:meth:`~service_common.images.
#: ImageHeader.decode_bytes`): the model's answer resized to the photo (float32, and its
#: clipped copy), the combined mask, the trimap's distance maps (``/v1/trimap``) or the
#: 16-bit mask (``/v1/mask``), and the encoded answer. Measured (2026-12-06, 2 cores, one
#: process, ``VmHWM`` above idle, the first request of a fresh process, RGB PNG of an
#: upscaled portrait, MODNet at 512 px): /v1/mask 110, 302, 537 and 1,095 MB at 2, 10, 20
#: and 40 MP; /v1/trimap 114, 331 and 1,176 MB at 2, 10 and 40 MP (``format=tiff`` less: 55,
#: 238, 479 and 946 MB, measured after a PNG request in the same process). Less MODNet's
#: 62 MB and decoding's 12 bytes, that is 13 to 15 bytes per pixel for the mask and 15 to 17
#: for the trimap; this bounds both.
SEGMENT_BYTES_PER_PIXEL = 18
#: What each further instance adds per pixel of the photo: its full-size float32 mask and
#: its layer in the stack the instances are combined from (DeepLabV3 with several classes,
#: Mask R-CNN with several detections).
INSTANCE_BYTES_PER_PIXEL = 8
#: MODNet's onnxruntime run, bytes per pixel of its input (:func:`~.backends.modnet.
#: input_size`: 512 px on the shorter side by default, ``model_size`` up to 1,024): measured
#: 62 MB at 512 x 672 (180 bytes per input pixel), 90 MB at 608 x 800, and 554 to 569 MB at
#: 1,024 x 1,344 (about 400: onnxruntime's arena grows by doubling).
MODNET_BYTES_PER_INPUT_PIXEL = 420
#: DeepLabV3's torch run, bytes per pixel of its input (shorter side ``BACKDROP_DEEPLABV3_SIZE``,
#: 520 px): measured 100 MB (MobileNetV3) and 106 MB (ResNet-101) at 520 x 693 (random
#: weights: the same layers, no class found).
DEEPLAB_BYTES_PER_INPUT_PIXEL = 320
#: The runs of the models whose input has a fixed size, bytes: U^2-Net-p (320 x 320)
#: measured 203 MB on its first request, the selfie segmenter (256 x 256) 7 MB, Mask R-CNN
#: (800 px on the shorter side; the tests' weights, 1 to 20 detections) 552 to 602 MB; any
#: other backend :data:`OTHER_MODEL_BYTES`, a guess (not measured).
FIXED_MODEL_BYTES = {"u2netp": 210 * 1024 * 1024, "selfie": 16 * 1024 * 1024,
                     "maskrcnn": 640 * 1024 * 1024, "maskrcnn_v2": 640 * 1024 * 1024}
OTHER_MODEL_BYTES = 1024 * 1024 * 1024
#: Detections Mask R-CNN is assumed to keep: each is a full-size mask, and their number is
#: only known once the model has run; a photo with more detections above the threshold (a
#: crowd) goes past the estimate by :data:`INSTANCE_BYTES_PER_PIXEL` per pixel each.
MASKRCNN_INSTANCES = 4


def model_bytes(backend: Backend, height: int, width: int, options: SegmentOptions) -> int:
    """Estimated peak of one backend's run on a ``height x width`` photo beyond
    :data:`SEGMENT_BYTES_PER_PIXEL`: the network at its working size, and the full-size
    masks of its instances beyond the first."""
    name = backend.name
    pixels = height * width
    if name == "modnet":
        side = options.model_size or getattr(backend, "short_side", MODNET_SHORT_SIDE)
        h, w = modnet_input_size(height, width, side)
        return h * w * MODNET_BYTES_PER_INPUT_PIXEL
    if name.startswith("deeplabv3"):
        h, w = resized_size(height, width, int(getattr(backend, "short_side", 520)))
        classes = max(1, len(options.classes))
        return h * w * DEEPLAB_BYTES_PER_INPUT_PIXEL + (classes - 1) * pixels * INSTANCE_BYTES_PER_PIXEL
    if name.startswith("maskrcnn"):
        extra = (MASKRCNN_INSTANCES - 1) * pixels * INSTANCE_BYTES_PER_PIXEL
        return FIXED_MODEL_BYTES.get(name, OTHER_MODEL_BYTES) + extra
    return FIXED_MODEL_BYTES.get(name, OTHER_MODEL_BYTES)


def peak_bytes(backend: Backend | AutoSubject, image: bytes, options: SegmentOptions,
               max_pixels: int) -> int:
    """Estimated peak memory a request adds to its worker, bytes, from the upload's header
    alone (:func:`service_common.images.probe`, which also applies the decode budget and
    ``max_pixels``): decoding the photo, :data:`SEGMENT_BYTES_PER_PIXEL` per pixel of it,
    and the model's run (:func:`model_bytes`); ``subject=auto`` may run both of its models,
    so it counts both.

    Against the measured peaks (see the constants; RGB PNG, default options): MODNet 195,
    424, 710 and 1,282 MB at 2, 10, 20 and 40 MP for 110 to 114, 302 to 331, 537 and 1,095
    to 1,176 MB measured (+9 to +77 %: at 2 MP the allowance for MODNet's largest input
    dominates); ``subject=auto`` with MODNet and U^2-Net-p 405, 634 and 1,492 MB at 2, 10
    and 40 MP for 310, 502 and 1,185 MB measured (+26 to +31 %).
    """
    header = probe(image, max_pixels, "image")
    height, width = header.height, header.width
    pixels = header.pixels
    need = header.decode_bytes + pixels * SEGMENT_BYTES_PER_PIXEL
    if isinstance(backend, AutoSubject):
        need += model_bytes(backend.person, height, width, options)
        need += model_bytes(backend.other, height, width, options)
    else:
        need += model_bytes(backend, height, width, options)
    return need
