"""Start both services with gunicorn, wait until they are ready, stop them cleanly.

Command line (``make serve``)::

    python -m service_common.serve            # runs until Ctrl-C / SIGTERM
    python -m service_common.serve --check    # start, wait for readiness, stop (smoke test)
    python -m service_common.serve --service matting   # one service only (a container)
    python -m service_common.serve --service segmentation --fetch-weights maskrcnn

Ports, worker counts, host and timeouts come from the ``BACKDROP_*`` settings. The same
:class:`Service` class starts services for the tests, the demo and the benchmarks.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import requests

from .config import REPO_ROOT, ConfigError, Settings, unknown_variables
from .memory import GLIBC_ENV

APPS = {
    "segmentation": "segmentation_api:gunicorn_app()",
    "matting": "matting_api:gunicorn_app()",
}


#: The ports :func:`free_port` has handed out in this process.
_GIVEN_PORTS: set[int] = set()
_GIVEN_LOCK = threading.Lock()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now, and one this process was not given before:
    the kernel may hand out the same free port to two calls in a row, and two services
    started on it would share it (the second cannot bind; the first answers for both)."""
    with _GIVEN_LOCK:
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind((host, 0))
                port = int(sock.getsockname()[1])
            if port not in _GIVEN_PORTS:
                _GIVEN_PORTS.add(port)
                return port


class ServiceError(RuntimeError):
    """A service did not start or did not become ready."""


def gunicorn_has(setting: str) -> bool:
    """Whether the installed gunicorn knows the setting ``setting`` (``control_socket_disable``
    came with a later release than the oldest this project accepts)."""
    from gunicorn.config import KNOWN_SETTINGS

    return any(known.name == setting for known in KNOWN_SETTINGS)


