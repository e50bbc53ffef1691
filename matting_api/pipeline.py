"""The one matting pipeline behind ``POST /v1/matte`` and ``POST /v1.0/removebg``.

decode (limits, EXIF) -> scale down to the size cap -> trimap (and prior) -> matting backend
-> compositing (alpha, or Poisson blending) -> encode.

Where the trimap comes from (:func:`guide`):

* the request carries one: it is used as it is (normalised), no prior;
* else the segmentation service's soft mask (``/v1/mask``). A *matte* (MODNet's alpha) is the
  prior: the trimap is its refinement band (:func:`trimap.from_prior.prior_trimap`) and the
  matting backend refines the prior there. A *segmentation* mask (U^2-Net-p, Mask R-CNN,
  DeepLabV3) is right in the large but not at the edge: the trimap is the segmentation rule
  (:func:`trimap.from_masks.build_trimap`, a band that scales with the subject) and the
  matting backend decides the band from the photo alone. Measured on the tuning half of the
  dev photos with U^2-Net-p masks: closed-form matting of that wide band, SAD 10.2, against
  11.0 for the refinement of the mask in its own band (the mask is confidently wrong in hair
  and fur, and a data term towards it keeps the error); see docs/refinement.md.

Each step is timed for the ``Server-Timing`` header. The routes only parse HTTP into
a :class:`MatteRequest` and turn the :class:`MatteResult` into a response.

The size cap is applied to the *input* before any work: the result has the capped size and
segmentation and matting run on fewer pixels. A given trimap is checked against the
uploaded image's size first and scaled with it (nearest neighbour).
"""

from __future__ import annotations

import io
import logging
import time
import zipfile
from dataclasses import dataclass, field

import numpy as np

from contract.formats import OUTPUT_FORMATS
from contract.parse import InvalidValue
from contract.values import MIN_ROI_PX, Box
from render import render
from render.composite import flatten, has_transparency
from render.geometry import (
    PLACE_BYTES_PER_PIXEL,
    crop,
    crop_box,
    fit_size,
    place_subject,
    resize_image,
    resize_mask_nearest,
    subject_box,
)
from render.poisson import CLONE_BYTES_PER_PIXEL, MAX_CLONE_PIXELS
from render.shadow import SHADOW_BYTES_PER_PIXEL, Shadow
from service_common import memory
from service_common.errors import ApiError
from service_common.images import (
    decode_image,
    decode_luma_alpha,
    decode_mask,
    encode_image,
    mime_type,
    probe,
)
from trimap.encoding import BACKGROUND, FOREGROUND, normalise
from trimap.from_masks import build_trimap
from trimap.from_prior import prior_trimap
from trimap.hints import apply_hints, hint_counts, hints_from_pixels

from .backends import MattingBackend
from .options import MatteOptions
from .segmentation_client import SegmentationClient

log = logging.getLogger(__name__)

#: Pixels whose alpha rounds to 0 in an 8-bit output are "empty" (subject box, crop).
VISIBLE_ALPHA = 0.5 / 255.0
GIVEN_TRIMAP = "given-trimap"
#: ``X-Segmentation-Backend`` when the request carried its own prior.
GIVEN_PRIOR = "given-prior"
#: ``X-Segmentation-Backend`` when segmentation found nothing and the keep strokes served.
HINTS_ONLY = "hints-only"
ZIP_MIME = OUTPUT_FORMATS["zip"].mime
#: The WebP format's largest side, px.
WEBP_MAX_SIDE = 16383


@dataclass(frozen=True)
class MatteRequest:
    """What a route hands to the pipeline.

    Attributes:
        image: the uploaded image's bytes.
        options: validated options (``options.format`` may also be ``"zip"``, remove.bg's).
        bg_image: bytes of the background image, if any.
        trimap: bytes of a user-given trimap (skips segmentation), if any.
        hints: bytes of touch-up strokes (:mod:`trimap.hints`), if any.
        prior: bytes of a soft mask of the subject the client already has (skips the
            segmentation service; refined in its band like a MODNet matte), if any. The video
            client sends the last keyframe's matte carried along the motion.
    """

    image: bytes
    options: MatteOptions
    bg_image: bytes | None = None
    trimap: bytes | None = None
    hints: bytes | None = None
    prior: bytes | None = None


