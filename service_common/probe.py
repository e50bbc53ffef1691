"""``python -m service_common.probe PORT [PATH]``: exit 0 when ``http://127.0.0.1:PORT/PATH``
answers 200, else 1 with one line saying what it got. ``PORT`` may be ``auto``: the port of
the service ``BACKDROP_SERVICE`` names (``BACKDROP_SEGMENTATION_PORT`` or ``BACKDROP_MATTING_PORT``).

The containers' health checks (``HEALTHCHECK``, compose) use it: the images carry no curl,
and it needs nothing but the standard library. ``PATH`` is ``healthz`` (alive, the default)
or ``readyz`` (models loaded, and for matting its segmentation service ready).
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request


def probe(port: int, path: str = "healthz", timeout: float = 5.0) -> tuple[bool, str]:
    """``(ok, what happened)`` for one GET of ``/path`` on this machine's ``port``."""
    url = f"http://127.0.0.1:{port}/{path.lstrip('/')}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback only
            return resp.status == 200, f"{url}: HTTP {resp.status}"
    except urllib.error.HTTPError as exc:
        return False, f"{url}: HTTP {exc.code} {exc.read(300).decode('utf-8', 'replace')}"
    except (urllib.error.URLError, OSError) as exc:
        return False, f"{url}: {exc}"


def _own_port() -> int:
    from .config import Settings

    settings = Settings.from_env()
    return settings.seg_port if settings.service == "segmentation" else settings.matting_port


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or not (args[0].isdigit() or args[0] == "auto") or len(args) > 2:
        print("usage: python -m service_common.probe PORT|auto [healthz|readyz]", file=sys.stderr)
        return 2
    port = int(args[0]) if args[0] != "auto" else _own_port()
    ok, what = probe(port, args[1] if len(args) > 1 else "healthz")
    if not ok:
        print(what, file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
