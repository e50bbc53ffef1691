"""``subject=auto``: the people model or the object model, decided per photo from what they see.

The people model (MODNet) runs first. Its matte is kept alone when it looks like a person:
a region found (:func:`~segmentation_api.backends.base.score_of` above the request's
threshold), confident (score at least :data:`PERSON_SCORE`), of a size a person takes
(at least :data:`PERSON_MIN_AREA` of the photo) and hard-edged (at most :data:`PERSON_MAX_SOFT`
of its region is soft, ``0.05 < alpha < 0.95``). A photo of a person pays for MODNet only.

Otherwise the object model (U^2-Net-p) runs too, and the two answers are compared:

* MODNet found nothing: the object model's answer (it finds the salient object whatever it
  is);
* the object model found nothing: MODNet's;
* the object model's region holds MODNet's (at least :data:`HOLDS` of MODNet's region lies
  inside it) and is clearly larger (at least :data:`GROWTH` times): MODNet matted a part of
  a larger object, so the object model's answer;
* else MODNet's: both saw the same subject, or they disagree and MODNet's matte is the
  better bet (its edge is a matte, the object model's a coarse 320 px mask).

Why MODNet wins ties: on the dev objects (``bench/subject_choice.py``) MODNet's matte refined
by the matting step beats the object model's mask on every photo of the tuning half (SAD 1.1
vs 1.8 to 9.3 vs 41.3, the pencil holder, where the object model adds the clock behind it),
so the switch needs strong evidence. The thresholds: :data:`PERSON_MAX_SOFT` and
:data:`PERSON_SCORE` from people (the sample portrait and frames of the dev videos: at most
5.2 % soft, score at least 0.99); :data:`GROWTH` from the tuning half (the pencil holder's
object region is 1.31 times MODNet's and must stay with MODNet). The reporting half was
not looked at to set them. ``X-Segmentation-Reason`` says which rule decided, with the
figures.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from .backends import Backend, Instance

#: Least MODNet score (mean alpha over its region) of a person.
PERSON_SCORE = 0.98
#: Largest share of MODNet's region that may be soft (``0.05 < alpha < 0.95``) for a person.
PERSON_MAX_SOFT = 0.08
#: Least share of the photo MODNet's region covers for a person.
PERSON_MIN_AREA = 0.02
#: Share of MODNet's region inside the object model's region for "it holds it".
HOLDS = 0.9
#: How many times larger the object model's region must be for "MODNet matted a part".
GROWTH = 1.5
#: Alpha strictly between these is soft.
SOFT_LOW, SOFT_HIGH = 0.05, 0.95


@dataclass(frozen=True)
class MatteSigns:
    """What a soft mask says about its subject.

    Attributes:
        score: the instance's score in [0, 1] (0: nothing found).
        area: share of the photo with ``mask >= 0.5``, in [0, 1].
        soft: share of that region's size that is soft (``0.05 < mask < 0.95``), >= 0.
    """

    score: float
    area: float
    soft: float

    @classmethod
    def of(cls, instances: list[Instance], shape: tuple[int, int]) -> MatteSigns:
        """The signs of the first of ``instances`` (none: all zero) in a photo of ``shape``."""
        if not instances:
            return cls(0.0, 0.0, 0.0)
        mask = instances[0].mask
        region = int(np.count_nonzero(mask >= 0.5))
        soft = int(np.count_nonzero((mask > SOFT_LOW) & (mask < SOFT_HIGH)))
        return cls(instances[0].score, region / float(shape[0] * shape[1]), soft / max(region, 1))

    @property
    def person_like(self) -> bool:
        """Whether a people model's matte with these signs is clearly a person."""
        return self.score >= PERSON_SCORE and self.area >= PERSON_MIN_AREA and self.soft <= PERSON_MAX_SOFT

    def text(self) -> str:
        """``score 0.99, 27% of the photo, 4% soft``."""
        return f"score {self.score:.2f}, {self.area:.0%} of the photo, {self.soft:.0%} soft"


