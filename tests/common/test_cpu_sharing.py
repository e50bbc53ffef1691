"""How a request learns that it shares the cores (service_common.cpu, service_common.web),
and what the ONNX models do with it: a real Flask app over real HTTP (gunicorn-free: the
werkzeug server with threads), real MODNet sessions."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import requests
from flask import Flask, jsonify
from werkzeug.serving import make_server

from segmentation_api.backends.modnet import MODNET, preprocess
from segmentation_api.backends.onnx_common import OnnxModel
from service_common.config import Settings
from service_common.cpu import IN_FLIGHT_HEADER, cores_shared, requests_in_flight, sharing_cores
from service_common.web import init_app


@pytest.fixture
def served():
    """A threaded app whose ``/count`` answers ``requests_in_flight()``; ``/wait`` holds
    until ``release`` is set."""
    app = Flask("sharing")
    init_app(app, Settings(log_level="WARNING"))
    release, arrived = threading.Event(), threading.Event()

    @app.get("/count")
    def count():
        return jsonify(in_flight=requests_in_flight(), shared=cores_shared())

    @app.get("/wait")
    def wait():
        arrived.set()
        release.wait(10)
        return jsonify(in_flight=requests_in_flight())

    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    yield url, release, arrived
    release.set()
    server.shutdown()


def test_a_lone_request_is_alone_and_the_senders_count_counts(served):
    url, _, _ = served
    assert requests.get(url + "/count", timeout=5).json() == {"in_flight": 1, "shared": False}
    sent = requests.get(url + "/count", headers={IN_FLIGHT_HEADER: "3"}, timeout=5).json()
    assert sent == {"in_flight": 3, "shared": True}
    for junk in ("many", "-4", ""):
        answer = requests.get(url + "/count", headers={IN_FLIGHT_HEADER: junk}, timeout=5).json()
        assert answer["in_flight"] == 1


def test_a_request_beside_another_one_shares(served):
    url, release, arrived = served
    result = {}
    waiting = threading.Thread(target=lambda: result.update(
        requests.get(url + "/wait", timeout=10).json()))
    waiting.start()
    assert arrived.wait(5)
    assert requests.get(url + "/count", timeout=5).json() == {"in_flight": 2, "shared": True}
    release.set()
    waiting.join(10)
    assert result == {"in_flight": 1}  # it was alone when it started
    assert requests.get(url + "/count", timeout=5).json()["in_flight"] == 1  # counted down


class _Recording:
    """Stands for an onnxruntime session: records which one ran."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log

    def run(self, outputs, feeds):  # noqa: ARG002 - the session API
        self.log.append(self.name)
        return [np.zeros(1, np.float32)]


def test_the_model_runs_wide_alone_and_narrow_when_shared(models_dir):
    model = OnnxModel(MODNET.path(models_dir), MODNET, threads=0)
    assert model.narrow is not model.wide
    x = preprocess(np.zeros((64, 64, 3), np.uint8))
    model.warm_up(x)
    assert np.asarray(model.run(x)[0]).shape[:2] == (1, 1)  # the real sessions answer
    log: list[str] = []
    model.wide, model.narrow = _Recording("wide", log), _Recording("narrow", log)
    model.run(x)
    with sharing_cores(2):
        model.run(x)
    with sharing_cores(1):
        model.run(x)
    assert log == ["wide", "narrow", "wide"]
    # a call that starts while another runs takes the narrow one
    log.clear()
    inside, go_on = threading.Event(), threading.Event()
    blocking = _Recording("wide", log)
    blocking.run = lambda outputs, feeds: (log.append("wide"), inside.set(), go_on.wait(5), [x])[-1]
    model.wide = blocking
    first = threading.Thread(target=model.run, args=(x,))
    first.start()
    assert inside.wait(5)
    model.run(x)
    go_on.set()
    first.join(5)
    assert log == ["wide", "narrow"]
    one = OnnxModel(MODNET.path(models_dir), MODNET, threads=1)
    assert one.narrow is one.wide  # nothing to narrow


def test_memory_is_trimmed_after_large_requests_and_every_so_often(monkeypatch):
    from service_common import memory

    calls = []
    monkeypatch.setattr(memory, "_malloc_trim", lambda: calls.append)
    monkeypatch.setattr(memory, "_count", 1)
    memory.enable(True)
    assert memory.after_request(memory.TRIM_AFTER_BYTES + 1) is True
    assert memory.after_request(1000) is False
    assert calls == [0]
    monkeypatch.setattr(memory, "_count", memory.TRIM_EVERY - 1)
    assert memory.after_request(None) is True  # the TRIM_EVERY-th request
    memory.enable(False)
    try:
        assert memory.after_request(memory.TRIM_AFTER_BYTES + 1) is False
    finally:
        memory.enable(True)


def test_the_services_start_with_glibc_tuned_unless_told_otherwise(monkeypatch):
    from service_common.memory import GLIBC_ENV
    from service_common.serve import Service

    seen = {}

    class Popen:
        def __init__(self, cmd, env, **kwargs):
            seen.setdefault("envs", []).append(env)

    monkeypatch.setattr("service_common.serve.subprocess.Popen", Popen)
    for name in GLIBC_ENV:
        monkeypatch.delenv(name, raising=False)
    Service("matting", 1, front=False).start()
    assert GLIBC_ENV.items() <= seen["envs"][-1].items()
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "1048576")  # the operator's own value wins
    Service("matting", 1, front=False).start()
    assert seen["envs"][-1]["MALLOC_MMAP_THRESHOLD_"] == "1048576"
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_")
    Service("matting", 1, front=False, malloc_tuning=False).start()
    assert "MALLOC_MMAP_THRESHOLD_" not in seen["envs"][-1]
