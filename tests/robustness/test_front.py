"""The buffering front (:mod:`service_common.front`): slow clients, protocol errors,
overload and clients that leave, against a stand-in for gunicorn (a Unix-socket server whose
answers take as long as the test says) and against the real services.

The stand-in is an upstream *server*, not a model: it counts what reaches it, so a test can
see that a dropped request never arrived."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from service_common.front import HALF_CLOSE_S, Front, Limits
from service_common.serve import free_port


class Upstream:
    """A Unix-socket HTTP server answering ``{"ok": path}`` after ``delay`` seconds, with a
    ``Server: gunicorn`` header as gunicorn sends.

    ``threads``: how many requests it works on at once (gunicorn's worker threads); the
    others wait for one, as in gunicorn. ``/redirect`` answers a 308 whose absolute
    ``Location`` names the request's ``Host`` (as werkzeug builds it), ``/unavailable`` a
    503 without ``Retry-After``. ``received`` lists the request lines that reached it,
    ``finished`` those it has answered."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.delay = 0.0
        self.hang_up = False  # close without answering, as a worker killed mid-request does
        self.threads = 1000
        self.received: list[str] = []
        self.finished: list[str] = []
        self._busy = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            writer.close()  # connected and closed: the front's /healthz
            return
        lines = head.decode("latin-1").split("\r\n")
        length = next((int(h.split(":")[1]) for h in lines if h.lower().startswith("content-length")), 0)
        await reader.readexactly(length)
        while self._busy >= self.threads:  # every thread is busy: wait for one
            await asyncio.sleep(0.01)
        self._busy += 1
        try:
            self.received.append(lines[0])
            await asyncio.sleep(self.delay)
        finally:
            self._busy -= 1
        if self.hang_up:
            writer.close()
            return
        path = lines[0].split()[1]
        host = next((h.split(":", 1)[1].strip() for h in lines if h.lower().startswith("host:")), "")
        status, extra = b"200 OK", b""
        if path == "/redirect":
            status, extra = b"308 PERMANENT REDIRECT", f"Location: http://{host}/redirected?x=1\r\n".encode()
        elif path == "/unavailable":
            status = b"503 SERVICE UNAVAILABLE"
        body = json.dumps({"ok": path, "headers": lines[1:]}).encode()
        writer.write(b"HTTP/1.1 " + status + b"\r\nServer: gunicorn\r\nContent-Type: application/json\r\n"
                     + extra + b"Content-Length: " + str(len(body)).encode()
                     + b"\r\nConnection: close\r\n\r\n" + body)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        self.finished.append(lines[0])
        writer.close()


class Running:
    """The front on a free port in a thread, in front of :class:`Upstream` (or of a socket
    where nothing listens: ``upstream=False``)."""

    def __init__(self, tmp: Path, upstream: bool = True, **limits: float) -> None:
        self.with_upstream = upstream
        self.upstream = Upstream(tmp / "up.sock")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.front = None
        self.limits = Limits(**{"client_timeout": 1.0, "min_rate": 1024.0, "max_body": 1 << 20,
                                "request_timeout": 5.0, "slots": 1, "max_queue": 1, **limits})
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def main() -> None:
            if self.with_upstream:
                await asyncio.start_unix_server(self.upstream.handle, str(self.upstream.path))
            self.front = Front(str(self.upstream.path), self.limits, "test")
            server = await asyncio.start_server(self.front.handle, "127.0.0.1", self.port)
            async with server:
                await asyncio.Event().wait()

        self.main = self.loop.create_task(main())  # held: the loop keeps only weak references
        self.loop.run_forever()  # until __exit__ has cancelled every task and stopped it

    def __enter__(self) -> Running:
        self.thread.start()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("the front did not start")

    def __exit__(self, *exc: object) -> None:
        async def shutdown() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.loop.stop()

        asyncio.run_coroutine_threadsafe(shutdown(), self.loop)
        self.thread.join(timeout=5)


@pytest.fixture
def front(tmp_path) -> Iterator[Running]:
    with Running(tmp_path) as running:
        yield running


def _raw(port: int, data: bytes, wait: float = 3.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(data)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            pass
    return b"".join(chunks)


def _error(answer: bytes) -> tuple[int, dict]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    error = json.loads(body)["error"]
    assert error["request_id"] and b"X-Request-Id" in head
    return status, error


def test_a_normal_request_passes_with_its_body_and_the_request_id(front):
    resp = requests.post(front.url + "/v1/x?a=1", data=b"abc" * 100, headers={"X-Request-Id": "mine-1"},
                         timeout=5)
    assert resp.status_code == 200 and resp.json()["ok"] == "/v1/x?a=1"
    forwarded = resp.json()["headers"]
    assert "Content-Length: 300" in forwarded and "X-Request-Id: mine-1" in forwarded
    assert any(h.startswith("X-Forwarded-For: 127.0.0.1") for h in forwarded)


def test_chunked_bodies_are_read_and_forwarded_with_a_length(front):
    def chunks():
        yield b"hello "
        yield b"world"
    resp = requests.post(front.url + "/v1/x", data=chunks(), timeout=5)
    assert resp.status_code == 200
    assert "Content-Length: 11" in resp.json()["headers"]
    assert not any(h.lower().startswith("transfer-encoding") for h in resp.json()["headers"])


@pytest.mark.parametrize(("raw", "status", "code"), [
    (b"POST /v1/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n",
     400, "bad_request"),
    (b"POST /v1/x HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400, "bad_request"),
    (b"POST /v1/x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc",
     400, "bad_request"),
    (b"GET /healthz HTTP/1.1\r\nHost: x\nBad: 1\r\n\r\n", 400, "bad_request"),
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad: a\x00b\r\n\r\n", 400, "bad_request"),
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad: a\rb\r\n\r\n", 400, "bad_request"),
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long"),
    (b"GET /healthz HTTP/1.1\r\n" + b"".join(b"H%d: v\r\n" % i for i in range(101)) + b"\r\n",
     431, "header_too_large"),
    (b"GET /healthz HTTP/1.1\r\nBig: " + b"v" * 40000 + b"\r\n\r\n", 431, "header_too_large"),
    (b"POST /v1/x HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n", 413, "payload_too_large"),
    (b"NOT HTTP\r\n\r\n", 400, "bad_request"),
])
def test_protocol_errors_are_json_with_a_request_id(front, raw, status, code):
    got_status, error = _error(_raw(front.port, raw))
    assert (got_status, error["code"]) == (status, code), error
    assert not front.upstream.received  # nothing malformed reaches gunicorn


def test_slow_headers_and_slow_bodies_are_cut_off_and_do_not_block_others(tmp_path):
    with Running(tmp_path, client_timeout=3.0) as front:
        _slow_clients(front)


def _slow_clients(front: Running) -> None:
    slow = []
    for i in range(20):
        sock = socket.create_connection(("127.0.0.1", front.port))
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHo" if i % 2 else
                     b"POST /v1/x HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nab")
        slow.append(sock)
    started = time.perf_counter()
    assert requests.get(front.url + "/v1/fast", timeout=10).status_code == 200
    # answered while every slow connection is still open (none has reached its deadline)
    assert time.perf_counter() - started < front.limits.client_timeout
    time.sleep(front.limits.client_timeout + 0.5)  # the body needs 100 s at 1 KB/s
    for i, sock in enumerate(slow):
        if i % 2:  # the slow head: cut off after client_timeout
            sock.settimeout(2)
            status, error = _error(sock.recv(65536))
            assert (status, error["code"]) == (408, "client_timeout")
        sock.close()
    assert front.upstream.received == ["GET /v1/fast HTTP/1.1"]


def test_a_body_shorter_than_its_length_times_out(tmp_path):
    with Running(tmp_path, client_timeout=0.5, min_rate=1_000_000.0) as front:
        status, error = _error(_raw(front.port, b"POST /v1/x HTTP/1.1\r\nHost: x\r\nContent-Length: 500"
                                    b"\r\n\r\nonly this", wait=4))
        assert (status, error["code"]) == (408, "client_timeout")
        assert "slower than" in error["message"]


def test_beyond_the_queue_the_answer_is_503_at_once_with_retry_after(front):
    front.upstream.delay = 1.0
    results: list[requests.Response] = []

    def call() -> None:
        results.append(requests.get(front.url + "/v1/slow", timeout=10))

    threads = [threading.Thread(target=call) for _ in range(2)]  # one served, one waiting
    for t in threads:
        t.start()
        time.sleep(0.1)
    refused = requests.get(front.url + "/v1/third", timeout=10)
    assert threads[0].is_alive()  # refused at once: the first request is still being served
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
    assert refused.json()["error"]["code"] == "overloaded"
    probe = requests.get(front.url + "/healthz", timeout=10)  # probes skip the queue
    assert probe.status_code == 200
    for t in threads:
        t.join()
    assert [r.status_code for r in results] == [200, 200]


def test_a_waiting_request_whose_client_left_is_never_run(front):
    """A client that closes while its request waits (later than a half-close would) has left."""
    front.upstream.delay = 2.0
    busy = threading.Thread(target=lambda: requests.get(front.url + "/v1/first", timeout=10))
    busy.start()
    time.sleep(0.2)
    sock = socket.create_connection(("127.0.0.1", front.port))
    sock.sendall(b"GET /v1/abandoned HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(4 * HALF_CLOSE_S)
    sock.close()  # gave up while waiting
    busy.join()
    time.sleep(0.3)
    assert front.upstream.received == ["GET /v1/first HTTP/1.1"]


def test_an_answer_that_takes_too_long_is_a_504(tmp_path):
    with Running(tmp_path, request_timeout=0.5) as front:
        front.upstream.delay = 2.0
        resp = requests.get(front.url + "/v1/slow", timeout=5)
        assert resp.status_code == 504 and resp.json()["error"]["code"] == "request_timeout"


def test_no_upstream_is_503_not_ready(tmp_path):
    with Running(tmp_path, upstream=False) as front:
        resp = requests.get(front.url + "/v1/x", timeout=5)
        assert resp.status_code == 503 and resp.json()["error"]["code"] == "not_ready"
        assert resp.headers["Retry-After"] == "1"


def test_keep_alive_connections_carry_several_requests(front):
    with requests.Session() as session:
        for i in range(3):
            assert session.get(front.url + f"/v1/{i}", timeout=5).json()["ok"] == f"/v1/{i}"
    assert len(front.upstream.received) == 3


# ------------------------------------------------------------------ the real services


def test_the_real_services_answer_through_their_fronts(offline_services):
    seg, mat = offline_services
    assert seg.front_process is not None and mat.front_process is not None
    status, error = _error(_raw(mat.port, b"POST /v1/matte HTTP/1.1\r\nHost: x\r\n"
                                b"Transfer-Encoding: chunked\r\n\r\nzz\r\n"))
    assert (status, error["code"]) == (400, "bad_request")
    status, error = _error(_raw(seg.port, b"GET /readyz HTTP/1.1\r\n" + b"X: y\r\n" * 101 + b"\r\n"))
    assert (status, error["code"]) == (431, "header_too_large")


def test_a_worker_that_dies_mid_request_leaves_its_client_a_503_not_silence(front):
    front.upstream.hang_up = True
    resp = requests.post(front.url + "/v1/matte", data=b"photo", timeout=5)
    assert resp.status_code == 503 and resp.headers["Retry-After"] == "1"
    error = resp.json()["error"]
    assert error["code"] == "not_ready" and "stopped while answering" in error["message"]


def test_head_requests_get_the_headers_without_waiting_for_a_body(offline_services):
    _, mat = offline_services
    resp = requests.head(mat.url + "/healthz", timeout=5)  # not BACKDROP_REQUEST_TIMEOUT's 300 s
    assert resp.status_code == 200 and int(resp.headers["Content-Length"]) > 0


def test_expect_100_continue_is_answered_before_the_body(front):
    with socket.create_connection(("127.0.0.1", front.port), timeout=5) as sock:
        sock.sendall(b"POST /v1/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(b"hello")
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200")
    assert b"Expect" not in answer  # not forwarded
