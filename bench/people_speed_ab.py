"""A photo over HTTP, this tree against an earlier commit, in one run (issue 23, item 3).

    .venv/bin/python bench/people_speed_ab.py --base 2df2356 [--megapixels 1] [--repeat 12]

The machines here drift by 1.5x within an hour, so a figure of one run cannot be compared
with a figure of another. This runs both trees side by side instead: a ``git worktree`` of
``--base`` (its numba kernels compiled first, outside the timing), one segmentation service
(this tree's: the change measured is the matting service's), and two matting services, one
per tree, each under gunicorn as ``make serve`` starts it. Requests alternate between the two
(the shipped portrait upscaled to ``--megapixels``, JPEG, ``POST /v1/matte`` over a colour,
JPEG answer), MODNet alone in this process after each one, so that all three see the same
load. Printed: the medians, each tree's ``HTTP / MODNet`` (the issue's target: at most 2 at
1 MP), ``this / base``, the Server-Timing of each tree's last request and how far the two
answers are apart. The worktree is removed at the end.
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import requests
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import service_common.serve as serve  # noqa: E402
from bench.people_speed import photo_at  # noqa: E402
from segmentation_api.backends.modnet import MODNET, MODNetBackend  # noqa: E402
from service_common.serve import Service, free_port, running  # noqa: E402


def rooted(service: Service, root: Path) -> Service:
    """``service``, started from the tree at ``root`` (its code, its front)."""
    start = service.start

    def start_there() -> Service:
        serve.REPO_ROOT = root
        try:
            return start()
        finally:
            serve.REPO_ROOT = REPO

    service.start = start_there  # type: ignore[method-assign]
    return service


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="the commit to compare with (any git revision)")
    parser.add_argument("--megapixels", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=12, help="requests to each tree")
    parser.add_argument("--models-dir", type=Path, default=REPO / "models")
    args = parser.parse_args(argv)

    rgb = photo_at(args.megapixels)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=92)
    body = buf.getvalue()
    modnet = MODNetBackend(MODNET.path(args.models_dir))
    env = {"BACKDROP_MODELS_DIR": str(args.models_dir.resolve()), "BACKDROP_LOG_LEVEL": "WARNING"}
    with tempfile.TemporaryDirectory(prefix="backdrop-base-") as tmp:
        base = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(base), args.base],
                       check=True)
        try:
            subprocess.run([sys.executable, "-m", "matting_api.precompile"], cwd=base, check=True)
            seg = Service("segmentation", free_port(), timeout=600, env=env)
            trees = {"this": REPO, "base": base}
            mats = {name: rooted(Service("matting", free_port(), timeout=600, threads=4,
                                         env={**env, "BACKDROP_SEGMENTATION_URL": seg.url}), root)
                    for name, root in trees.items()}
            with running(seg, *mats.values()):
                def post(service: Service) -> requests.Response:
                    resp = requests.post(service.url + "/v1/matte", files={"image": ("p.jpg", body)},
                                         data={"bg_color": "white", "format": "jpg"}, timeout=600)
                    resp.raise_for_status()
                    return resp

                for service in mats.values():  # warm both, allocators included
                    post(service)
                    post(service)
                seconds: dict[str, list[float]] = {name: [] for name in mats}
                alone: list[float] = []
                last: dict[str, requests.Response] = {}
                for _ in range(args.repeat):
                    for name, service in mats.items():
                        started = time.perf_counter()
                        last[name] = post(service)
                        seconds[name].append(time.perf_counter() - started)
                        started = time.perf_counter()
                        modnet.alpha(rgb)
                        alone.append(time.perf_counter() - started)
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(base)], check=False)
    m = statistics.median(alone)
    this, before = statistics.median(seconds["this"]), statistics.median(seconds["base"])
    print(f"{args.megapixels:g} MP ({rgb.shape[1]} x {rgb.shape[0]}), {args.repeat} requests to each "
          f"tree, medians; MODNet alone {m:.3f} s")
    print("| tree | HTTP s | HTTP / MODNet | Server-Timing of the last request |")
    print("|---|---:|---:|---|")
    for name, value in (("this", this), (f"base ({args.base})", before)):
        key = "this" if name == "this" else "base"
        print(f"| {name} | {value:.3f} | {value / m:.2f} | {last[key].headers.get('Server-Timing', '')} |")
    print(f"this / base: {this / before:.2f}")
    a, b = (np.asarray(Image.open(io.BytesIO(last[k].content))).astype(int) for k in ("this", "base"))
    print(f"answers apart: max {np.abs(a - b).max()}, mean {np.abs(a - b).mean():.4f} (8-bit JPEG)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
