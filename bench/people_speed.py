"""Per-image time of the people pipeline (MODNet + refinement) next to the one it replaced.

    .venv/bin/python bench/people_speed.py [--sizes 0.5,1,2,4] [--repeat 3] [--no-http]
                                           [--foreground best|fast]

The shipped portrait (samples/astronaut.png) upscaled (bicubic) to each size in megapixels.
In-process, in the same run, the median of ``--repeat`` wall times of each step:

* ``modnet``: the MODNet backend (resize to 512 px, network, resize back);
* ``refine``: the refinement band (:func:`trimap.from_prior.prior_trimap`) and closed-form
  matting with the prior, foreground colour included (the offline matting backend);
* ``u2netp``: the U^2-Net-p backend, and ``cf-trimap``: the segmentation service's trimap
  of its mask and closed-form matting of that trimap without a prior: the pipeline before
  (less its non-local term, which was dropped and cost +50-65 % more);
* ``new`` = modnet + refine, ``old`` = u2netp + cf-trimap, and their ratio.

Then (unless ``--no-http``) the whole stack: both services under gunicorn with the offline
defaults, ``POST /v1/matte`` with a colour background and a JPEG answer (``--foreground``
sent when given, else the service's default), wall time per request as a user sees it,
interleaved with **MODNet alone** (the in-process backend above on the same photo, one call
after each request, so that both see the same load), and the ratios of their medians:
``HTTP/MODNet`` (issue 23's target: at most 2 at 1 MP) and ``HTTP/new`` (the cost of HTTP,
decoding, compositing and encoding). Ratios are the reliable part on a shared machine.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import requests
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from matting_api.backends.closed_form import ClosedFormBackend  # noqa: E402
from segmentation_api.backends.modnet import MODNET, MODNetBackend  # noqa: E402
from segmentation_api.backends.u2netp import U2NETP, U2NetPBackend  # noqa: E402
from service_common.serve import Service, free_port, running  # noqa: E402
from trimap.from_masks import build_trimap  # noqa: E402
from trimap.from_prior import prior_trimap  # noqa: E402

PHOTO = REPO / "samples" / "astronaut.png"


def median_s(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def photo_at(megapixels: float) -> np.ndarray:
    rgb = np.asarray(Image.open(PHOTO).convert("RGB"))
    side = round((megapixels * 1e6) ** 0.5)
    return cv2.resize(rgb, (side, side), interpolation=cv2.INTER_CUBIC)


def in_process(sizes: list[float], repeat: int, models: Path) -> dict[float, dict[str, float]]:
    modnet = MODNetBackend(MODNET.path(models))
    u2netp = U2NetPBackend(U2NETP.path(models))
    matting = ClosedFormBackend()
    matting.warm_up()
    rows = {}
    print(f"{'MP':>4} {'size':>9} {'modnet':>8} {'refine':>8} {'u2netp':>8} {'cf-trimap':>9} "
          f"{'new':>7} {'old':>7} {'refine/cf':>9} {'new/old':>7} {'refine/modnet':>13}")
    for mp in sizes:
        rgb = photo_at(mp)
        t_modnet, prior = median_s(lambda rgb=rgb: modnet.alpha(rgb), repeat)
        t_refine, _ = median_s(lambda rgb=rgb, p=prior: matting.matte(rgb, prior_trimap(p), p), repeat)
        t_u2netp, (_, mask) = median_s(lambda rgb=rgb: u2netp.saliency(rgb), repeat)
        trimap = build_trimap(mask)
        t_cf, _ = median_s(lambda rgb=rgb, m=mask: matting.matte(rgb, build_trimap(m).trimap), repeat)
        row = {"modnet": t_modnet, "refine": t_refine, "u2netp": t_u2netp, "cf-trimap": t_cf,
               "new": t_modnet + t_refine, "old": t_u2netp + t_cf,
               "band_share": float((prior_trimap(prior) == 128).mean()),
               "old_band_share": float((trimap.trimap == 128).mean())}
        rows[mp] = row
        print(f"{mp:>4g} {rgb.shape[1]:>4}x{rgb.shape[0]:<4} {t_modnet:>8.2f} {t_refine:>8.2f} "
              f"{t_u2netp:>8.2f} {t_cf:>9.2f} {row['new']:>7.2f} {row['old']:>7.2f} "
              f"{t_refine / t_cf:>9.2f} {row['new'] / row['old']:>7.2f} {t_refine / t_modnet:>13.2f}",
              flush=True)
    new_band = ", ".join(f"{r['band_share']:.1%}" for r in rows.values())
    old_band = ", ".join(f"{r['old_band_share']:.1%}" for r in rows.values())
    print(f"(seconds, median of {repeat}; unknown band: {new_band} of the image with the prior, "
          f"{old_band} with the segmentation trimap)")
    return rows


def over_http(sizes: list[float], repeat: int, models: Path, rows: dict[float, dict[str, float]],
              foreground: str | None = None) -> dict[float, dict[str, float]]:
    """Seconds per ``POST /v1/matte`` and of MODNet alone, interleaved, median of ``repeat``."""
    modnet = MODNetBackend(MODNET.path(models))
    env = {"BACKDROP_MODELS_DIR": str(models), "BACKDROP_LOG_LEVEL": "WARNING"}
    seg = Service("segmentation", free_port(), timeout=600, env=env)
    mat = Service("matting", free_port(), timeout=600, threads=4,
                  env={**env, "BACKDROP_SEGMENTATION_URL": seg.url})
    extra = {} if foreground is None else {"foreground": foreground}
    out: dict[float, dict[str, float]] = {}
    with running(seg, mat):
        print(f"\n{'MP':>4} {'HTTP s':>7} {'MODNet s':>8} {'HTTP/MODNet':>11} {'HTTP/new':>8}  "
              f"Server-Timing of the last request (foreground: {foreground or 'default'})")
        for mp in sizes:
            rgb = photo_at(mp)
            buf = io.BytesIO()
            Image.fromarray(rgb).save(buf, format="JPEG", quality=92)
            body = buf.getvalue()

            def post(body=body):
                resp = requests.post(mat.url + "/v1/matte", files={"image": ("p.jpg", body)},
                                     data={"bg_color": "white", "format": "jpg", **extra}, timeout=600)
                resp.raise_for_status()
                return resp

            post()  # the first request of a size warms the allocators
            modnet.alpha(rgb)
            http_s, modnet_s, resp = [], [], None
            for _ in range(repeat):
                seconds, resp = median_s(post, 1)
                http_s.append(seconds)
                modnet_s.append(median_s(lambda rgb=rgb: modnet.alpha(rgb), 1)[0])
            h, m = statistics.median(http_s), statistics.median(modnet_s)
            out[mp] = {"http": h, "modnet": m}
            print(f"{mp:>4g} {h:>7.2f} {m:>8.2f} {h / m:>11.2f} {h / rows[mp]['new']:>8.2f}  "
                  f"{resp.headers['Server-Timing']}", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="0.5,1,2,4", help="megapixels, comma-separated")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--models-dir", type=Path, default=REPO / "models")
    parser.add_argument("--no-http", action="store_true", help="only the in-process figures")
    parser.add_argument("--foreground", choices=("best", "fast"), default=None,
                        help="sent with each request (default: not sent, the service's default)")
    args = parser.parse_args(argv)
    sizes = [float(s) for s in args.sizes.split(",")]
    rows = in_process(sizes, args.repeat, args.models_dir)
    if not args.no_http:
        over_http(sizes, args.repeat, args.models_dir, rows, args.foreground)
    return 0


if __name__ == "__main__":
    sys.exit(main())
