"""How throughput scales with workers per service, and what the video client's ``--jobs``
should be: the whole stack on this machine, ratios against one worker in the same run.

Usage::

    python bench/scaling.py                      # photos: 1, 2 and 4 workers; video: jobs 1..8
    python bench/scaling.py --workers 1 2 --requests 24 --no-video

1. **photos**: both services as ``make serve`` starts them, with ``BACKDROP_SEGMENTATION_WORKERS`` =
   ``BACKDROP_MATTING_WORKERS`` = N (each worker loads its own models), the sample portrait
   at 1 MP sent ``--requests`` times by 8 clients at once; photos per second and the ratio to
   N = 1, and the workers' memory (RSS) after the run.
2. **video**: the default stack (1 worker each) and the video client on one dev clip with
   ``--jobs`` 1, 2, 4, 8 (frames in flight); frames per second and the ratio to 4 (the
   default). Skipped without the dev clips (``--input`` names another video).

Markdown on stdout.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.clips import find_clips  # noqa: E402
from bench.load import rss_by_worker  # noqa: E402
from bench.stack import serving  # noqa: E402
from client.video import VideoJob, process_video  # noqa: E402

CLIENTS = 8


def portrait_1mp() -> bytes:
    img = Image.open(REPO / "samples" / "astronaut.png").convert("RGB").resize((1024, 1024))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=92)
    return buf.getvalue()


def photos_per_second(url: str, photo: bytes, count: int) -> float:
    def one(_: int) -> None:
        resp = requests.post(url + "/v1/matte", files={"image": ("p.jpg", photo, "image/jpeg")},
                             data={"bg_color": "#1e88e5"}, timeout=600)
        resp.raise_for_status()

    for i in range(2):  # every worker warm
        one(i)
    started = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(one, range(count)))
    return count / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--input", type=Path, default=None, help="a video (default: a dev clip)")
    parser.add_argument("--no-video", action="store_true")
    args = parser.parse_args(argv)
    photo = portrait_1mp()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.workers:
            env = {"BACKDROP_SEGMENTATION_WORKERS": str(n), "BACKDROP_MATTING_WORKERS": str(n)}
            with serving(Path(tmp), **env) as (seg, mat):
                rate = photos_per_second(mat.url, photo, args.requests)
                rss = rss_by_worker([seg, mat])
            rows.append((n, rate, rss))
            print(f"workers {n}: {rate:.2f} photos/s", file=sys.stderr, flush=True)
        base = rows[0][1]
        print(f"## Photos (1 MP portrait, {CLIENTS} clients, {args.requests} requests)\n")
        print("| workers per service | photos / s | vs 1 worker | worker RSS, MB |")
        print("|---|---|---|---|")
        for n, rate, rss in rows:
            memory = ", ".join(
                f"{name} {sum(v for k, v in rss.items() if k.startswith(name)) // 1024 // n} x {n}"
                for name in ("segmentation", "matting"))
            print(f"| {n} | {rate:.2f} | {rate / base:.2f} | {memory} |")
        if args.no_video:
            return 0
        clip = args.input or next((c for c in find_clips(None) if "help" in c.name), None)
        if clip is None:
            print("\n(no video: pass --input)")
            return 0
        video_rows = []
        with serving(Path(tmp)) as (_, mat):
            for jobs in args.jobs:
                job = VideoJob(clip, Path(tmp) / f"jobs{jobs}.mp4", color="#1e88e5", server=mat.url,
                               timeout=300, jobs=jobs)
                result = process_video(job)
                video_rows.append((jobs, result.frames_per_second))
                print(f"jobs {jobs}: {result.frames_per_second:.2f} fps", file=sys.stderr, flush=True)
        default = dict(video_rows).get(4, video_rows[0][1])
        print(f"\n## Video ({clip.name}, 1 worker per service)\n")
        print("| --jobs | frames / s | vs --jobs 4 |")
        print("|---|---|---|")
        for jobs, fps in video_rows:
            print(f"| {jobs} | {fps:.2f} | {fps / default:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