@dataclass
class MatteResult:
    """The encoded result and what the response headers say about it.

    Attributes:
        body: the file's bytes.
        format: ``png``, ``jpg``, ``webp`` or ``zip``.
        width, height: the result's size in px.
        foreground: the subject's box ``(left, top, width, height)`` in result pixels;
            ``(0, 0, 0, 0)`` when nothing is visible.
        segmentation_backend: the segmentation backend, or ``given-trimap``.
        segmentation_reason: why that backend served (the segmentation service's
            ``X-Segmentation-Reason``).
        matting_backend: the matting backend's registered name (``fba``, ``closed_form``).
        timings_ms: step name -> milliseconds, in pipeline order.
        hints: ``(keep, remove)`` pixels the touch-up strokes covered (at the working
            size), or ``None`` without hints.
        segmentation_subject: with ``subject=auto``, what the segmentation service's rules
            saw (``person`` or ``object``: ``X-Segmentation-Subject``), else ``""``.
    """

    body: bytes
    format: str
    width: int
    height: int
    foreground: Box
    segmentation_backend: str
    segmentation_reason: str
    matting_backend: str
    timings_ms: dict[str, float] = field(default_factory=dict)
    hints: tuple[int, int] | None = None
    segmentation_subject: str = ""

    @property
    def mime(self) -> str:
        return ZIP_MIME if self.format == "zip" else mime_type(self.format)

    def server_timing(self) -> str:
        """The ``Server-Timing`` header value."""
        parts = []
        for name, ms in self.timings_ms.items():
            entry = f"{name};dur={ms:.1f}"
            if name == "segmentation" and self.segmentation_backend == GIVEN_TRIMAP:
                entry += ';desc="skipped: given trimap"'
            parts.append(entry)
        return ", ".join(parts)


class _Timer:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    def step(self, name: str, started: float) -> float:
        now = time.perf_counter()
        self.timings[name] = (now - started) * 1000.0
        return now


