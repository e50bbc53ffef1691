"""Settings read from environment variables, with documented defaults.

Every variable starts with ``BACKDROP_``. The table in the README ("Configuration")
lists them all; :data:`ENV_DOCS` is its source of truth and a test keeps the two in sync.
Settings are plain frozen dataclasses: build them once per process with
:meth:`Settings.from_env` (or construct them directly in tests) and pass them around.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from contract.formats import TRANSPORT_FORMATS
from contract.vocab import MATTING_BACKENDS, SEGMENTATION_BACKENDS

log = logging.getLogger(__name__)

#: Values of ``BACKDROP_SEGMENTATION_TRANSPORT``.
TRANSPORTS = ("auto", *TRANSPORT_FORMATS)

#: Old name -> the name that replaced it. An old name is still read (when the new one is not
#: set), with a warning naming the new one.
RENAMED: dict[str, str] = {
    "BACKDROP_SEG_PORT": "BACKDROP_SEGMENTATION_PORT",
    "BACKDROP_SEG_WORKERS": "BACKDROP_SEGMENTATION_WORKERS",
    "BACKDROP_SEG_THREADS": "BACKDROP_SEGMENTATION_THREADS",
}

REPO_ROOT = Path(__file__).resolve().parent.parent

#: name -> (default as text, meaning). The README's configuration table mirrors this.
ENV_DOCS: dict[str, tuple[str, str]] = {
    "BACKDROP_MODELS_DIR": ("<repo>/models", "folder holding model weights"),
    "BACKDROP_DEVICE": ("auto", "torch device: auto (CUDA when available), cpu, cuda, cuda:N"),
    "BACKDROP_TORCH_THREADS": (
        "0", "CPU threads of each model (torch and onnxruntime); 0 = the library's default"
    ),
    "BACKDROP_LOG_LEVEL": ("INFO", "DEBUG, INFO, WARNING or ERROR"),
    "BACKDROP_MAX_UPLOAD_MB": ("50", "largest request body accepted, in MB (413 above)"),
    "BACKDROP_MAX_PIXELS": (
        "40000000", "largest image accepted, in pixels (checked before decoding)"
    ),
    "BACKDROP_SEGMENTATION_BACKEND": (
        "auto", "auto (Mask R-CNN when its weights are present, else MODNet for people and "
        "U^2-Net-p for other classes) or one of " + ", ".join(SEGMENTATION_BACKENDS[1:])
    ),
    "BACKDROP_SEGMENTATION_URL": (
        "http://127.0.0.1:3000", "where the matting service finds the segmentation service"
    ),
    "BACKDROP_SEGMENTATION_TRANSPORT": (
        "auto", "how the matting service sends the image to the segmentation service: png "
        "(compressed, lossless), bmp (uncompressed: no coding cost, 4x the bytes) or auto (bmp "
        "when the segmentation URL is on this machine, else png); the mask comes back as 16-bit "
        "PNG with png, as uncompressed 16-bit TIFF with bmp"
    ),
    "BACKDROP_SEGMENTATION_CONNECT_TIMEOUT": ("3", "seconds to connect to the segmentation service"),
    "BACKDROP_SEGMENTATION_TIMEOUT": ("60", "seconds to wait for the segmentation service's answer"),
    "BACKDROP_MATTING_BACKEND": ("auto", "auto (FBA Matting when its weights are present, else "
                                 "closed-form matting) or one of " + ", ".join(MATTING_BACKENDS[1:])),
    "BACKDROP_MATTING_MAX_SIDE": ("1600", "FBA working resolution: cap on the long side, px; 0 = full"),
    "BACKDROP_SEGMENTATION_PORT": ("3000", "port of the segmentation service (make serve; was "
                                   "BACKDROP_SEG_PORT, still read)"),
    "BACKDROP_MATTING_PORT": ("5000", "port of the matting service (make serve)"),
    "BACKDROP_SEGMENTATION_WORKERS": ("1", "gunicorn workers of the segmentation service (was "
                                      "BACKDROP_SEG_WORKERS, still read)"),
    "BACKDROP_SEGMENTATION_THREADS": (
        "2", "threads per segmentation worker: requests in flight run the model side by side "
        "(the ONNX models: a lone request gets every core, two at once one core each; was "
        "BACKDROP_SEG_THREADS, still read)"
    ),
    "BACKDROP_MATTING_WORKERS": ("1", "gunicorn workers of the matting service"),
    "BACKDROP_MATTING_THREADS": (
        "4", "threads per matting worker: requests overlap while one waits for segmentation"
    ),
    "BACKDROP_REQUEST_TIMEOUT": ("300", "longest a request may run, in seconds (the front answers 504 "
                                 "after it; gunicorn's worker timeout)"),
    "BACKDROP_FRONT": ("1", "1: each service listens through its buffering front (service_common.front: "
                       "deadlines, a bounded queue, JSON for protocol errors); 0: gunicorn listens itself"),
    "BACKDROP_CLIENT_TIMEOUT": ("10", "seconds a client has to send a request's head, and the body's "
                                "grace before its minimum rate counts; slower clients get 408"),
    "BACKDROP_CLIENT_MIN_KBPS": ("32", "slowest upload accepted after the grace, KB/s"),
    "BACKDROP_MALLOC_TUNING": ("1", "1: glibc's mmap threshold fixed and malloc_trim after large requests, "
                               "so workers give memory back (service_common.memory); 0: glibc's defaults"),
    "BACKDROP_WORKER_MEMORY_MB": ("0", "memory one worker may use, MB, its models included: a request is "
                                  "admitted only when its estimated peak fits beside those in flight (else "
                                  "503 overloaded with Retry-After); 0 = the container's memory limit "
                                  "(cgroup) less 256 MB, shared by the workers, else the machine's memory"),
    "BACKDROP_MAX_QUEUE": ("8", "requests that may wait for a free thread per service (beyond them: 503 "
                           "overloaded with Retry-After)"),
    "BACKDROP_BIND_HOST": ("127.0.0.1", "address both services listen on"),
    "BACKDROP_SERVICE": ("", "make serve / backdrop-serve: start only this service, segmentation or "
                         "matting (a container runs one); empty = both"),
    "BACKDROP_FETCH_WEIGHTS": ("", "backdrop-serve: weights to fetch when missing before starting, "
                               "comma-separated (e.g. maskrcnn); empty = none"),
    "BACKDROP_MASKRCNN_MIN_SIZE": ("800", "Mask R-CNN input: shorter side resized to this, in px"),
    "BACKDROP_MASKRCNN_MAX_SIZE": ("1333", "Mask R-CNN input: longer side capped at this, in px"),
    "BACKDROP_MASKRCNN_MAX_DETECTIONS": ("100", "Mask R-CNN: most detections per image (all classes)"),
    "BACKDROP_CLOSED_FORM_MAX_SIDE": (
        "1000", "closed-form matting: long side (px) of the unknown band's box above which it is "
        "solved downscaled; 0 = never"
    ),
    "BACKDROP_CLOSED_FORM_MAX_UNKNOWN": (
        "80000", "closed-form matting: unknown pixels above which the band is solved downscaled "
        "(bounds the time per image); 0 = never"
    ),
    "BACKDROP_SEGMENTATION_PRELOAD": (
        "", "comma-separated extra segmentation backends loaded at start besides the default one, "
        "so that requests may pick them with backend=NAME (e.g. deeplabv3_mobilenet,u2netp)"
    ),
    "BACKDROP_DEEPLABV3_SIZE": (
        "520", "DeepLabV3 input: shorter side resized to this, in px (520 as torchvision's weights)"
    ),
    "BACKDROP_MODNET_SIZE": (
        "512", "MODNet input: shorter side resized to this, in px (512 as the reference)"
    ),
    "BACKDROP_FBA_CROP_MARGIN": (
        "0", "FBA: run only on the unknown band's box plus this margin, px; 0 = whole image (exact). "
        "Saves time and memory, changes results (see bench/fba_speed.py)"
    ),
}


class ConfigError(ValueError):
    """An environment variable holds a value that cannot be used."""


_WARNED: set[str] = set()


def _source(env: Mapping[str, str], name: str) -> str:
    """The variable that gives ``name``'s value: ``name``, or the old name it replaced
    (:data:`RENAMED`) when only that one is set (warned about once per process)."""
    if (env.get(name) or "").strip():
        return name
    old = next((o for o, new in RENAMED.items() if new == name and (env.get(o) or "").strip()), None)
    if old is None:
        return name
    if old not in _WARNED:
        _WARNED.add(old)
        log.warning("%s is an old name: call it %s (the old name is still read)", old, name)
    return old


def _get(env: Mapping[str, str], name: str) -> str:
    value = env.get(_source(env, name))
    if value is None or value.strip() == "":
        default = ENV_DOCS[name][0]
        return str(REPO_ROOT / "models") if default == "<repo>/models" else default
    return value.strip()


def _int(env: Mapping[str, str], name: str, minimum: int = 0) -> int:
    raw = _get(env, name)
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(f"{_source(env, name)}={raw!r} is not a whole number") from exc
    if value < minimum:
        raise ConfigError(f"{_source(env, name)}={value} must be >= {minimum}")
    return value


def _float(env: Mapping[str, str], name: str) -> float:
    raw = _get(env, name)
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r} is not a number") from exc
    if value <= 0:
        raise ConfigError(f"{name}={value} must be > 0")
    return value


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    value = _get(env, name).lower()
    if value not in choices:
        raise ConfigError(f"{name}={value!r}: expected one of {', '.join(choices)}")
    return value


def _choices(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> tuple[str, ...]:
    """A comma-separated list of ``choices`` (empty entries ignored, duplicates dropped)."""
    values = [v.strip().lower() for v in _get(env, name).split(",")]
    values = [v for v in values if v]
    bad = [v for v in values if v not in choices]
    if bad:
        raise ConfigError(f"{name}: {', '.join(repr(v) for v in bad)} not one of {', '.join(choices)}")
    return tuple(dict.fromkeys(values))




@dataclass(frozen=True)
class Settings:
    """Everything both services and the launcher need, with the documented defaults."""

    models_dir: Path = REPO_ROOT / "models"
    device: str = "auto"
    torch_threads: int = 0
    log_level: str = "INFO"
    max_upload_bytes: int = 50 * 1024 * 1024
    max_pixels: int = 40_000_000
    segmentation_backend: str = "auto"
    segmentation_url: str = "http://127.0.0.1:3000"
    segmentation_transport: str = "auto"
    segmentation_connect_timeout: float = 3.0
    segmentation_timeout: float = 60.0
    matting_backend: str = "auto"
    matting_max_side: int = 1600
    seg_port: int = 3000
    matting_port: int = 5000
    seg_workers: int = 1
    seg_threads: int = 2
    matting_workers: int = 1
    matting_threads: int = 4
    request_timeout: int = 300
    bind_host: str = "127.0.0.1"
    maskrcnn_min_size: int = 800
    maskrcnn_max_size: int = 1333
    maskrcnn_max_detections: int = 100
    closed_form_max_side: int = 1000
    closed_form_max_unknown: int = 80_000
    segmentation_preload: tuple[str, ...] = ()
    deeplabv3_size: int = 520
    modnet_size: int = 512
    fba_crop_margin: int = 0
    service: str | None = None
    fetch_weights: tuple[str, ...] = ()
    front: bool = True
    client_timeout: float = 10.0
    client_min_kbps: float = 32.0
    max_queue: int = 8
    malloc_tuning: bool = True
    worker_memory_mb: int = 0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read every ``BACKDROP_*`` variable; raise :class:`ConfigError` on a bad value."""
        env = os.environ if env is None else env
        level = _get(env, "BACKDROP_LOG_LEVEL").upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError(f"BACKDROP_LOG_LEVEL={level!r}: expected DEBUG, INFO, WARNING or ERROR")
        service = _get(env, "BACKDROP_SERVICE").strip().lower()
        if service not in ("", "segmentation", "matting"):
            raise ConfigError(f"BACKDROP_SERVICE={service!r}: expected segmentation, matting or empty (both)")
        return cls(
            models_dir=Path(_get(env, "BACKDROP_MODELS_DIR")).expanduser(),
            device=_get(env, "BACKDROP_DEVICE").lower(),
            torch_threads=_int(env, "BACKDROP_TORCH_THREADS"),
            log_level=level,
            max_upload_bytes=int(_float(env, "BACKDROP_MAX_UPLOAD_MB") * 1024 * 1024),
            max_pixels=_int(env, "BACKDROP_MAX_PIXELS", minimum=1),
            segmentation_backend=_choice(env, "BACKDROP_SEGMENTATION_BACKEND", SEGMENTATION_BACKENDS),
            segmentation_url=_get(env, "BACKDROP_SEGMENTATION_URL").rstrip("/"),
            segmentation_transport=_choice(env, "BACKDROP_SEGMENTATION_TRANSPORT", TRANSPORTS),
            segmentation_connect_timeout=_float(env, "BACKDROP_SEGMENTATION_CONNECT_TIMEOUT"),
            segmentation_timeout=_float(env, "BACKDROP_SEGMENTATION_TIMEOUT"),
            matting_backend=_choice(env, "BACKDROP_MATTING_BACKEND", MATTING_BACKENDS),
            matting_max_side=_int(env, "BACKDROP_MATTING_MAX_SIDE"),
            seg_port=_int(env, "BACKDROP_SEGMENTATION_PORT", minimum=1),
            matting_port=_int(env, "BACKDROP_MATTING_PORT", minimum=1),
            seg_workers=_int(env, "BACKDROP_SEGMENTATION_WORKERS", minimum=1),
            seg_threads=_int(env, "BACKDROP_SEGMENTATION_THREADS", minimum=1),
            matting_workers=_int(env, "BACKDROP_MATTING_WORKERS", minimum=1),
            matting_threads=_int(env, "BACKDROP_MATTING_THREADS", minimum=1),
            request_timeout=_int(env, "BACKDROP_REQUEST_TIMEOUT", minimum=1),
            bind_host=_get(env, "BACKDROP_BIND_HOST"),
            maskrcnn_min_size=_int(env, "BACKDROP_MASKRCNN_MIN_SIZE", minimum=32),
            maskrcnn_max_size=_int(env, "BACKDROP_MASKRCNN_MAX_SIZE", minimum=32),
            maskrcnn_max_detections=_int(env, "BACKDROP_MASKRCNN_MAX_DETECTIONS", minimum=1),
            closed_form_max_side=_int(env, "BACKDROP_CLOSED_FORM_MAX_SIDE"),
            closed_form_max_unknown=_int(env, "BACKDROP_CLOSED_FORM_MAX_UNKNOWN"),
            segmentation_preload=_choices(env, "BACKDROP_SEGMENTATION_PRELOAD", SEGMENTATION_BACKENDS[1:]),
            service=service or None,
            front=_choice(env, "BACKDROP_FRONT", ("0", "1")) == "1",
            client_timeout=_float(env, "BACKDROP_CLIENT_TIMEOUT"),
            client_min_kbps=_float(env, "BACKDROP_CLIENT_MIN_KBPS"),
            max_queue=_int(env, "BACKDROP_MAX_QUEUE"),
            malloc_tuning=_choice(env, "BACKDROP_MALLOC_TUNING", ("0", "1")) == "1",
            worker_memory_mb=_int(env, "BACKDROP_WORKER_MEMORY_MB"),
            fetch_weights=tuple(v.strip() for v in _get(env, "BACKDROP_FETCH_WEIGHTS").split(",")
                                if v.strip()),
            deeplabv3_size=_int(env, "BACKDROP_DEEPLABV3_SIZE", minimum=16),
            modnet_size=_int(env, "BACKDROP_MODNET_SIZE", minimum=32),
            fba_crop_margin=_int(env, "BACKDROP_FBA_CROP_MARGIN"),
        )

    def with_overrides(self, **changes: object) -> Settings:
        """A copy with some fields changed (handy in tests)."""
        return replace(self, **changes)  # type: ignore[arg-type]


#: Variables with the prefix that are not settings but are read elsewhere (tests, CI).
OTHER_VARIABLES = frozenset({"BACKDROP_CHROMIUM", "BACKDROP_CHROMEDRIVER", "BACKDROP_REQUIRE_BROWSER",
                             "BACKDROP_FBA_SHA256"})


def unknown_variables(env: Mapping[str, str] | None = None) -> list[str]:
    """One sentence per ``BACKDROP_*`` variable that no part of Backdrop reads (a typo?),
    with the closest known name when there is one."""
    import difflib

    env = os.environ if env is None else env
    known = set(ENV_DOCS) | OTHER_VARIABLES | set(RENAMED)
    found = []
    for name in sorted(n for n in env if n.startswith("BACKDROP_") and n not in known):
        close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.75)
        hint = f"; did you mean {close[0]}?" if close else "; the README's configuration table lists them"
        found.append(f"{name} is not a Backdrop setting and is ignored{hint}")
    return found
