"""Segmentation backends and the rules that pick them.

Each model module of this package registers its models
(:func:`service_common.registry.register_model` on its loader: names, weights files, torch or
not, matte or mask, classes, role in ``auto``); nothing here lists them.

``BACKDROP_SEGMENTATION_BACKEND`` names the default backend:

* ``auto`` (default): Mask R-CNN when ``maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth`` is in the
  models folder (or in torch hub's cache), for every request. Otherwise the offline models,
  chosen per request by what it asks for: **MODNet** (portrait matting) when the requested
  classes are people only (the default, ``person``), **U^2-Net-p** (salient object) for any
  other classes. A request's ``subject`` picks between them too: ``person`` MODNet,
  ``object`` U^2-Net-p, ``auto`` (the default, when it names no classes) per photo,
  MODNet first and U^2-Net-p as well when MODNet's matte looks unlike a person
  (:mod:`segmentation_api.subject`). A WARNING at start names the missing Mask R-CNN file;
* ``maskrcnn`` / ``maskrcnn_v2``: that Mask R-CNN (80 COCO classes; instances);
* ``deeplabv3`` / ``deeplabv3_mobilenet``: DeepLabV3 with a ResNet-101 / MobileNetV3-Large
  backbone (20 VOC classes; one region per class, no instances);
* ``modnet``: the offline portrait matting model (people only);
* ``u2netp``: the offline salient-object model (classes ignored).

Which backend served a request and why is in the answer's ``X-Segmentation-Backend`` and
``X-Segmentation-Reason`` headers; ``/readyz`` shows the whole :class:`Policy`.

A named backend whose weights are missing or wrong is an error (the message names the
file). ``BACKDROP_SEGMENTATION_PRELOAD`` (comma-separated names) loads more backends at
start, so that a request may pick one with ``backend=NAME``. Every model is loaded once
per worker process, by ``create_app``, never per request.

Importing the model modules imports neither torch nor onnxruntime; building a model does.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass

from service_common import registry
from service_common.config import Settings
from service_common.extras import require_torch, torch_installed, torch_missing_message
from service_common.registry import ModelEntry
from service_common.weights import ModelError, find_weights, missing_message, not_found_message

from .base import Backend, Instance, box_of_mask

__all__ = ["Backend", "Instance", "ModelError", "Policy", "backend_names", "box_of_mask",
           "load_backend", "load_backends", "plan", "resolve_name"]

log = logging.getLogger(__name__)


def backend_names() -> tuple[str, ...]:
    """Every backend name (``auto`` excluded), as the model modules register them."""
    return registry.names("segmentation")

#: The class of the people models.
PERSON = "person"


@dataclass(frozen=True)
class Policy:
    """Which loaded backend serves a request that does not name one.

    Attributes:
        person: the backend for requests whose classes are all ``person``.
        other: the backend for every other request; ``None`` when none is loaded (such a
            request is refused, saying which file is missing).
        why: a sentence saying how this policy came about (shown by ``/readyz`` and in the
            reason header).
        missing: for ``other is None``: the message naming the missing file.
    """

    person: str
    other: str | None
    why: str
    missing: str = ""

    @classmethod
    def single(cls, name: str, why: str) -> Policy:
        """Every request to backend ``name``."""
        return cls(person=name, other=name, why=why)

    @property
    def mode(self) -> str:
        """``"by-class"`` when people and other classes go to different backends, else ``"single"``."""
        return "single" if self.person == self.other else "by-class"

    def choose(self, classes: Collection[str]) -> tuple[str | None, str]:
        """``(backend name, reason)`` for a request asking for ``classes``.

        The name is ``None`` when no loaded backend serves those classes (see ``missing``).
        """
        if self.mode == "single":
            return self.person, self.why
        wanted = ",".join(classes)
        if set(classes) <= {PERSON}:
            return self.person, f"classes={wanted}: people, so {self.person}; {self.why}"
        return self.other, f"classes={wanted}: not people only, so {self.other}; {self.why}"

    def as_dict(self) -> dict[str, object]:
        return {"mode": self.mode, "person": self.person, "other": self.other, "why": self.why}


def load_backend(settings: Settings, name: str | None = None) -> Backend:
    """Build the backend called ``name`` (one of :func:`backend_names`; ``None`` = the one
    serving people under ``settings``, :func:`resolve_name`); call once per process.

    Raises:
        ModelError: unknown name, or its weights file is missing or unusable (the message
            names it).
    """
    name = name or resolve_name(settings)
    known = registry.models("segmentation")
    chosen = known.get(name)
    if chosen is None:
        raise ModelError(f"unknown segmentation backend {name!r}; expected one of {', '.join(known)}")
    if chosen.torch:
        require_torch(f"the segmentation backend {name}")
    return chosen.loader(settings, name)


def _role(role: str) -> ModelEntry:
    """The segmentation model registered for ``role`` in ``auto``."""
    found = registry.by_role("segmentation", role)
    if found is None or found.weights is None:
        raise ModelError(f"no segmentation model with weights registers the auto role {role!r}")
    return found


def _auto_offline(settings: Settings, why_preferred: str) -> tuple[list[str], Policy]:
    """The offline backends ``auto`` loads (the ``people`` and ``other`` models, MODNet and
    U^2-Net-p, those present) and their policy. With neither file present both are planned,
    and loading names the missing file."""
    people, other = _role("people"), _role("other")
    assert people.weights is not None and other.weights is not None  # _role checked
    have_people = people.weights.path(settings.models_dir).exists()
    have_other = other.weights.path(settings.models_dir).exists()
    if have_other and not have_people:
        log.warning("BACKDROP_SEGMENTATION_BACKEND=auto: %s",
                    missing_message(people.weights, settings.models_dir))
        why = f"{why_preferred} and {people.weights.filename} missing: {other.described} for everything"
        return [other.name], Policy.single(other.name, why)
    if have_people and not have_other:
        missing = missing_message(other.weights, settings.models_dir)
        log.warning("BACKDROP_SEGMENTATION_BACKEND=auto: %s", missing)
        why = (f"{why_preferred} and {other.weights.filename} missing: {people.title} for people, "
               "nothing for other classes")
        return [people.name], Policy(people.name, None, why, missing=missing)
    why = f"{why_preferred}: {people.described} for people, {other.described} for other classes"
    return [people.name, other.name], Policy(people.name, other.name, why)


def plan(settings: Settings, with_preload: bool = True) -> tuple[list[str], Policy]:
    """The backends ``settings`` asks to load (the policy's first, then the preloaded ones
    unless ``with_preload`` is false) and the policy that picks among them."""
    choice = settings.segmentation_backend
    if choice != "auto":
        names, policy = [choice], Policy.single(choice, f"BACKDROP_SEGMENTATION_BACKEND={choice}")
    else:
        preferred = _role("preferred")
        assert preferred.weights is not None  # _role checked
        title = preferred.title
        found = find_weights(preferred.weights, settings.models_dir)
        if found is not None and preferred.torch and not torch_installed():
            log.warning("BACKDROP_SEGMENTATION_BACKEND=auto: %s weights found at %s, "
                        "but %s; using the offline models.", title, found, torch_missing_message(title))
            names, policy = _auto_offline(settings, f"auto: {title} weights found, torch not installed")
        elif found is not None:
            why = f"auto: {title} weights found at {found}"
            names, policy = [preferred.name], Policy.single(preferred.name, why)
        else:
            people, other = _role("people"), _role("other")
            log.warning(
                "BACKDROP_SEGMENTATION_BACKEND=auto: %s weights missing, using the offline "
                "models (%s for people, %s for other classes; both ignore instances). %s",
                title, people.title, other.title, not_found_message(preferred.weights, settings.models_dir),
            )
            names, policy = _auto_offline(settings, f"auto: {title} weights missing")
        video = registry.by_role("segmentation", "video")
        if video is not None and video.weights is not None and video.name not in names:
            if find_weights(video.weights, settings.models_dir) is not None:
                names.append(video.name)
            else:
                log.info("BACKDROP_SEGMENTATION_BACKEND=auto: %s not loaded (the video client's "
                         "people model): %s", video.title,
                         missing_message(video.weights, settings.models_dir))
    for extra in settings.segmentation_preload if with_preload else ():
        if extra not in names:
            names.append(extra)
    return names, policy


def resolve_name(settings: Settings) -> str:
    """The backend that serves a request for people under ``settings`` (``auto`` resolved)."""
    return plan(settings)[1].person


def load_backends(settings: Settings, default: Backend | None = None,
                  extra: list[Backend] | None = None) -> tuple[dict[str, Backend], Policy]:
    """The loaded backends by name (the policy's first) and the policy that picks among them.

    Args:
        settings: ``segmentation_backend`` names the default (``auto``: see the module
            docstring), ``segmentation_preload`` the others.
        default: an already built backend (tests inject one): it serves every request that
            names no backend.
        extra: already built extra backends, used instead of loading
            ``settings.segmentation_preload``.

    Raises:
        ModelError: a backend cannot be loaded (the message names its file).
    """
    if default is not None:
        backends: dict[str, Backend] = {default.name: default}
        policy = Policy.single(default.name, f"backend {default.name} given to create_app")
    else:
        names, policy = plan(settings, with_preload=extra is None)
        known = registry.models("segmentation")
        on_torch = [name for name in names if name in known and known[name].torch]
        for name in on_torch:
            require_torch(f"the segmentation backend {name}")
        if on_torch:
            from service_common.torch_runtime import set_threads  # local: imports torch

            set_threads(settings.torch_threads)  # once, at app start (builders never do)
        backends = {name: load_backend(settings, name) for name in names}
    for backend in extra or []:
        backends.setdefault(backend.name, backend)
    return backends, policy