class Pipeline:
    """Runs a :class:`MatteRequest` with one matting backend and one segmentation client.

    Args:
        backend: the worker's matting backend.
        segmentation: the worker's segmentation client.
        max_pixels: pixel limit of every decoded upload (``BACKDROP_MAX_PIXELS``).
    """

    def __init__(
        self, backend: MattingBackend, segmentation: SegmentationClient, max_pixels: int
    ) -> None:
        self.backend = backend
        self.segmentation = segmentation
        self.max_pixels = max_pixels

    def run(self, req: MatteRequest, request_id: str | None = None) -> MatteResult:
        """The whole pipeline, once the worker's memory budget admits its estimated peak
        (:func:`peak_bytes`; 503 ``overloaded`` or 413 otherwise, before any decoding);
        raises :class:`ApiError` for anything the client can fix."""
        with memory.budget().admit(peak_bytes(req, self.max_pixels), "this picture"):
            return self._run(req, request_id)

    def _run(self, req: MatteRequest, request_id: str | None) -> MatteResult:
        opts = req.options
        timer = _Timer()
        t = time.perf_counter()
        image = decode_image(req.image, self.max_pixels, "image")
        rgb = image.rgb
        bg_rgb = None
        if req.bg_image is not None and opts.bg_mode == "image":
            bg_rgb = decode_image(req.bg_image, self.max_pixels, "bg_image").rgb
        given = hints = given_prior = None
        seen = ""
        if req.trimap is not None and req.prior is not None:
            raise ApiError("invalid_parameter", "send either a trimap or a prior, not both: a trimap "
                           "says where the subject surely is, a prior how likely each pixel is to "
                           "be subject", field="prior")
        if req.trimap is not None:
            given = self._given_trimap(req.trimap, image.width, image.height)
        if req.prior is not None:
            given_prior = self._given_prior(req.prior, image.width, image.height)
        if req.hints is not None:
            hints = self._hints(req.hints, image.width, image.height)
        width, height = fit_size(image.width, image.height, opts.size)
        rgb = resize_image(rgb, width, height)
        if given is not None:
            given = resize_mask_nearest(given, width, height)
        if hints is not None:
            hints = resize_mask_nearest(hints, width, height)
        if given_prior is not None:
            given_prior = np.clip(resize_image(given_prior, width, height), 0.0, 1.0)
        region = None if opts.roi is None else roi_box(opts, (image.width, image.height), (width, height))
        t = timer.step("decode", t)

        if given is not None:
            trimap, prior = given, None
            seg_backend, seg_reason = GIVEN_TRIMAP, "the request carried a trimap"
        elif given_prior is not None:
            trimap, prior = guide(given_prior, "matte")
            seg_backend, seg_reason = GIVEN_PRIOR, "the request carried a prior"
        else:
            try:
                seg = self.segmentation.mask(rgb if region is None else np.ascontiguousarray(
                    crop(rgb, region)), opts.segmentation.as_form(), request_id)
            except ApiError as exc:
                if exc.code != "no_subject" or hints is None or not (hints == FOREGROUND).any():
                    raise
                # Nothing found, but the user marked what to keep: an empty matte as the
                # prior, and the strokes define the subject.
                trimap = np.full((height, width), BACKGROUND, dtype=np.uint8)
                prior = np.zeros((height, width), dtype=np.float32)
                seg_backend = HINTS_ONLY
                seg_reason = f"{exc.message}; the keep strokes define the subject"
            else:
                seg_backend, seg_reason, seen = seg.backend, seg.reason, seg.subject
                t = timer.step("segmentation", t)
                mask = seg.mask if region is None else paste(seg.mask, region, (height, width))
                trimap, prior = guide(mask, seg.kind)
        if hints is not None:
            trimap, prior = apply_hints(trimap, prior, hints)
        outside = None
        if region is not None:  # only the region is searched: the rest is background
            outside = ~paste(np.ones((region.height, region.width), dtype=bool), region, (height, width))
            trimap = np.where(outside, BACKGROUND, trimap).astype(np.uint8)
            prior = None if prior is None else np.where(outside, 0.0, prior).astype(np.float32)
        t = timer.step("trimap" if given is None else "segmentation", t)

        fg, alpha = self.backend.matte(rgb, trimap, prior, foreground=opts.foreground)
        if outside is not None:
            alpha = np.where(outside, 0.0, alpha).astype(np.float32)
        t = timer.step("matting", t)

        subject = subject_box(alpha, VISIBLE_ALPHA)
        frame = None
        if opts.crop and subject is not None:
            frame = crop_box(subject, opts.crop_margin, (width, height))
        foreground = Box(0, 0, 0, 0) if subject is None else (
            subject if frame is None else subject.within(frame))
        if subject is not None and (opts.scale is not None or opts.position is not None):
            rgb, fg, alpha, foreground = place_subject(
                rgb, fg, alpha, subject, frame or Box(0, 0, width, height), opts.scale, opts.position)
            frame = None
        pixels = render(
            rgb, fg, alpha, bg_mode=opts.bg_mode, blend=opts.blend, channels=opts.channels,
            bg_color=opts.bg_color, bg_image=bg_rgb, blur_radius=opts.blur_radius, box=frame,
            drop_shadow=None if opts.shadow == "none" else Shadow(opacity=opts.shadow_opacity / 100.0),
        )
        t = timer.step("compositing", t)

        fmt, body = encode_result(pixels, opts.format)
        timer.step("encode", t)
        out_h, out_w = pixels.shape[:2]
        return MatteResult(
            body=body, format=fmt, width=out_w, height=out_h, foreground=foreground,
            segmentation_backend=seg_backend, segmentation_reason=seg_reason,
            matting_backend=self.backend.name,
            timings_ms=timer.timings,
            hints=None if hints is None else hint_counts(hints),
            segmentation_subject=seen,
        )

    def _given_trimap(self, data: bytes, width: int, height: int) -> np.ndarray:
        mask = decode_mask(data, self.max_pixels, "trimap")
        _check_size(mask.shape, width, height, "invalid_trimap", "the trimap", "they must be the same size")
        trimap = normalise(mask)
        if not (trimap == FOREGROUND).any():
            raise ApiError(
                "invalid_trimap",
                "the trimap has no foreground (255) pixels; mark the sure subject white",
            )
        return trimap


    def _given_prior(self, data: bytes, width: int, height: int) -> np.ndarray:
        """The ``prior`` upload as ``H x W`` float32 in ``[0, 1]`` (its luma / 255)."""
        mask = decode_mask(data, self.max_pixels, "prior")
        _check_size(mask.shape, width, height, "invalid_parameter", "the prior", "they must be the same size",
                    field="prior")
        if not (mask >= 128).any():
            raise ApiError("no_subject", "the prior has no pixel of 128 or more: it marks no subject; "
                           "send the frame without a prior to find the subject", field="prior")
        return mask.astype(np.float32) / 255.0

    def _hints(self, data: bytes, width: int, height: int) -> np.ndarray:
        luma, alpha = decode_luma_alpha(data, self.max_pixels, "hints")
        _check_size(luma.shape, width, height, "invalid_hints", "the hints image",
                    "draw the strokes on an image of the photo's size")
        return hints_from_pixels(luma, alpha)


