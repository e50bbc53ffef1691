"""Slow clients against the whole stack: does a normal request still answer in time?

Usage::

    python bench/slow_clients.py                 # 50 slowloris + 50 slow-body per service
    python bench/slow_clients.py --attackers 20 --seconds 20

For each setting (``BACKDROP_FRONT=1``, the default, then ``BACKDROP_FRONT=0``: gunicorn
listening itself, as before the front existed) in the same run:

1. both services as ``make serve`` starts them; the median time of a normal request (the
   sample portrait through ``/v1/matte``) with nobody else connected;
2. ``--attackers`` slowloris connections (headers, one byte every 3 s) and as many slow-body
   connections (full headers, ``Content-Length: 1000000``, then one byte every 3 s) against
   *each* service, kept open (reopened when the server closes one) for ``--seconds``;
   meanwhile normal requests, each with a 30 s limit; their median time, the ratio to the
   unloaded one, and how many attacking connections the server closed, how soon.

Markdown on stdout.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.stack import serving  # noqa: E402

PHOTO = (REPO / "samples" / "astronaut.png").read_bytes()
DRIP_S = 3.0
LIMIT_S = 30.0


def normal_request(url: str) -> float | None:
    """Seconds for one portrait through /v1/matte; ``None`` when it failed or took > 30 s."""
    started = time.perf_counter()
    try:
        resp = requests.post(url + "/v1/matte", files={"image": ("p.png", PHOTO, "image/png")},
                             data={"bg_color": "#1e88e5"}, timeout=LIMIT_S)
    except requests.RequestException:
        return None
    return time.perf_counter() - started if resp.status_code == 200 else None


class Attack:
    """Slow connections against ``ports``, kept open for as long as it runs."""

    def __init__(self, ports: list[int], per_kind: int) -> None:
        self.ports = ports
        self.per_kind = per_kind
        self.stop = threading.Event()
        self.closed_after: list[float] = []
        self.threads = [threading.Thread(target=self._one, args=(port, kind), daemon=True)
                        for port in ports for kind in ("head", "body") for _ in range(per_kind)]

    def _one(self, port: int, kind: str) -> None:
        first = (b"POST /v1/matte HTTP/1.1\r\nHost: x\r\n" if kind == "head" else
                 b"POST /v1/matte HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n"
                 b"Content-Type: application/octet-stream\r\n\r\n")
        while not self.stop.is_set():
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                opened = time.monotonic()
                sock.sendall(first)
                while not self.stop.wait(DRIP_S):
                    sock.sendall(b"X-a: b\r\n"[:1] if kind == "head" else b"x")
            except OSError:
                self.closed_after.append(time.monotonic() - opened)
                time.sleep(0.5)
                continue
            sock.close()

    def __enter__(self) -> Attack:
        for t in self.threads:
            t.start()
        time.sleep(2.0)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()


def run(front: bool, attackers: int, seconds: float, tmp: Path) -> dict:
    with serving(tmp, BACKDROP_FRONT="1" if front else "0") as (seg, mat):
        normal_request(mat.url)  # warm
        quiet = [t for t in (normal_request(mat.url) for _ in range(5)) if t is not None]
        base = statistics.median(quiet)
        with Attack([seg.port, mat.port], attackers) as attack:
            times: list[float | None] = []
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                times.append(normal_request(mat.url))
            closed = list(attack.closed_after)
    answered = [t for t in times if t is not None]
    return {"base": base, "times": times, "answered": answered, "closed": closed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--attackers", type=int, default=50, help="slow connections of each kind per service")
    parser.add_argument("--seconds", type=float, default=40.0)
    args = parser.parse_args(argv)
    print(f"## {args.attackers} slowloris + {args.attackers} slow-body connections per service, "
          f"{args.seconds:g} s\n")
    print("| setting | unloaded | under attack (median) | ratio | answered "
          "| attack connections closed by the server (median after) |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for front in (True, False):
            r = run(front, args.attackers, args.seconds, Path(tmp))
            loaded = statistics.median(r["answered"]) if r["answered"] else float("nan")
            closed = (f"{len(r['closed'])} ({statistics.median(r['closed']):.1f} s)" if r["closed"] else "0")
            name = "front (BACKDROP_FRONT=1)" if front else "gunicorn alone (BACKDROP_FRONT=0)"
            answered = f"{len(r['answered'])} of {len(r['times'])}"
            ratio = f"{loaded / r['base']:.2f}" if r["answered"] else "-"
            loaded_text = f"{loaded:.2f} s" if r["answered"] else f"none within {LIMIT_S:g} s"
            print(f"| {name} | {r['base']:.2f} s | {loaded_text} | {ratio} | {answered} | {closed} |",
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
