"""The front (:mod:`service_common.front`) against the second attack (issue 24): body
deadlines from the advertised rate, memory given back, slots held while gunicorn works,
half-closed clients, malformed requests in JSON, probes answered without a worker thread,
and answers without gunicorn's banner or the client's ``Host``.

Most tests run the front in a thread before the stand-in for gunicorn of ``test_front``
(:class:`test_front.Upstream`); the memory test runs it as its own process, as the services
do, to read its resident memory; a few go through the real services' fronts. No assertion
is on time: each test asserts what was answered (status, JSON code, headers) or, for the
memory, figures with generous bounds.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from apierrors import assert_api_error
from robust_inputs import MAX_PIXELS, MAX_UPLOAD_MB, SEG_TIMEOUT, photo_png
from test_front import Running, _error, _raw

from bench.load import proc_memory_kb
from bench.soak import held_body_attack
from matting_api.routes import NEIGHBOUR_READY_S
from service_common.config import REPO_ROOT
from service_common.front import HALF_CLOSE_S, READY_WAIT_S
from service_common.memory import GLIBC_ENV
from service_common.serve import Service, free_port, running

MB = 1024 * 1024


@pytest.fixture
def front(tmp_path) -> Iterator[Running]:
    """The front in a thread before the stand-in (one slot, one place in the queue)."""
    with Running(tmp_path) as running:
        yield running


def _answer(sock: socket.socket, wait: float = 15.0) -> bytes:
    """Everything the front sends on ``sock`` until it closes (or ``wait`` s of silence)."""
    sock.settimeout(wait)
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except (TimeoutError, ConnectionResetError):
        pass
    return b"".join(chunks)


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


# ------------------------------------------------------------------ body deadlines (items 4, 5)


def test_an_idle_body_is_cut_after_the_grace_whatever_length_it_declared(tmp_path):
    """50 MB declared, nothing sent: 408 after the grace (the old total from the declared
    length gave it 13 hours at this rate, 27 minutes at the shipped one)."""
    with Running(tmp_path, client_timeout=1.0, min_rate=1024.0, max_body=60 * MB) as front, \
            socket.create_connection(("127.0.0.1", front.port)) as sock:
        sock.sendall(b"POST /v1/x HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\n\r\n")
        status, error = _error(_answer(sock))
        assert (status, error["code"]) == (408, "client_timeout")
        assert "slower than 1 KB/s" in error["message"]
        assert not front.upstream.received


def test_a_body_that_stops_after_a_burst_is_cut_after_the_grace(tmp_path):
    """Half a megabyte at once, then the client holds the rest: the burst buys no hour of
    silence; a pause longer than the grace ends it."""
    with Running(tmp_path, client_timeout=1.0, min_rate=1024.0) as front, \
            socket.create_connection(("127.0.0.1", front.port)) as sock:
        sock.sendall(b"POST /v1/x HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n" + b"a" * 500_000)
        status, error = _error(_answer(sock))
        assert (status, error["code"]) == (408, "client_timeout")
        assert not front.upstream.received


@pytest.mark.parametrize("chunked", [False, True])
def test_a_trickle_below_the_rate_is_cut(tmp_path, chunked):
    """A byte every 0.2 s against 10 KB/s after a 0.5 s grace: cut, whether by length or
    chunked (never a pause longer than the grace, so only the rate stops it)."""
    with Running(tmp_path, client_timeout=0.5, min_rate=10_240.0) as front, \
            socket.create_connection(("127.0.0.1", front.port)) as sock:
        framing = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: 100"
        sock.sendall(b"POST /v1/x HTTP/1.1\r\nHost: x\r\n" + framing + b"\r\n\r\n")
        for _ in range(50):  # 10 s at most
            try:
                sock.sendall(b"1\r\na\r\n" if chunked else b"a")
            except OSError:
                break  # cut off
            time.sleep(0.2)
        status, error = _error(_answer(sock))
        assert (status, error["code"]) == (408, "client_timeout")
        assert not front.upstream.received


def test_a_body_sent_in_pieces_above_the_rate_passes(tmp_path):
    """Pauses shorter than the grace and an average above the rate: the body arrives whole."""
    with Running(tmp_path, client_timeout=2.0, min_rate=1024.0) as front, \
            socket.create_connection(("127.0.0.1", front.port)) as sock:
        sock.sendall(b"POST /v1/x HTTP/1.1\r\nHost: x\r\nContent-Length: 4000\r\nConnection: close\r\n\r\n")
        for _ in range(4):
            time.sleep(0.3)
            sock.sendall(b"b" * 1000)
        answer = _answer(sock, wait=10)
    assert _status(answer) == 200
    assert "Content-Length: 4000" in json.loads(answer.partition(b"\r\n\r\n")[2])["headers"]


def _front_process(tmp_path: Path, **env: str) -> tuple[subprocess.Popen, int]:
    """``python -m service_common.front`` as :class:`service_common.serve.Service` starts it
    (glibc's memory settings, 4 slots), before a socket where nothing listens."""
    port = free_port()
    full = {**GLIBC_ENV, **os.environ, "PYTHONPATH": str(REPO_ROOT), "BACKDROP_LOG_LEVEL": "WARNING", **env}
    proc = subprocess.Popen(
        [sys.executable, "-m", "service_common.front", "--listen", f"127.0.0.1:{port}",
         "--upstream", str(tmp_path / "nobody.sock"), "--service", "matting", "--slots", "4"],
        cwd=REPO_ROOT, env=full)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the front did not start")


def test_bodies_held_by_many_clients_are_bounded_and_given_back(tmp_path):
    """30 clients send 40 MB of a 40,000,000-byte body each and hold the last byte: the
    front holds at most (slots + queue) x the upload limit (4 + 8) x 50 MB = 600 MB of
    them, not 1.2 GB, and its memory falls back once they close (it stayed at 2.3 GB)."""
    proc, port = _front_process(tmp_path, BACKDROP_CLIENT_TIMEOUT="60", BACKDROP_MAX_UPLOAD_MB="50",
                                BACKDROP_MAX_QUEUE="8")
    try:
        before = proc_memory_kb(proc.pid)["VmRSS"] / 1024
        socks = held_body_attack(port)
        peak = proc_memory_kb(proc.pid)["VmHWM"] / 1024
        for sock in socks:
            sock.close()
        after = peak
        for _ in range(100):  # 25 s at most
            after = proc_memory_kb(proc.pid)["VmRSS"] / 1024
            if after < before + 64:
                break
            time.sleep(0.25)
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    assert peak < before + 1100, f"the front peaked at {peak:.0f} MB (from {before:.0f} MB)"
    assert after < before + 64, f"the front kept {after:.0f} MB after the clients left (from {before:.0f} MB)"


def test_bodies_beyond_the_total_bound_are_refused_with_retry_after(tmp_path):
    """One client holds 1,000,000 bytes of its body; with 1.5 MB for all bodies together,
    a second one's body is refused once it would not fit: 503 overloaded, Retry-After."""
    with Running(tmp_path, client_timeout=30.0, max_buffered=1536 * 1024) as front, \
            socket.create_connection(("127.0.0.1", front.port)) as first, \
            socket.create_connection(("127.0.0.1", front.port)) as second:
        first.sendall(b"POST /v1/x HTTP/1.1\r\nHost: x\r\nContent-Length: 1000001\r\n"
                      b"Connection: close\r\n\r\n" + b"a" * 1_000_000)
        time.sleep(0.3)
        second.sendall(b"POST /v1/x HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n" + b"b" * 600_000)
        head, _, body = _answer(second).partition(b"\r\n\r\n")
        assert _status(head) == 503 and b"\r\nRetry-After: 1" in head
        assert json.loads(body)["error"]["code"] == "overloaded"
        first.sendall(b"a")  # the first one is still held, and completes
        assert _status(_answer(first, wait=2)) == 200


# ------------------------------------------------------------------ slots (item 6)


def test_after_a_504_the_slot_stays_taken_until_gunicorn_is_done(tmp_path):
    with Running(tmp_path, request_timeout=0.5, slots=1, max_queue=0) as front:
        front.upstream.delay = 2.0
        late = requests.get(front.url + "/v1/late", timeout=10)
        assert late.status_code == 504 and late.json()["error"]["code"] == "request_timeout"
        refused = requests.get(front.url + "/v1/next", timeout=10)  # gunicorn still works on /v1/late
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "overloaded"
        assert front.upstream.received == ["GET /v1/late HTTP/1.1"]


def test_a_request_whose_client_left_keeps_its_slot_until_gunicorn_answered(tmp_path):
    """One slot, one place in the queue. A's client leaves while gunicorn works on A: A's
    slot stays taken, so B waits and C is refused at once, as if A's client were there."""
    with Running(tmp_path, slots=1, max_queue=1) as front:
        front.upstream.delay = 2.0
        a = socket.create_connection(("127.0.0.1", front.port))
        a.sendall(b"GET /v1/a HTTP/1.1\r\nHost: x\r\n\r\n")
        for _ in range(100):  # until A is inside "gunicorn"
            if front.upstream.received:
                break
            time.sleep(0.02)
        time.sleep(2 * HALF_CLOSE_S)
        a.close()  # left, while its request runs
        time.sleep(0.2)
        results: list[requests.Response] = []
        b = threading.Thread(target=lambda: results.append(requests.get(front.url + "/v1/b", timeout=15)))
        b.start()
        for _ in range(100):  # until B waits in the queue
            if front.front is not None and front.front.waiting:
                break
            time.sleep(0.02)
        c = requests.get(front.url + "/v1/c", timeout=15)
        assert c.status_code == 503 and c.json()["error"]["code"] == "overloaded"
        assert c.headers["Retry-After"] == "1"
        b.join()
        assert results[0].status_code == 200 and results[0].json()["ok"] == "/v1/b"
        # A ran to its end (gunicorn cannot be stopped) before B started
        assert front.upstream.received == ["GET /v1/a HTTP/1.1", "GET /v1/b HTTP/1.1"]
        assert front.upstream.finished[0] == "GET /v1/a HTTP/1.1"


def _matte_bytes(photo: bytes, request_id: str) -> bytes:
    """A whole ``POST /v1/matte`` of ``photo`` as a client sends it, with its request id."""
    prepared = requests.Request("POST", "http://x/v1/matte", files={"image": ("p.png", photo)}).prepare()
    body = prepared.body if isinstance(prepared.body, bytes) else b""
    head = (f"POST /v1/matte HTTP/1.1\r\nHost: x\r\nX-Request-Id: {request_id}\r\n"
            f"Content-Type: {prepared.headers['Content-Type']}\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


def _hops(flaky) -> list[str]:
    """The request ids of the matting requests that reached the segmentation neighbour."""
    return [r.headers.get("X-Request-Id", "") for r in list(flaky.received) if r.path.startswith("/v1/")]


def test_the_issues_case_clients_that_leave_still_count_until_the_matting_worker_answers(
        flaky, models_dir, tmp_path):
    """Issue 24 item 6 on the real matting service (one thread, two places in the queue),
    its segmentation neighbour stalled. A's client leaves while A's thread waits on the
    hop: A keeps the only slot. Q's client leaves while Q waits in the queue: Q is dropped
    (it never reaches gunicorn nor the neighbour). B1 and B2 wait; C finds the queue full
    and gets 503 ``overloaded`` at once, not a place behind work nobody sees. Once the
    neighbour answers A, B1 and B2 are served."""
    photo = photo_png(80, 64, seed=5)
    mat = Service("matting", free_port(), threads=1, timeout=60, log_path=tmp_path / "matting.log", env={
        "BACKDROP_LOG_LEVEL": "INFO", "BACKDROP_TORCH_THREADS": "1", "BACKDROP_MODELS_DIR": str(models_dir),
        "BACKDROP_MAX_UPLOAD_MB": str(MAX_UPLOAD_MB), "BACKDROP_MAX_PIXELS": str(MAX_PIXELS),
        "BACKDROP_MATTING_BACKEND": "closed_form", "BACKDROP_SEGMENTATION_URL": flaky.url,
        "BACKDROP_SEGMENTATION_TIMEOUT": "30", "BACKDROP_MAX_QUEUE": "2"})
    with running(mat, ready_timeout=120):
        flaky.mode, flaky.delay = "sleep", 8.0  # A's hop holds the only thread this long
        flaky.received.clear()
        a = socket.create_connection(("127.0.0.1", mat.port))
        a.sendall(_matte_bytes(photo, "item6-a"))
        for _ in range(400):  # until A's thread waits on the neighbour (20 s at most)
            if "item6-a" in _hops(flaky):
                break
            time.sleep(0.05)
        assert _hops(flaky) == ["item6-a"]
        time.sleep(2 * HALF_CLOSE_S)  # a close sooner would be a half-close: the client waits
        a.close()  # A's client leaves; gunicorn's thread keeps waiting on the hop
        q = socket.create_connection(("127.0.0.1", mat.port))
        q.sendall(_matte_bytes(photo, "item6-q"))
        time.sleep(2 * HALF_CLOSE_S)
        q.close()  # Q's client leaves while Q waits in the front's queue
        time.sleep(0.3)
        waiting: dict[str, requests.Response] = {}

        def wait(name: str) -> None:
            waiting[name] = requests.post(mat.url + "/v1/matte", files={"image": ("p.png", photo)},
                                          headers={"X-Request-Id": f"item6-{name}"}, timeout=90)

        present = [threading.Thread(target=wait, args=(name,)) for name in ("b1", "b2")]
        for thread in present:
            thread.start()
            time.sleep(0.3)
        try:
            refused = requests.post(mat.url + "/v1/matte", files={"image": ("p.png", photo)}, timeout=20)
        except requests.Timeout:
            pytest.fail("the request beyond the queue waited instead of being refused at once: the "
                        "slot of a client that left was given back while gunicorn still worked on it")
        flaky.mode = "relay"  # the requests that wait get real trimaps once A's thread is free
        for thread in present:
            thread.join()
    assert_api_error(refused, 503, "overloaded")
    assert refused.headers["Retry-After"] == "1"
    assert "1 requests are being served and 2 wait" in refused.json()["error"]["message"]
    assert [waiting[n].status_code for n in ("b1", "b2")] == [200, 200], waiting
    hops = _hops(flaky)
    assert hops[0] == "item6-a" and sorted(hops[1:]) == ["item6-b1", "item6-b2"], hops  # Q never ran


# ------------------------------------------------------------------ half-closed clients (item 8)


def _half_closed(port: int, request: bytes) -> bytes:
    """``printf REQUEST | nc -N 127.0.0.1 PORT``: send, shut the sending side, read all."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        return _answer(sock)


def test_half_closed_clients_get_their_answer(front):
    answer = _half_closed(front.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert _status(answer) == 200 and answer.endswith(b'{"status":"ok"}\n')
    answer = _half_closed(front.port, b"POST /v1/x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
    assert _status(answer) == 200 and json.loads(answer.partition(b"\r\n\r\n")[2])["ok"] == "/v1/x"
    assert b"Connection: close" in answer


def test_a_half_closed_client_waiting_in_the_queue_is_answered(front):
    front.upstream.delay = 1.0
    busy = threading.Thread(target=lambda: requests.get(front.url + "/v1/first", timeout=10))
    busy.start()
    time.sleep(0.2)
    answer = _half_closed(front.port, b"GET /v1/second HTTP/1.1\r\nHost: x\r\n\r\n")
    busy.join()
    assert _status(answer) == 200 and json.loads(answer.partition(b"\r\n\r\n")[2])["ok"] == "/v1/second"


def test_the_real_services_answer_half_closed_clients(offline_services):
    """The issue's ``printf 'GET /healthz ...' | nc -N 127.0.0.1 5000`` (0 bytes, 3 of 3), on
    both services: /healthz (the front's) and /readyz (gunicorn's) come back whole."""
    for service in offline_services:
        for _ in range(3):
            answer = _half_closed(service.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _status(answer) == 200 and answer.endswith(b'{"status":"ok"}\n')
        head, _, body = _half_closed(service.port, b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n"
                                     ).partition(b"\r\n\r\n")
        assert _status(head) == 200 and json.loads(body)["status"] == "ready"


# ------------------------------------------------------------------ malformed requests (items 9, 10)


_TARGET_BYTES = [*range(0x00, 0x20), 0x7F, *range(0x80, 0x100)]
_VALUE_BYTES = [*range(0x00, 0x09), *range(0x0A, 0x20), 0x7F]
MALFORMED = {
    "lowercase method": b"get /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    "odd method": b"G#T /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    "duplicate Host": b"GET /openapi.json HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "duplicate Content-Type": b"POST /v1/matte HTTP/1.1\r\nHost: a\r\nContent-Type: a/b\r\n"
                              b"Content-Type: c/d\r\nContent-Length: 0\r\n\r\n",
    "Content-Length superscript two": b"POST /v1/matte HTTP/1.1\r\nHost: x\r\nContent-Length: \xb2\r\n\r\n",
    "Content-Length fullwidth digits": "POST /v1/matte HTTP/1.1\r\nHost: x\r\nContent-Length: "
                                       "\uff11\uff12\r\n\r\n".encode(),
    "Content-Length Arabic-Indic digits": "POST /v1/matte HTTP/1.1\r\nHost: x\r\nContent-Length: "
                                          "\u0661\u0662\r\n\r\n".encode(),
    "raw UTF-8 path": "GET /caf\u00e9 HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
    "absolute-form target": b"GET http://evil.example/healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    "HTTP/2 request line": b"GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n",
}
MALFORMED |= {f"target byte {b:#04x}": b"GET /a" + bytes([b]) + b"b HTTP/1.1\r\nHost: x\r\n\r\n"
              for b in _TARGET_BYTES}
MALFORMED |= {f"header value byte {b:#04x}": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a"
              + bytes([b]) + b"b\r\n\r\n" for b in _VALUE_BYTES}


@pytest.mark.parametrize("raw", list(MALFORMED.values()), ids=list(MALFORMED))
def test_every_malformed_request_is_a_json_400_from_the_front(front, raw):
    status, error = _error(_raw(front.port, raw))
    assert (status, error["code"]) == (400, "bad_request"), error
    assert not front.upstream.received  # nothing malformed reaches gunicorn


def test_a_tab_in_a_header_value_and_printable_targets_pass(front):
    answer = _raw(front.port, b"GET /a%20b?q=~!$&'()*+,;=:@/? HTTP/1.1\r\nHost: x\r\nX-A: a\tb\r\n"
                  b"Connection: close\r\n\r\n")
    assert _status(answer) == 200


@pytest.mark.parametrize("name", ["lowercase method", "odd method", "duplicate Host",
                                  "Content-Length superscript two", "raw UTF-8 path",
                                  "target byte 0x01", "target byte 0x7f", "target byte 0xff",
                                  "header value byte 0x01", "header value byte 0x7f"])
def test_the_real_services_answer_malformed_requests_in_json(offline_services, name):
    for service in offline_services:
        head, _, body = _raw(service.port, MALFORMED[name]).partition(b"\r\n\r\n")
        assert b"Content-Type: application/json" in head and b"<html" not in body.lower()
        assert json.loads(body)["error"]["code"] == "bad_request"


# ------------------------------------------------------------------ answers (item 12)


def test_answers_carry_no_server_banner_nor_the_clients_host(front):
    resp = requests.get(front.url + "/v1/x", timeout=5)
    assert resp.status_code == 200 and "Server" not in resp.headers
    resp = requests.get(front.url + "/redirect", allow_redirects=False, timeout=5,
                        headers={"Host": "evil.example", "X-Forwarded-Proto": "https"})
    assert resp.status_code == 308 and resp.headers["Location"] == "/redirected?x=1"
    forwarded = resp.json()["headers"]
    assert not any(h.lower().startswith("x-forwarded-proto") for h in forwarded)


def test_a_503_of_the_application_gets_retry_after(front):
    resp = requests.get(front.url + "/unavailable", timeout=5)
    assert resp.status_code == 503 and resp.headers["Retry-After"] == "1"


def test_the_real_slash_redirect_names_neither_host_nor_claimed_scheme(offline_services):
    """werkzeug merges the slashes with a 308 to an absolute URL built from ``Host`` and
    ``X-Forwarded-Proto``; the client gets the path only."""
    _, mat = offline_services
    status, head = 0, b""
    with socket.create_connection(("127.0.0.1", mat.port), timeout=10) as sock:
        sock.sendall(b"GET /page//index.html HTTP/1.1\r\nHost: evil.example\r\nX-Forwarded-Proto: https\r\n"
                     b"Connection: close\r\n\r\n")
        head = _answer(sock).partition(b"\r\n\r\n")[0]
        status = _status(head)
    assert status == 308, head
    assert b"\r\nLocation: /page/index.html\r\n" in head and b"evil" not in head and b"https" not in head
    for path in ("/openapi.json", "/healthz", "/readyz", "/nowhere"):
        assert "Server" not in requests.get(mat.url + path, timeout=10).headers


def test_segmentation_unavailable_has_retry_after(flaky_matting, flaky):
    flaky.stop()
    resp = requests.post(flaky_matting.url + "/v1/matte", files={"image": ("p.png", photo_png(80, 64))},
                         timeout=30)
    assert_api_error(resp, 503, "segmentation_unavailable")
    assert int(resp.headers["Retry-After"]) >= 1  # the application's own, or the front's


# ------------------------------------------------------------------ probes (item 7)


def test_probes_answer_while_every_worker_thread_is_busy(tmp_path):
    """gunicorn with one thread, busy for 3 s: /healthz is answered by the front (it never
    reaches gunicorn), /readyz says 503 not_ready within its wait instead of queueing
    behind the thread, and concurrent probes share one readiness check."""
    with Running(tmp_path, slots=1, max_queue=1) as front:
        front.upstream.delay, front.upstream.threads = 3.0, 1
        busy = threading.Thread(target=lambda: requests.get(front.url + "/v1/slow", timeout=15))
        busy.start()
        for _ in range(100):
            if front.upstream.received:
                break
            time.sleep(0.02)
        health = requests.get(front.url + "/healthz", timeout=15)
        assert health.status_code == 200 and health.json() == {"status": "ok"}
        with ThreadPoolExecutor(3) as pool:
            probes = list(pool.map(lambda _: requests.get(front.url + "/readyz", timeout=15), range(3)))
        for probe in probes:
            assert_api_error(probe, 503, "not_ready")
            assert probe.headers["Retry-After"] == "1"
            assert f"within {READY_WAIT_S:g} s" in probe.json()["error"]["message"]
        front.upstream.delay = 0.0  # the waiting check, once it has the thread, is quick
        busy.join()
        ready = None
        for _ in range(20):  # the pending check ends with the thread's work; then 200
            ready = requests.get(front.url + "/readyz", timeout=15)
            if ready.status_code == 200:
                break
            time.sleep(0.25)
        assert ready is not None and ready.status_code == 200 and ready.json()["ok"] == "/readyz"
        assert "GET /healthz HTTP/1.1" not in front.upstream.received
        assert front.upstream.received.count("GET /readyz HTTP/1.1") <= 2  # not one per probe


def test_healthz_without_gunicorn_is_503(tmp_path):
    with Running(tmp_path, upstream=False) as front:
        resp = requests.get(front.url + "/healthz", timeout=5)
        assert_api_error(resp, 503, "not_ready")
        head = requests.head(front.url + "/readyz", timeout=5)
        assert head.status_code == 503 and head.headers["Retry-After"] == "1"


def test_readyz_names_a_stalled_neighbour_while_the_threads_are_free(flaky_matting, flaky):
    """The segmentation neighbour accepts connections and answers nothing; no matting request
    is in flight. /readyz says 503 not_ready naming the segmentation service (the neighbour's
    check fits in the front's wait), not that the matting threads are busy (it did: the
    neighbour's check took 2 s, the front gave up after 1 s), each time it is asked."""
    flaky.mode, flaky.delay = "sleep", SEG_TIMEOUT + 3
    for _ in range(2):
        ready = requests.get(flaky_matting.url + "/readyz", timeout=30)
        error = assert_api_error(ready, 503, "not_ready")
        assert int(ready.headers["Retry-After"]) >= 1
        assert "segmentation service did not answer its readiness check" in error["message"], error
        assert "worker threads" not in error["message"]
        assert error["segmentation"]["status"] == "unreachable"
        assert error["matting"] is not None  # the matting side's own state is still reported
    assert NEIGHBOUR_READY_S < READY_WAIT_S


def test_the_matting_probes_while_its_neighbour_stalls_every_thread(flaky_matting, flaky):
    """The segmentation neighbour sleeps; four matting requests hold all four threads on the
    hop. /healthz is still 200 (from the front: it never reaches gunicorn, whose access log
    has no /healthz line) and /readyz answers 503 not_ready saying why."""
    flaky.mode, flaky.delay = "sleep", SEG_TIMEOUT + 3
    photo = photo_png(80, 64, seed=3)

    def matte(_: int) -> int:
        return requests.post(flaky_matting.url + "/v1/matte", files={"image": ("p.png", photo)},
                             timeout=60).status_code

    with ThreadPoolExecutor(4) as pool:
        stuck = [pool.submit(matte, i) for i in range(4)]
        time.sleep(0.5)
        health = requests.get(flaky_matting.url + "/healthz", timeout=30)
        ready = requests.get(flaky_matting.url + "/readyz", timeout=30)
        statuses = [f.result() for f in stuck]
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert_api_error(ready, 503, "not_ready")
    assert "readiness check" in ready.json()["error"]["message"]
    assert statuses == [504] * 4  # segmentation_timeout: the threads were all on the hop
    assert flaky_matting.log_path is not None
    assert '"GET /healthz' not in flaky_matting.log_path.read_text(errors="replace")
