"""The whole stack for a bench: both services as ``make serve`` starts them (the offline
defaults unless ``BACKDROP_*`` variables say otherwise), on free ports, logs in a folder."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from service_common.config import Settings  # noqa: E402
from service_common.serve import Service, free_port, running, services_from_settings  # noqa: E402


@contextlib.contextmanager
def serving(log_dir: Path, **env: str) -> Iterator[tuple[Service, Service]]:
    """Start segmentation, then matting, wait until both are ready; stop both on exit.

    ``env``: extra ``BACKDROP_*`` settings for both (``BACKDROP_LOG_LEVEL`` is ``WARNING``
    unless given). Yields ``(segmentation, matting)``; ``matting.url`` is what clients use.
    """
    ports = {"BACKDROP_SEGMENTATION_PORT": str(free_port()), "BACKDROP_MATTING_PORT": str(free_port())}
    settings_env = {**os.environ, "BACKDROP_LOG_LEVEL": "WARNING", **env, **ports}
    seg, mat = services_from_settings(Settings.from_env(settings_env), log_dir)
    extra = {k: v for k, v in settings_env.items() if k.startswith("BACKDROP_")}
    seg.env = {**extra, **seg.env}
    mat.env = {**extra, **mat.env, "BACKDROP_SEGMENTATION_URL": seg.url}
    with running(seg, mat, ready_timeout=300) as started:
        yield started  # type: ignore[misc]


def run_served(run: Callable[[argparse.Namespace, str], dict], args: argparse.Namespace,
               segmentation_backend: str) -> dict:
    """``run(args, url)`` against the matting service at ``args.server`` when given, else
    against both services started here (gunicorn, ``args.models_dir``, segmentation with
    ``segmentation_backend``, matting with ``args.matting_backend``), stopped afterwards.
    Returns what ``run`` returns."""
    if args.server:
        return run(args, args.server.rstrip("/"))
    env = {"BACKDROP_MODELS_DIR": str(args.models_dir), "BACKDROP_LOG_LEVEL": "WARNING"}
    seg = Service("segmentation", free_port(), timeout=600,
                  env={**env, "BACKDROP_SEGMENTATION_BACKEND": segmentation_backend})
    mat = Service("matting", free_port(), timeout=600,
                  env={**env, "BACKDROP_MATTING_BACKEND": args.matting_backend,
                       "BACKDROP_SEGMENTATION_URL": seg.url})
    with running(seg, mat):
        return run(args, mat.url)


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, s) of process ``pid`` and its children so far (Linux
    ``/proc``; gunicorn's workers are the master's children); 0 elsewhere."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        for p in [pid, *map(int, children)]:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
    except OSError:
        return 0.0
    return total


def publish(results: dict, markdown: str, json_path: Path | None) -> int:
    """Print a bench's Markdown ``markdown`` and write ``results`` as JSON to ``json_path``
    (its folder made; nothing written when ``None``). Returns 0, the bench's exit code."""
    print(markdown)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(results, indent=2))
        print(f"\n(written to {json_path})")
    return 0