@dataclass(frozen=True)
class Overlap:
    """How a people model's region (``mask >= 0.5``) and an object model's relate.

    Attributes:
        iou: intersection over union, in [0, 1].
        held: share of the people model's region inside the object model's, in [0, 1].
        growth: the object model's region size over the people model's (>= 0).
    """

    iou: float
    held: float
    growth: float

    @classmethod
    def of(cls, person: np.ndarray, other: np.ndarray) -> Overlap:
        """The overlap of two ``H x W`` soft masks in [0, 1]."""
        a, b = person >= 0.5, other >= 0.5
        inter = int(np.count_nonzero(a & b))
        union = int(np.count_nonzero(a | b))
        size_a, size_b = int(np.count_nonzero(a)), int(np.count_nonzero(b))
        return cls(inter / max(union, 1), inter / max(size_a, 1), size_b / max(size_a, 1))

    @property
    def part_of_larger(self) -> bool:
        """Whether the people model matted a part of the object model's larger object."""
        return self.held >= HOLDS and self.growth >= GROWTH


@dataclass(frozen=True)
class SubjectChoice:
    """What :meth:`AutoSubject.choose` decided.

    Attributes:
        backend: the backend whose answer serves.
        instances: its instances for the request (empty when neither model found anything).
        reason: a sentence for ``X-Segmentation-Reason``.
        timings_ms: milliseconds per model that ran, by backend name.
        subject: what the photo shows as far as the rules can tell (``X-Segmentation-Subject``):
            ``"person"`` when the people model's matte looked like a person (it alone served),
            else ``"object"`` (whichever model served).
    """

    backend: Backend
    instances: list[Instance]
    reason: str
    timings_ms: dict[str, float] = field(default_factory=dict)
    subject: str = "object"


class AutoSubject:
    """``subject=auto`` between a people model and an object model (see the module docstring).

    Args:
        person: the people model (MODNet; its soft mask is a matte).
        other: the object model (U^2-Net-p).
    """

    def __init__(self, person: Backend, other: Backend) -> None:
        self.person = person
        self.other = other

    @property
    def name(self) -> str:
        """The backend reported before the choice is made (errors raised while parsing)."""
        return self.person.name

    @property
    def class_names(self) -> tuple[str, ...]:
        """The people model's: ``subject=auto`` serves requests that name no classes."""
        return self.person.class_names

    @property
    def class_aliases(self) -> Mapping[str, str]:
        return self.person.class_aliases

    def choose(self, rgb: np.ndarray, score_threshold: float,
               working_size: int | None = None) -> SubjectChoice:
        """Run the people model, and the object model when needed, on ``rgb`` (``H x W x 3``
        uint8); keep instances scoring above ``score_threshold``. ``working_size`` is the
        people model's (the request's ``model_size``)."""
        person, other = self.person, self.other
        timings: dict[str, float] = {}

        def run(backend: Backend, classes: list[str]) -> list[Instance]:
            started = time.perf_counter()
            found = backend.predict(rgb, classes, score_threshold, working_size)
            timings[backend.name] = (time.perf_counter() - started) * 1000.0
            return found

        people = run(person, ["person"])
        signs = MatteSigns.of(people, rgb.shape[:2])
        head = f"subject=auto: {person.name}'s matte"
        if signs.person_like:
            return SubjectChoice(person, people, f"{head} looks like a person ({signs.text()}): "
                                 f"{person.name} alone", timings, subject="person")
        objects = run(other, list(other.class_names))
        if not people:
            return SubjectChoice(other, objects, f"subject=auto: {person.name} found no person, so "
                                 f"{other.name}'s salient object", timings)
        why = f"{head} looks unlike a person ({signs.text()}), so {other.name} ran too"
        if not objects:
            return SubjectChoice(person, people, f"{why} and found nothing: {person.name}", timings)
        overlap = Overlap.of(people[0].mask, objects[0].mask)
        if overlap.part_of_larger:
            return SubjectChoice(other, objects, f"{why}; its object holds {overlap.held:.0%} of "
                                 f"{person.name}'s region and is {overlap.growth:.1f}x larger: "
                                 f"{other.name}", timings)
        agree = "they agree" if overlap.iou >= HOLDS else "they disagree"
        return SubjectChoice(person, people, f"{why}; {agree} (IoU {overlap.iou:.2f}, its region "
                             f"{overlap.growth:.1f}x {person.name}'s): {person.name}", timings)
