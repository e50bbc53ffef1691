"""The main job, end to end: ``make demo``.

Starts both services with gunicorn, sends the sample portrait through the image client
with a new background, writes the result next to the input, prints where it is (once) and
which backends served, then stops the services. Works offline: without Mask R-CNN / FBA
weights the services fall back to the offline defaults (U^2-Net-p segmentation, closed-form
matting) and say so. The services' logs go to a temporary ``backdrop-demo-*`` folder,
removed at the end; it is kept, and named, only when something failed.

Usage: python scripts/demo.py [INPUT] [--background FILE] [--output FILE]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from service_common.config import Settings  # noqa: E402
from service_common.serve import Service, ServiceError, free_port, running  # noqa: E402


def _port(preferred: int, host: str) -> int:
    """``preferred`` when it is free, else any free port (a demo must not fail on a busy port)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, preferred))
            return preferred
        except OSError:
            port = free_port(host)
            print(f"port {preferred} is busy; using {port}")
            return port


OFFLINE_NOTES = {
    "modnet": " (offline default for people; Mask R-CNN needs `make weights WEIGHTS=maskrcnn`)",
    "u2netp": " (offline default; Mask R-CNN needs `make weights WEIGHTS=maskrcnn`)",
    "closed_form": " (offline default; FBA Matting needs `make weights WEIGHTS=fba`)",
}


def _note(backend: str) -> str:
    return OFFLINE_NOTES.get(backend, "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("input", nargs="?", type=Path, default=REPO / "samples" / "astronaut.png")
    parser.add_argument("--background", type=Path, default=REPO / "samples" / "hubble_deep_field.jpg")
    parser.add_argument("--output", type=Path, default=None,
                        help="default: next to the input, as <name>.result.jpg")
    args = parser.parse_args(argv)
    output = args.output or args.input.with_name(args.input.stem + ".result.jpg")

    settings = Settings.from_env()
    logs = Path(tempfile.mkdtemp(prefix="backdrop-demo-"))
    try:
        code = _run(args, output, settings, logs)
    except KeyboardInterrupt:
        shutil.rmtree(logs, ignore_errors=True)
        print("interrupted; the services are stopped", file=sys.stderr)
        return 130
    except BaseException:
        print(f"service logs kept in {logs}", file=sys.stderr)
        raise
    if code == 0:
        shutil.rmtree(logs, ignore_errors=True)
    return code


def _run(args: argparse.Namespace, output: Path, settings: Settings, logs: Path) -> int:
    """Start the services with their logs in ``logs``, matte the photo, stop them; the exit
    code (0 when the result was written)."""
    host = settings.bind_host
    seg = Service("segmentation", _port(settings.seg_port, host), host=host,
                  timeout=settings.request_timeout, log_path=logs / "segmentation.log")
    mat = Service("matting", _port(settings.matting_port, host), host=host,
                  threads=settings.matting_threads, timeout=settings.request_timeout,
                  log_path=logs / "matting.log",
                  env={"BACKDROP_SEGMENTATION_URL": seg.url})
    print("starting the services ...", flush=True)
    started = time.perf_counter()
    try:
        with running(seg, mat):
            backends = {}
            for svc in (seg, mat):
                info = requests.get(svc.url + "/readyz", timeout=10).json()
                backends[svc.name] = info.get("backend", "?")
                print(f"  {svc.name:12s} ready at {svc.url}, backend {backends[svc.name]}")
            print(f"ready after {time.perf_counter() - started:.1f}s; sending {args.input} ...", flush=True)
            cmd = [sys.executable, "-m", "client", str(args.input), str(output),
                   "--background", str(args.background), "--server", mat.url]
            # the client prints the path it wrote on stdout; the demo says it once, below
            result = subprocess.run(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True)
            if result.returncode != 0:
                sys.stdout.write(result.stdout)
                print(f"the client failed (exit {result.returncode}); service logs kept in {logs}")
                return result.returncode
    except ServiceError as exc:
        print(f"error: {exc}\nservice logs kept in {logs}", file=sys.stderr)
        for log in sorted(logs.glob("*.log")):
            print(f"--- {log.name} (last lines)\n" + "\n".join(log.read_text().splitlines()[-20:]))
        return 1
    print(f"\nresult: {output.resolve()}")
    print("backends used: " + ", ".join(f"{k} = {v}{_note(v)}" for k, v in backends.items()))
    print("services stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
