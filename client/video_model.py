"""Which people model the video client asks for, and how often.

Two ways to find a person in a frame, measured on the dev clips (docs/video.md):

* **the selfie segmenter** (``backend=selfie``, MediaPipe's, about 4 ms a frame at 256 x 256):
  cheap enough to run on every frame, so no matte is carried between frames and nothing
  lags; its coarse edge is refined at full resolution by the matting service, as MODNet's
  is. It knows people only: on the dev objects its matte is far off (am_GT04: MAD 51
  against 8 with MODNet).
* **the service's own models** (MODNet for people, the salient-object model U^2-Net-p;
  150-350 ms a frame), on every third frame with the matte carried along the motion between
  (:mod:`client.motion`).

So the first frame decides, once per video, with ``subject=auto``: when the segmentation
service says it shows a person (``X-Segmentation-Subject: person``: MODNet's matte looked like
one) and the service has the selfie segmenter loaded, every frame goes to it; otherwise every
keyframe goes to the model that served the first frame (``X-Segmentation-Backend``), so that
a keyframe in mid-video cannot switch models (with ``subject=auto`` on each keyframe the
salient-object model took over on some keyframes of a dev object clip and matted the cars
passing behind it) and does not run both. ``--backend`` and ``--subject`` decide
instead when given. The first frame is always frame 0, also for a resumed job, so a resumed
job makes the same choice.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

#: The people model for video, when the service has it (:mod:`segmentation_api.backends.selfie`).
VIDEO_BACKEND = "selfie"
#: The keyframe interval with the video people model: the model on every frame.
FAST_MODEL_INTERVAL = 1
#: ... and with the service's own model: every third frame, the matte carried between.
SLOW_MODEL_INTERVAL = 3


@dataclass(frozen=True)
class ModelChoice:
    """The people model for a whole video.

    Attributes:
        backend: the ``backend`` every frame asks for; ``None``: the service's own choice.
        keyframe_interval: the full path on every this many frames (:mod:`client.motion`).
        reason: why, in a sentence (logged).
    """

    backend: str | None
    keyframe_interval: int
    reason: str


def loaded_backends(ready: Mapping[str, Any]) -> frozenset[str]:
    """The segmentation backends a matting service's ``/readyz`` answer lists (an answer
    without a well-formed list gives none)."""
    segmentation = ready.get("segmentation") if isinstance(ready, Mapping) else None
    names = segmentation.get("backends") if isinstance(segmentation, Mapping) else None
    if not isinstance(names, list):
        return frozenset()
    return frozenset(n for n in names if isinstance(n, str))


def choose(*, backend: str | None, subject: str | None, classes: str | None, interval: int | None,
           loaded: Callable[[], Collection[str]],
           first_frame: Callable[[], tuple[str, str]]) -> ModelChoice:
    """The people model and keyframe interval of a video (see the module docstring).

    Args:
        backend, subject, classes, interval: the job's ``--backend``, ``--subject``,
            ``--classes`` and ``--keyframe-interval`` (``None``: not given).
        loaded: the segmentation backends the service has loaded (asked only when needed).
        first_frame: matte the first frame with ``subject=auto`` and return its
            ``(X-Segmentation-Subject, X-Segmentation-Backend)`` (``person``, ``object`` or
            ``""``; the model's name or ``""``); called only when needed.
    """
    def pick(name: str | None, why: str) -> ModelChoice:
        default = FAST_MODEL_INTERVAL if name == VIDEO_BACKEND else SLOW_MODEL_INTERVAL
        return ModelChoice(name, interval if interval is not None else default, why)

    if backend is not None:
        return pick(backend, f"--backend {backend}")
    if subject == "object" or classes not in (None, "person"):
        return pick(None, "not people (--subject or --classes): the service's own model")
    if VIDEO_BACKEND not in loaded():
        return pick(None, f"the service has no {VIDEO_BACKEND} model loaded "
                    "(models/selfie_segmentation.tflite; `make models-offline` fetches it): its own "
                    "people model on keyframes, several times slower")
    if subject == "person":
        return pick(VIDEO_BACKEND, "--subject person")
    seen, served = first_frame()
    if seen == "person":
        return pick(VIDEO_BACKEND, "the first frame shows a person")
    return pick(served or None, f"the first frame does not look like a person ({seen or 'no subject'}): "
                f"{served or 'the service'}'s model on keyframes")
