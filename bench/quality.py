"""Matte quality on real photos with ground-truth alpha, as a user would run the pipeline.

    .venv/bin/python bench/quality.py [--data ../shared/data/dev] [--split report] [--server URL]

Starts both services with gunicorn (offline default backends unless told otherwise; or uses
the matting service at ``--server``) and, per image of the data folder (``images/``,
``alpha/``, optional ``trimap/``, names matching; mattes are 8-bit greyscale):

* **stage**: the matting stage alone: the given trimap is sent with the request; SAD, MSE,
  Grad, Conn over the trimap's unknown region;
* **e2e**: the whole pipeline (the segmentation's soft mask refined by the matting stage):
  the same metrics over the whole image, plus IoU at 0.5. The figures mean something only
  where the ground truth's subject is what the pipeline is asked to find: the dev photos
  are objects, so the segmentation runs U^2-Net-p (``--seg-backend``, default ``u2netp``:
  the salient object, classes ignored; the ``auto`` policy would pick it for any non-person
  class); with a class-based backend pass ``--classes``;
* seconds per image for each (ours: the HTTP request, wall clock; baselines: in process).

Photos: the ``--split`` of :mod:`bench.split` (default ``report``, the half no parameter was
tuned on). Metric conventions: :mod:`bench.metrics`. Every matte is compared in 8-bit steps, as a user
gets it (ours: the PNG answer; rembg: its truncated uint8 alpha; pymatting: rounded).

In the same process and on the same images it runs the baselines: pymatting's closed-form
matting on the given trimap (stage), and rembg's recipe (U^2-Net-p mask; mask + closed-form
on a 240/10 trimap eroded 10 px) end to end, and prints our ratio to each (< 1 is better).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import requests
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import baseline_rembg, metrics, split  # noqa: E402
from bench.stack import run_served  # noqa: E402
from segmentation_api.backends.u2netp import U2NETP  # noqa: E402

METRICS = ("sad", "mse", "grad", "conn")


@dataclass
class Pair:
    name: str
    image: Path
    alpha: Path
    trimap: Path | None


def find_pairs(data: Path) -> list[Pair]:
    pairs = []
    for img in sorted((data / "images").glob("*")):
        alpha = data / "alpha" / (img.stem + ".png")
        if not alpha.exists():
            continue
        trimap = data / "trimap" / (img.stem + ".png")
        pairs.append(Pair(img.stem, img, alpha, trimap if trimap.exists() else None))
    return pairs


def _gray(path_or_bytes: Path | bytes) -> np.ndarray:
    src = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
    return np.asarray(Image.open(src).convert("L"), dtype=np.float64) / 255.0


def matte_over_http(server: str, image: bytes, trimap: bytes | None,
                    classes: str | None) -> tuple[np.ndarray | None, float, dict]:
    """Alpha (``H x W`` float64 in [0, 1]) from /v1/matte (channels=alpha, PNG), the
    request's wall-clock seconds and the answer's headers; alpha ``None`` on no_subject."""
    files = {"image": ("image.png", image, "image/png")}
    if trimap is not None:
        files["trimap"] = ("trimap.png", trimap, "image/png")
    form = {"channels": "alpha", "format": "png"}
    if classes:
        form["classes"] = classes
    started = time.perf_counter()
    resp = requests.post(server + "/v1/matte", files=files, data=form, timeout=600)
    seconds = time.perf_counter() - started
    if resp.status_code == 422:
        return None, seconds, dict(resp.headers)
    resp.raise_for_status()
    return _gray(resp.content), seconds, dict(resp.headers)


def _fmt_row(name: str, values: dict[str, float], keys: tuple[str, ...]) -> str:
    return f"{name:22s}" + "".join(f"{values.get(k, float('nan')):>10.3f}" for k in keys)


def _print_table(title: str, rows: dict[str, dict[str, dict[str, float]]], keys: tuple[str, ...]) -> None:
    systems = list(next(iter(rows.values())).keys())
    print(f"\n## {title}")
    for system in systems:
        print(f"\n{system}")
        print(f"{'image':22s}" + "".join(f"{k:>10s}" for k in keys))
        for name, per_system in rows.items():
            print(_fmt_row(name, per_system[system], keys))
        mean = {k: float(np.mean([r[system][k] for r in rows.values()])) for k in keys}
        print(_fmt_row("MEAN", mean, keys))


def _means(rows: dict[str, dict[str, dict[str, float]]], system: str) -> dict[str, float]:
    keys = next(iter(rows.values()))[system].keys()
    return {k: float(np.mean([r[system][k] for r in rows.values()])) for k in keys}


def run(args: argparse.Namespace, server: str) -> dict:
    pairs = find_pairs(args.data)
    if not pairs:
        raise SystemExit(split.missing_data_message(args.data))
    chosen = set(split.select([p.name for p in pairs], args.split))
    pairs = [p for p in pairs if p.name in chosen][: args.limit or None]
    print(f"split {args.split}: {', '.join(p.name for p in pairs)}", flush=True)
    stage_rows: dict[str, dict[str, dict[str, float]]] = {}
    e2e_rows: dict[str, dict[str, dict[str, float]]] = {}
    model = args.models_dir / U2NETP.filename
    for pair in pairs:
        rgb = np.asarray(Image.open(pair.image).convert("RGB"))
        gt = _gray(pair.alpha)
        image_bytes = pair.image.read_bytes()
        print(f"{pair.name}: {rgb.shape[1]}x{rgb.shape[0]}", flush=True)

        if pair.trimap is not None and not args.skip_stage:
            tri = np.asarray(Image.open(pair.trimap).convert("L"))
            unknown = (tri > 0) & (tri < 255)
            ours, secs, _ = matte_over_http(server, image_bytes, pair.trimap.read_bytes(), None)
            ours = ours if ours is not None else np.zeros_like(gt)
            started = time.perf_counter()
            cf = baseline_rembg.to_8bit(
                baseline_rembg.closed_form_alpha(rgb, np.where(unknown, 0.5, tri / 255.0)))
            cf_secs = time.perf_counter() - started
            stage_rows[pair.name] = {
                "ours": {**_pick(metrics.all_metrics(ours, gt, unknown)), "s": secs},
                "pymatting-cf": {**_pick(metrics.all_metrics(cf, gt, unknown)), "s": cf_secs},
            }

        ours, secs, headers = matte_over_http(server, image_bytes, None, args.classes)
        ours = ours if ours is not None else np.zeros_like(gt)
        started = time.perf_counter()
        mask = baseline_rembg.u2netp_mask(rgb, model)
        mask_secs = time.perf_counter() - started
        started = time.perf_counter()
        am = baseline_rembg.rembg_alpha_matting(rgb, mask)
        am_secs = time.perf_counter() - started + mask_secs
        e2e_rows[pair.name] = {
            "ours": {**metrics.all_metrics(ours, gt), "s": secs},
            "rembg-mask": {**metrics.all_metrics(mask, gt), "s": mask_secs},
            "rembg-alpha-matting": {**metrics.all_metrics(am, gt), "s": am_secs},
        }
        backends = (headers.get("X-Segmentation-Backend"), headers.get("X-Matting-Backend"))
        print(f"  e2e backends: segmentation={backends[0]} matting={backends[1]}", flush=True)

    keys_stage = (*METRICS, "s")
    keys_e2e = (*METRICS, "iou", "s")
    if stage_rows:
        _print_table("Matting stage with the given trimaps (unknown region)", stage_rows, keys_stage)
    _print_table("End to end, automatic trimap (whole image)", e2e_rows, keys_e2e)

    summary: dict = {"split": args.split, "images": [p.name for p in pairs],
                     "per_image": {"stage": stage_rows, "e2e": e2e_rows}}
    print("\n## Ratios ours / baseline (mean; < 1 is better)")
    if stage_rows:
        ours_m, base_m = _means(stage_rows, "ours"), _means(stage_rows, "pymatting-cf")
        summary["stage"] = {"ours": ours_m, "pymatting-cf": base_m}
        print("stage vs pymatting closed-form: " + "  ".join(
            f"{k} {ours_m[k] / base_m[k]:.3f}" for k in METRICS if base_m[k]))
    ours_m = _means(e2e_rows, "ours")
    summary["e2e"] = {"ours": ours_m}
    for base in ("rembg-mask", "rembg-alpha-matting"):
        base_m = _means(e2e_rows, base)
        summary["e2e"][base] = base_m
        print(f"e2e vs {base}: " + "  ".join(
            f"{k} {ours_m[k] / base_m[k]:.3f}" for k in METRICS if base_m[k]))
    print("\n## Means as a Markdown table\n")
    print(markdown_means(summary))
    return summary


def markdown_means(summary: dict) -> str:
    """The mean of every system as Markdown table rows (stage, then end to end)."""
    head = "| part | system | SAD | MSE | Grad | Conn | IoU | s / image |"
    lines = [head, "|---|---|---:|---:|---:|---:|---:|---:|"]
    parts = (("stage", "stage (given trimap, unknown region)"), ("e2e", "end to end (whole image)"))
    for part, label in parts:
        for system, m in summary.get(part, {}).items():
            iou = f"{m['iou']:.4f}" if "iou" in m else ""
            lines.append(f"| {label} | {system} | {m['sad']:.2f} | {m['mse']:.2f} | {m['grad']:.2f} "
                         f"| {m['conn']:.2f} | {iou} | {m['s']:.2f} |")
    return "\n".join(lines)


def _pick(values: dict[str, float]) -> dict[str, float]:
    return {k: values[k] for k in METRICS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "dev")
    parser.add_argument("--split", choices=split.SPLITS, default="report",
                        help="which photos (bench/split.py): publish 'report', tune on 'tune'")
    parser.add_argument("--limit", type=int, default=0, help="only the first N images")
    parser.add_argument("--server", default=None, help="use this running matting service")
    parser.add_argument("--models-dir", type=Path, default=REPO / "models")
    parser.add_argument("--seg-backend", default="u2netp")
    parser.add_argument("--matting-backend", default="closed_form")
    parser.add_argument("--skip-stage", action="store_true", help="only the end-to-end figures")
    parser.add_argument("--classes", default=None,
                        help="classes sent with the end-to-end requests (class-based backends)")
    parser.add_argument("--json", type=Path, default=None,
                        help="also write the per-image figures and the means here")
    args = parser.parse_args(argv)

    summary = run_served(run, args, args.seg_backend)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
