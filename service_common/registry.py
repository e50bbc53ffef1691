"""The model registry: each model module declares its models beside their builders.

A model module marks its loader with :func:`register_model` (torchvision's idea: a decorator
that records a builder under a name, with nothing else happening at import), saying under
which name(s) the model is served, its weights file, whether it needs torch and, for the
segmentation service, whether it answers a matte or a mask and which classes a request may
name. Everything that used to keep its own list reads the registry instead: the backend
tables and the ``auto`` policies of both services, the weights command, the OpenAPI
document. ``contract.vocab`` repeats the names the clients need (clients never import a
service); a test holds the two equal.

Discovery (:func:`models`) imports every module of the service's ``backends`` package
(:data:`PACKAGES`) with :mod:`pkgutil`; model modules import torch and onnxruntime inside
their builders only, so discovery never does. Adding a model is its module plus its name in
``contract.vocab``.

This module imports no service package at import time: the packages are named as strings
and imported by :func:`discover` when asked.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from contract.vocab import MASK_KINDS

from .weights import WeightsFile

#: service -> the package whose modules declare its models.
PACKAGES: dict[str, str] = {
    "segmentation": "segmentation_api.backends",
    "matting": "matting_api.backends",
}

#: Roles in the ``auto`` policies: ``preferred`` serves every request when its weights
#: are found and torch is installed; otherwise the segmentation service sends people to
#: the ``people`` model and other classes to the ``other`` one, and the matting service
#: uses its ``fallback``. The ``video`` model is loaded beside them whenever its weights are
#: present, for the video client, which asks for it by name.
AUTO_ROLES = ("preferred", "people", "other", "fallback", "video")

Loader = Callable[[Any, str], Any]
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class ModelEntry:
    """One servable model, as its module declares it.

    Attributes:
        service: ``"segmentation"`` or ``"matting"``.
        name: the backend name (``BACKDROP_*_BACKEND``, a request's ``backend``).
        loader: ``loader(settings, name) -> backend``; called once per worker.
        weights: its weights file; ``None`` for a model without one (closed-form matting).
        torch: whether it runs on torch (the slim install lacks it).
        title: how people call it (``"Mask R-CNN"``), for logs and messages.
        what: what it is, in a few words (``"portrait matting"``).
        mask_kind: segmentation only: ``"matte"`` or ``"segmentation"``
            (:data:`contract.vocab.MASK_KINDS`).
        classes: segmentation only: the class names a request may ask for.
        auto: its role in the ``auto`` policy (:data:`AUTO_ROLES`), or ``None``.
        module: the module that declared it.
    """

    service: str
    name: str
    loader: Loader = field(compare=False, repr=False)
    weights: WeightsFile | None
    torch: bool
    title: str
    what: str
    mask_kind: str | None = None
    classes: tuple[str, ...] = ()
    auto: str | None = None
    module: str = ""

    @property
    def described(self) -> str:
        """``"MODNet (portrait matting)"``."""
        return f"{self.title} ({self.what})"


_ENTRIES: dict[tuple[str, str], ModelEntry] = {}


def register_model(service: str, name: str, *, weights: WeightsFile | None, torch: bool, title: str,
                   what: str, mask_kind: str | None = None, classes: tuple[str, ...] = (),
                   auto: str | None = None) -> Callable[[F], F]:
    """Decorate a loader ``(settings, name) -> backend`` to record it as model ``name`` of
    ``service`` (stack it for several names served by one loader). Records the entry and
    returns the loader unchanged; nothing else happens.

    Raises:
        ValueError: a bad ``service``, ``mask_kind`` or ``auto`` value, or ``name`` already
            registered by another loader.
    """
    if service not in PACKAGES:
        raise ValueError(f"unknown service {service!r}; expected one of {', '.join(PACKAGES)}")
    if (mask_kind is None) != (service == "matting"):
        raise ValueError("a segmentation model declares its mask_kind, a matting model none")
    if mask_kind is not None and mask_kind not in MASK_KINDS:
        raise ValueError(f"mask_kind {mask_kind!r}: expected one of {', '.join(MASK_KINDS)}")
    if auto is not None and auto not in AUTO_ROLES:
        raise ValueError(f"auto {auto!r}: expected one of {', '.join(AUTO_ROLES)}")

    def record(loader: F) -> F:
        entry = ModelEntry(service=service, name=name, loader=loader, weights=weights, torch=torch,
                           title=title, what=what, mask_kind=mask_kind, classes=tuple(classes),
                           auto=auto, module=loader.__module__)
        old = _ENTRIES.get((service, name))
        if old is not None and (old.module, old.loader.__qualname__) != (entry.module, loader.__qualname__):
            raise ValueError(f"{service} model {name!r} registered twice ({old.module}, {entry.module})")
        rival = next((e for e in _ENTRIES.values() if e.service == service and e.name != name
                      and auto is not None and e.auto == auto), None)
        if rival is not None:
            raise ValueError(f"{service} models {rival.name!r} and {name!r} both take the auto role {auto!r}")
        _ENTRIES[(service, name)] = entry
        return loader

    return record


def discover(service: str) -> None:
    """Import every module of ``service``'s backends package (:data:`PACKAGES`), so that
    each one registers its models. Subpackages are imported, not walked: a model package
    (``fba``) registers in its ``__init__``."""
    package = importlib.import_module(PACKAGES[service])
    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{info.name}")


def models(service: str) -> dict[str, ModelEntry]:
    """Every model of ``service`` by name, ordered by module, then name."""
    discover(service)
    found = sorted((e for e in _ENTRIES.values() if e.service == service), key=lambda e: (e.module, e.name))
    return {e.name: e for e in found}


def names(service: str) -> tuple[str, ...]:
    """The backend names of ``service`` (``auto`` not included)."""
    return tuple(models(service))


def entry(service: str, name: str) -> ModelEntry | None:
    """The model ``name`` of ``service``, or ``None``."""
    return models(service).get(name)


def by_role(service: str, role: str) -> ModelEntry | None:
    """The first model of ``service`` with ``auto`` role ``role``, or ``None``."""
    return next((e for e in models(service).values() if e.auto == role), None)


def all_models() -> list[ModelEntry]:
    """Every model of both services."""
    return [e for service in PACKAGES for e in models(service).values()]
