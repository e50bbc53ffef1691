"""Both services started side by side, as ``make serve`` starts them, share nothing through
gunicorn's per-user control socket."""

from __future__ import annotations

from service_common.serve import gunicorn_has


def test_gunicorn_masters_open_no_control_socket(offline_services):
    """gunicorn 25.1+ opens a control socket at one path per user ($HOME/.gunicorn/gunicorn.ctl)
    unless told not to: the second master of ``make serve`` took the first one's path over
    (with a third, ``Control server error: ... already in use``), and a user whose home is not
    writable got an error at every start. Nothing here uses it, so it is off."""
    for service in offline_services:
        assert service.log_path is not None
        log = service.log_path.read_text(errors="replace")
        assert "Control socket" not in log and "Control server" not in log, log[-2000:]
    assert gunicorn_has("timeout") and not gunicorn_has("no_such_setting")


def test_free_port_never_hands_out_a_port_twice(monkeypatch):
    """The kernel may answer the same free port to two binds in a row; two services given it
    would share it (the second cannot bind, the first answers for both)."""
    from service_common import serve

    answers = iter([40001, 40001, 40001, 40002])

    class FakeSocket:
        def __init__(self, *args: object) -> None:
            self.port = next(answers)

        def __enter__(self) -> FakeSocket:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

        def bind(self, address: tuple[str, int]) -> None:
            pass

        def getsockname(self) -> tuple[str, int]:
            return ("127.0.0.1", self.port)

    monkeypatch.setattr(serve, "_GIVEN_PORTS", set())
    monkeypatch.setattr(serve.socket, "socket", FakeSocket)
    assert serve.free_port() == 40001
    assert serve.free_port() == 40002