def _check_size(shape: tuple[int, ...], width: int, height: int, code: str, what: str, advice: str,
                **details: str) -> None:
    """Raise :class:`ApiError` ``code`` (with ``details``) unless an upload of ``shape``
    (``H x W``; ``what`` names it) is the image's size, ``width x height``; ``advice`` says
    what to do."""
    if shape != (height, width):
        raise ApiError(code, f"{what} is {shape[1]}x{shape[0]} but the image is {width}x{height}; {advice}",
                       **details)


def roi_box(opts: MatteOptions, image_size: tuple[int, int], working_size: tuple[int, int]) -> Box:
    """The request's ``roi`` in the working image's pixels.

    Raises:
        InvalidValue: field ``roi``, when the region is outside the image or too small to
            search (under :data:`~contract.values.MIN_ROI_PX` px a side once scaled).
    """
    assert opts.roi is not None
    box = opts.roi.box(image_size, working_size)
    if box.empty:
        raise InvalidValue("roi", f"{opts.roi.text()} lies outside the {image_size[0]}x{image_size[1]} "
                           "image; give corners inside it (px of the uploaded image, or %)")
    if min(box.width, box.height) < MIN_ROI_PX:
        raise InvalidValue("roi", f"{opts.roi.text()} is {box.width}x{box.height} px at the working size "
                           f"{working_size[0]}x{working_size[1]}; make the region at least {MIN_ROI_PX} "
                           "px each way")
    return box


def paste(mask: np.ndarray, box: Box, shape: tuple[int, int]) -> np.ndarray:
    """``mask`` (the size of ``box``) in a zero array of ``shape`` at ``box``."""
    out = np.zeros(shape, dtype=mask.dtype)
    out[box.top:box.bottom, box.left:box.right] = mask
    return out


def guide(mask: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray | None]:
    """The trimap, and the prior to refine (``None``: none), of a soft mask of ``kind``
    (``"matte"`` or ``"segmentation"``; see the module docstring).

    Args:
        mask: ``H x W`` float32 in ``[0, 1]`` with a pixel >= 0.5.
        kind: ``X-Mask-Kind`` of the answer.

    Returns:
        ``(trimap H x W uint8 0/128/255, prior or None)``.
    """
    if kind == "matte":
        return prior_trimap(mask), mask
    built = build_trimap(mask)
    if built is None:  # the service checked a pixel >= 0.5; keep the contract anyway
        raise ApiError("segmentation_bad_response", "the segmentation mask has no subject")
    return built.trimap, None


def choose_format(pixels: np.ndarray, requested: str) -> str:
    """``auto`` -> PNG for a matte or an image with transparency, else JPEG."""
    if requested != "auto":
        return requested
    if pixels.ndim == 2 or has_transparency(pixels):
        return "png"
    return "jpg"


