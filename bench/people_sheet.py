"""Contact sheet of people, before and after: docs/people.png.

    .venv/bin/python bench/people_sheet.py [--data ../shared/data/dev] [--out docs/people.png]

Rows: the sample portrait, its mirror image, and frames of the dev videos of people (first
and middle frame of each clip; skipped with a note when the data folder is missing).
Columns, each composited in-process over a plain green that shows every fringe:

* the photo;
* **before**: U^2-Net-p, the segmentation trimap, closed-form matting (the pipeline this
  replaced, without its later-dropped non-local term);
* **MODNet alone**: its matte as the prior;
* **after**: MODNet refined by closed-form matting with the prior (the offline default now);
* the matte after, in grey.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.clips import frames_at  # noqa: E402
from bench.figures import label  # noqa: E402
from matting_api.backends.closed_form import ClosedFormBackend  # noqa: E402
from render import backgrounds  # noqa: E402
from render import composite as compositing  # noqa: E402
from segmentation_api.backends.modnet import MODNET, MODNetBackend  # noqa: E402
from segmentation_api.backends.u2netp import U2NETP, U2NetPBackend  # noqa: E402
from trimap.from_masks import build_trimap  # noqa: E402
from trimap.from_prior import prior_trimap  # noqa: E402

GREEN = (46, 160, 67, 255)
COLUMNS = ("photo", "before: U2Net-p + trimap + CF", "MODNet alone", "after: MODNet + refinement",
           "matte after")


def frames(data: Path) -> list[tuple[str, np.ndarray]]:
    """The sample portrait, its mirror, and two frames of each dev video (RGB)."""
    rgb = np.asarray(Image.open(REPO / "samples" / "astronaut.png").convert("RGB"))
    found = [("astronaut", rgb), ("astronaut, mirrored", np.ascontiguousarray(rgb[:, ::-1]))]
    videos = sorted((data / "video").glob("*.mkv")) if (data / "video").is_dir() else []
    if not videos:
        print(f"note: no dev videos under {data / 'video'}; the sheet has the portrait only")
    for video in videos:
        found += frames_at(video, lambda count: (0, (count or 1) // 2))
    return found


def row(rgb: np.ndarray, name: str, modnet, u2netp, matting, tile: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    green = backgrounds.solid_background(GREEN, w, h)
    _, mask = u2netp.saliency(rgb)
    old = build_trimap(mask)
    fg_old, a_old = matting.matte(rgb, old.trimap) if old is not None else (rgb / 255.0, mask * 0)
    prior = modnet.alpha(rgb)
    fg_new, a_new = matting.matte(rgb, prior_trimap(prior), prior)
    images = [
        rgb,
        compositing.composite(fg_old.astype(np.float32), a_old.astype(np.float32), green),
        compositing.composite(rgb.astype(np.float32) / 255.0, prior, green),
        compositing.composite(fg_new, a_new, green),
        np.repeat(compositing.matte(a_new)[..., None], 3, axis=2),
    ]
    height = round(tile * h / w)
    tiles = []
    for column, image in zip(COLUMNS, images, strict=True):
        small = cv2.resize(image, (tile, height), interpolation=cv2.INTER_AREA)
        tiles.append(label(small, f"{name}: {column}" if column == "photo" else column))
    return np.concatenate(tiles, axis=1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "dev")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "people.png")
    parser.add_argument("--tile", type=int, default=256, help="tile width, px")
    parser.add_argument("--models-dir", type=Path, default=REPO / "models")
    args = parser.parse_args(argv)
    modnet = MODNetBackend(MODNET.path(args.models_dir))
    u2netp = U2NetPBackend(U2NETP.path(args.models_dir))
    matting = ClosedFormBackend()
    rows = [row(rgb, name, modnet, u2netp, matting, args.tile) for name, rgb in frames(args.data)]
    width = max(r.shape[1] for r in rows)
    sheet = np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows])
    image = Image.fromarray(sheet).quantize(colors=256, method=Image.Quantize.MEDIANCUT,
                                            dither=Image.Dither.FLOYDSTEINBERG)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    image.save(args.out, optimize=True)
    print(f"wrote {args.out} ({sheet.shape[1]}x{sheet.shape[0]}, {args.out.stat().st_size / 1024:.0f} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