@dataclass
class Service:
    """One gunicorn process serving one of :data:`APPS`.

    Args:
        name: ``"segmentation"`` or ``"matting"``.
        port: TCP port on ``host``.
        workers: gunicorn worker processes (each loads the models once).
        env: extra environment variables (``BACKDROP_*``) for the process.
        timeout: gunicorn's worker timeout (longest request), seconds.
        log_path: where gunicorn's output goes; ``None`` = inherit the terminal.
        front: listen through the buffering front (:mod:`service_common.front`): gunicorn
            then binds a Unix socket in a private folder and the front the TCP port.
        malloc_tuning: start with :data:`service_common.memory.GLIBC_ENV` (where the
            environment does not set those variables itself).
    """

    name: str
    port: int
    host: str = "127.0.0.1"
    workers: int = 1
    threads: int = 1
    env: Mapping[str, str] = field(default_factory=dict)
    timeout: int = 300
    log_path: Path | None = None
    front: bool = True
    malloc_tuning: bool = True
    process: subprocess.Popen | None = None
    front_process: subprocess.Popen | None = None
    ready_info: dict = field(default_factory=dict)
    _log_file: object = None
    _socket_dir: str | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Service:
        bind = f"{self.host}:{self.port}"
        if self.front:
            self._socket_dir = tempfile.mkdtemp(prefix=f"backdrop-{self.name}-")
            bind = f"unix:{self._socket_dir}/gunicorn.sock"
        cmd = [
            sys.executable, "-m", "gunicorn",
            "--bind", bind,
            "--workers", str(self.workers),
            "--threads", str(self.threads),
            "--timeout", str(self.timeout),
            "--graceful-timeout", "10",
            "--access-logfile", "-",
            "--access-logformat", f'{self.name} %(h)s "%(r)s" %(s)s %(b)s %(M)sms',
            APPS[self.name],
        ]
        if gunicorn_has("control_socket_disable"):
            # gunicorn 25.1+ opens a control socket at one path per user: the second service's
            # master takes the first one's over, a third logs "Control server error: ...
            # already in use", an unwritable home an error at every start. Nothing uses it.
            cmd[-1:-1] = ["--no-control-socket"]
        if self.front:  # the front enforces the limits (in JSON); gunicorn's sit above them
            cmd[-1:-1] = ["--limit-request-line", "16380", "--limit-request-fields", "200",
                          "--limit-request-field_size", "65536"]
        env = {**(GLIBC_ENV if self.malloc_tuning else {}), **os.environ, **self.env}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        stdout = None
        if self.log_path is not None:
            self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
            stdout = self._log_file
        self.process = subprocess.Popen(
            cmd, cwd=REPO_ROOT, env=env, stdout=stdout, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if self.front:
            front = [sys.executable, "-m", "service_common.front", "--listen",
                     f"{self.host}:{self.port}", "--upstream", f"{self._socket_dir}/gunicorn.sock",
                     "--service", self.name, "--slots", str(self.workers * self.threads)]
            self.front_process = subprocess.Popen(
                front, cwd=REPO_ROOT, env=env, stdout=stdout, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def exited(self) -> int | None:
        """The exit code of the service's gunicorn or front when either has stopped, else
        ``None``."""
        for proc in (self.process, self.front_process):
            if proc is not None and proc.poll() is not None:
                return proc.returncode
        return None

    def wait_ready(self, timeout: float = 180.0, path: str = "/readyz") -> dict:
        """Poll ``path`` until it answers 200; return its JSON.

        Raises:
            ServiceError: the process died, or it was not ready in time.
        """
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            code = self.exited()
            if code is not None:
                raise ServiceError(
                    f"{self.name} service exited with code {code}"
                    + (f"; see {self.log_path}" if self.log_path else
                       " (its reason is the 'cannot start' line above)")
                )
            try:
                resp = requests.get(self.url + path, timeout=5)
                if resp.status_code == 200:
                    self.ready_info = resp.json()
                    return self.ready_info
                last = f"HTTP {resp.status_code}: {resp.text[:200]}"
            except requests.RequestException as exc:
                last = type(exc).__name__
            time.sleep(0.25)
        raise ServiceError(f"{self.name} service at {self.url} not ready after {timeout:.0f}s ({last})")

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (gunicorn's graceful stop), then SIGKILL if it lingers; the front first."""
        for proc in (self.front_process, self.process):
            if proc is not None and proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=5)
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None
        if self._log_file is not None:
            self._log_file.close()  # type: ignore[attr-defined]
            self._log_file = None


@contextlib.contextmanager
def running(*services: Service, ready_timeout: float = 180.0,
            ready: bool = True) -> Iterator[tuple[Service, ...]]:
    """Start ``services`` in order, wait for each to be ready (``ready``; else only alive:
    a lone matting service is not ready until its segmentation service is), stop all on exit."""
    started: list[Service] = []
    try:
        for svc in services:
            started.append(svc.start())
        for svc in services:
            svc.wait_ready(ready_timeout, path="/readyz" if ready else "/healthz")
        yield services
    finally:
        for svc in reversed(started):
            svc.stop()


def services_from_settings(settings: Settings, log_dir: Path | None = None) -> tuple[Service, Service]:
    """The two services as configured by ``BACKDROP_*`` settings."""
    seg = Service(
        "segmentation", settings.seg_port, host=settings.bind_host, workers=settings.seg_workers,
        threads=settings.seg_threads, front=settings.front, malloc_tuning=settings.malloc_tuning,
        timeout=settings.request_timeout,
        log_path=(log_dir / "segmentation.log") if log_dir else None,
    )
    mat = Service(
        "matting", settings.matting_port, host=settings.bind_host,
        workers=settings.matting_workers, threads=settings.matting_threads, front=settings.front,
        malloc_tuning=settings.malloc_tuning,
        timeout=settings.request_timeout,
        env={"BACKDROP_SEGMENTATION_URL": os.environ.get("BACKDROP_SEGMENTATION_URL", seg.url)},
        log_path=(log_dir / "matting.log") if log_dir else None,
    )
    return seg, mat


#: The variable that sets each service's port.
PORT_VARIABLES = {"segmentation": "BACKDROP_SEGMENTATION_PORT", "matting": "BACKDROP_MATTING_PORT"}


def port_in_use(host: str, port: int) -> bool:
    """Whether ``host:port`` cannot be bound now (someone listens there, or it is reserved)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def busy_port_message(svc: Service) -> str:
    """One line: which port is taken and which variable moves the service elsewhere."""
    variable = PORT_VARIABLES[svc.name]
    return (f"port {svc.port} on {svc.host} is already in use (another program, or Backdrop "
            f"already running?), so the {svc.name} service cannot start there; stop that "
            f"program, or choose another port: {variable}={svc.port + 1} make serve")


def preflight(*services: Service) -> list[str]:
    """The start-up problems found before anything starts: busy ports (one line each)."""
    return [busy_port_message(svc) for svc in services if port_in_use(svc.host, svc.port)]


class Supervisor:
    """Restarts a service whose gunicorn or front died, with a growing pause (1, 2, 4 ... up
    to :attr:`MAX_BACKOFF_S` seconds; back to 1 once it has run :attr:`STABLE_S` seconds), and
    says so; the other service keeps running. ``make serve`` only: in production each service
    runs under its own supervisor (systemd, Kubernetes), which restarts it the same way."""

    MAX_BACKOFF_S = 30.0
    STABLE_S = 60.0

    def __init__(self, services: list[Service], out=print) -> None:
        self.services = services
        self.out = out
        self.backoff = {svc.name: 1.0 for svc in services}
        self.started = {svc.name: time.monotonic() for svc in services}
        self.due: dict[str, float] = {}

    def tick(self) -> None:
        now = time.monotonic()
        for svc in self.services:
            if svc.name in self.due:
                if now >= self.due[svc.name]:
                    del self.due[svc.name]
                    self.out(f"{svc.name} service: restarting", flush=True)
                    svc.start()
                    self.started[svc.name] = now
                continue
            code = svc.exited()
            if code is None:
                if now - self.started[svc.name] > self.STABLE_S:
                    self.backoff[svc.name] = 1.0
                continue
            pause = self.backoff[svc.name]
            self.out(f"{svc.name} service exited (code {code}); restarting it in {pause:g} s "
                     "(the other service keeps running)", flush=True)
            svc.stop()
            self.due[svc.name] = now + pause
            self.backoff[svc.name] = min(self.MAX_BACKOFF_S, pause * 2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service_common.serve", description=__doc__)
    parser.add_argument("--check", action="store_true", help="start, wait until ready, then stop")
    parser.add_argument("--log-dir", type=Path, default=None, help="write each service's log there")
    parser.add_argument("--service", choices=tuple(APPS), default=None,
                        help="start only this service (one per container); default: "
                             "BACKDROP_SERVICE, else both")
    parser.add_argument("--fetch-weights", nargs="+", default=None, metavar="NAME",
                        help="first fetch these weights when missing (the weights command); "
                             "default: BACKDROP_FETCH_WEIGHTS")
    args = parser.parse_args(argv)
    for warning in unknown_variables():
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    seg, mat = services_from_settings(settings, args.log_dir)
    args.service = args.service or settings.service
    fetch = settings.fetch_weights if args.fetch_weights is None else args.fetch_weights
    chosen = [svc for svc in (seg, mat) if args.service in (None, svc.name)]
    problems = preflight(*chosen)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if problems:
        return 2
    if fetch:
        from .weights import main as fetch_weights

        if fetch_weights([*fetch, "--quiet"]) != 0:
            print("error: the weights above could not be fetched; mount them into "
                  f"{settings.models_dir} instead (BACKDROP_MODELS_DIR)", file=sys.stderr)
            return 1
    stop = {"now": False}

    def _on_signal(signum, frame):  # noqa: ARG001
        stop["now"] = True

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        with running(*chosen, ready=args.service is None):
            if args.service is None:
                for svc in chosen:  # what /readyz said when wait_ready saw it ready
                    print(f"{svc.name:12s} ready at {svc.url}  {svc.ready_info}", flush=True)
            if args.check:
                return 0
            print("both services ready; Ctrl-C stops them" if args.service is None else
                  f"{args.service} service started at {chosen[0].url}; Ctrl-C stops it", flush=True)
            supervisor = Supervisor(chosen)
            while not stop["now"]:
                supervisor.tick()
                time.sleep(0.5)
    except ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("services stopped", flush=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