def encode_result(pixels: np.ndarray, requested: str) -> tuple[str, bytes]:
    """Encode the rendered result.

    Args:
        pixels: ``H x W`` (matte), ``H x W x 3`` or ``H x W x 4`` uint8.
        requested: ``auto``, ``png``, ``jpg``, ``webp`` or ``zip`` (remove.bg's
            ``color.jpg`` + ``alpha.png``).

    Returns:
        ``(format, bytes)``. JPEG has no alpha: a transparent result is flattened over white
        (remove.bg does the same); an opaque RGBA result just loses its alpha channel.
    """
    if requested == "zip":
        return "zip", _zip(pixels)
    fmt = choose_format(pixels, requested)
    if pixels.ndim == 3 and pixels.shape[2] == 4 and (fmt == "jpg" or not has_transparency(pixels)):
        pixels = flatten(pixels) if has_transparency(pixels) else pixels[..., :3]
    if fmt == "webp" and max(pixels.shape[:2]) > WEBP_MAX_SIDE:
        raise ApiError("invalid_parameter", f"format=webp holds at most {WEBP_MAX_SIDE} px per side "
                       f"and the result is {pixels.shape[1]}x{pixels.shape[0]}; ask for format=png "
                       f"or jpg, or a smaller size (size={WEBP_MAX_SIDE})", field="format")
    if fmt == "webp" and pixels.ndim == 2:
        pixels = np.repeat(pixels[..., None], 3, axis=2)  # WebP has no greyscale mode
    return fmt, encode_image(np.ascontiguousarray(pixels), fmt)


def _zip(pixels: np.ndarray) -> bytes:
    """remove.bg's zip: ``color.jpg`` (the colours, opaque) and ``alpha.png`` (the matte)."""
    if pixels.ndim == 2:
        raise ApiError("invalid_parameter", "format=zip needs channels=rgba", field="format")
    colour = pixels[..., :3]
    opaque = np.full(pixels.shape[:2], 255, dtype=np.uint8)
    alpha = pixels[..., 3] if pixels.shape[2] == 4 else opaque
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("color.jpg", encode_image(np.ascontiguousarray(colour), "jpg"))
        zf.writestr("alpha.png", encode_image(np.ascontiguousarray(alpha), "png"))
    return buf.getvalue()


#: Peak bytes per working pixel of a matting request beyond decoding (resize, segmentation
#: hop, trimap, rendering, encoding), and what the matting solve adds at most (closed-form
#: matting solves at most BACKDROP_CLOSED_FORM_MAX_UNKNOWN pixels at once), measured with
#: ``bench/memory_budget.py --calibrate 2,10,20,40`` on closed-form matting: 247, 463, 721 and
#: 1,466 MB above the idle worker, which this bounds by 13 to 38 %.
MATTE_BYTES_PER_PIXEL = 28
SOLVE_BYTES_PER_PIXEL = 100
SOLVE_MAX_BYTES = 200 * 1024 * 1024


def peak_bytes(req: MatteRequest, max_pixels: int) -> int:
    """Estimated peak memory a request adds to its worker, bytes, from its uploads' headers
    alone (:func:`service_common.images.probe`, which also applies the decode budget): the
    decoding of every upload, :data:`MATTE_BYTES_PER_PIXEL` per working pixel, the solve
    (:data:`SOLVE_BYTES_PER_PIXEL`, at most :data:`SOLVE_MAX_BYTES`), and the Poisson clone
    (at most :data:`render.poisson.MAX_CLONE_PIXELS` pixels) when asked for."""
    opts = req.options
    image = probe(req.image, max_pixels, "image")
    width, height = fit_size(image.width, image.height, opts.size)
    working = width * height
    need = image.decode_bytes + working * MATTE_BYTES_PER_PIXEL
    need += min(working * SOLVE_BYTES_PER_PIXEL, SOLVE_MAX_BYTES)
    uploads = ((req.bg_image if opts.bg_mode == "image" else None, "bg_image"),
               (req.trimap, "trimap"), (req.hints, "hints"), (req.prior, "prior"))
    for data, what in uploads:
        if data is not None:
            need += probe(data, max_pixels, what).decode_bytes
    if opts.blend != "alpha":
        need += min(working, MAX_CLONE_PIXELS) * CLONE_BYTES_PER_PIXEL
    if opts.scale is not None or opts.position is not None:
        need += working * PLACE_BYTES_PER_PIXEL
    if opts.shadow != "none":
        need += working * SHADOW_BYTES_PER_PIXEL
    return need
