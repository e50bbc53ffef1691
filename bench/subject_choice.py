"""``subject=auto|person|object`` end to end: SAD on the dev objects, and auto on people.

    .venv/bin/python bench/subject_choice.py [--data ../shared/data/dev] [--server URL]
        [--frames 4] [--sheet docs/subject_choice.png] [--json out.json]

Starts both services with gunicorn (the offline models: MODNet, U^2-Net-p, closed-form
matting; or uses the matting service at ``--server``) and asks ``POST /v1/matte`` for the
matte (``channels=alpha``, PNG) of every dev photo with a true alpha (``images/``,
``alpha/``: the 13 alphamatting.com objects) three times: ``subject=auto``, ``person``,
``object``. Printed, the tuning half and the reporting half of :mod:`bench.split` apart
(thresholds of :mod:`segmentation_api.subject` were set on the tuning half only):

* per photo: the whole-image SAD / 1000 of each answer against the true alpha (8-bit, as a
  user gets it; :func:`bench.metrics.sad`, as ``bench/quality.py`` computes it), which model
  ``auto`` chose and its seconds;
* the means per half, and the seconds per request of each subject;
* people: ``subject=auto`` on the sample portrait and ``--frames`` frames of each dev video
  (``video/*.mkv``): which model served and why, seconds against ``subject=person`` in the
  same run (a person must not pay for both models).

``--sheet`` also writes a contact sheet: one row per dev object and one for the sample
portrait; columns the photo, the mattes of auto, person and object (SAD in the label) and the
true alpha.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import requests
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import metrics, split  # noqa: E402
from bench.clips import frames_at  # noqa: E402
from bench.figures import label  # noqa: E402
from bench.quality import _gray, find_pairs  # noqa: E402
from bench.stack import run_served  # noqa: E402

SUBJECTS = ("auto", "person", "object")
HALVES = ("tune", "report")


@dataclass
class Answer:
    """One ``/v1/matte`` answer.

    Attributes:
        alpha: ``H x W`` float64 in [0, 1] (zeros when nothing was found: 422).
        seconds: the request's wall clock.
        backend, reason: ``X-Segmentation-Backend`` and ``X-Segmentation-Reason``.
    """

    alpha: np.ndarray
    seconds: float
    backend: str
    reason: str


@dataclass
class Row:
    """One dev photo: its answers by subject and their SAD."""

    name: str
    half: str
    rgb: np.ndarray
    truth: np.ndarray
    answers: dict[str, Answer] = field(default_factory=dict)

    def sad(self, subject: str) -> float:
        return metrics.sad(self.answers[subject].alpha, self.truth)


def matte(server: str, image: bytes, subject: str, shape: tuple[int, int]) -> Answer:
    """The alpha of ``image`` (PNG bytes of a ``shape`` photo) for ``subject``."""
    started = time.perf_counter()
    resp = requests.post(server + "/v1/matte", files={"image": ("photo.png", image, "image/png")},
                         data={"channels": "alpha", "format": "png", "subject": subject}, timeout=600)
    seconds = time.perf_counter() - started
    backend = resp.headers.get("X-Segmentation-Backend", "?")
    reason = resp.headers.get("X-Segmentation-Reason", "")
    if resp.status_code == 422:
        return Answer(np.zeros(shape), seconds, backend, reason or "no subject")
    resp.raise_for_status()
    return Answer(_gray(resp.content), seconds, backend, reason)


def png(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def people_frames(data: Path, per_video: int) -> list[tuple[str, np.ndarray]]:
    """The sample portrait and ``per_video`` evenly spaced frames of each dev video (RGB)."""
    found = [("astronaut", np.asarray(Image.open(REPO / "samples" / "astronaut.png").convert("RGB")))]
    for video in sorted((data / "video").glob("*.mkv")) if (data / "video").is_dir() else []:
        found += frames_at(video, lambda count: [int((count or per_video) * (k + 0.5) / per_video)
                                                 for k in range(per_video)])
    return found


def objects_table(rows: list[Row]) -> str:
    """Markdown: per photo SAD of each subject and auto's choice, then each half's means."""
    lines = ["| photo | half | auto | person | object | auto chose | s auto / person / object |",
             "|---|---|---:|---:|---:|---|---|"]
    for row in rows:
        secs = " / ".join(f"{row.answers[s].seconds:.2f}" for s in SUBJECTS)
        lines.append(f"| {row.name} | {row.half} | " + " | ".join(f"{row.sad(s):.2f}" for s in SUBJECTS)
                     + f" | {row.answers['auto'].backend} | {secs} |")
    lines += ["", "| half | photos | auto | person | object | s auto / person / object |",
              "|---|---:|---:|---:|---:|---|"]
    for half in HALVES:
        chosen = [r for r in rows if r.half == half]
        if not chosen:
            continue
        means = [float(np.mean([r.sad(s) for r in chosen])) for s in SUBJECTS]
        secs = [float(np.mean([r.answers[s].seconds for r in chosen])) for s in SUBJECTS]
        lines.append(f"| {half} | {len(chosen)} | " + " | ".join(f"{m:.2f}" for m in means)
                     + " | " + " / ".join(f"{s:.2f}" for s in secs) + " |")
    return "\n".join(lines)


def people_table(found: list[tuple[str, Answer, Answer]]) -> str:
    """Markdown: which model ``auto`` chose on each people frame, its seconds and person's."""
    lines = ["| frame | auto chose | s auto | s person | why |", "|---|---|---:|---:|---|"]
    for name, auto, person in found:
        lines.append(f"| {name} | {auto.backend} | {auto.seconds:.2f} | {person.seconds:.2f} "
                     f"| {auto.reason} |")
    kept = sum(auto.backend == person.backend for _, auto, person in found)
    model = found[0][2].backend if found else "-"
    lines.append(f"\nauto kept {kept} of {len(found)} people frames on the person model ({model})")
    return "\n".join(lines)


def sheet(rows: list[Row], portrait: tuple[np.ndarray, dict[str, Answer]] | None, tile: int) -> np.ndarray:
    """The contact sheet: per row the photo, auto, person, object, true alpha (grey mattes)."""

    def fit(image: np.ndarray, height: int) -> np.ndarray:
        if image.ndim == 2:
            image = np.repeat(np.round(image * 255).astype(np.uint8)[..., None], 3, axis=2)
        return cv2.resize(image, (tile, height), interpolation=cv2.INTER_AREA)

    lines = []
    entries: list[tuple[str, np.ndarray, dict[str, Answer], np.ndarray | None]] = [
        (f"{r.name} ({r.half})", r.rgb, r.answers, r.truth) for r in rows]
    if portrait is not None:
        entries.append(("astronaut (no true alpha)", portrait[0], portrait[1], None))
    for name, rgb, answers, truth in entries:
        height = round(tile * rgb.shape[0] / rgb.shape[1])
        tiles = [label(fit(rgb, height), name)]
        for subject in SUBJECTS:
            answer = answers[subject]
            sad = f" SAD {metrics.sad(answer.alpha, truth):.1f}" if truth is not None else ""
            tiles.append(label(fit(answer.alpha, height), f"{subject}: {answer.backend}{sad}"))
        if truth is None:
            tiles.append(label(np.full((height, tile, 3), 64, np.uint8), "no true alpha"))
        else:
            tiles.append(label(fit(truth, height), "true alpha"))
        lines.append(np.concatenate(tiles, axis=1))
    return np.concatenate(lines, axis=0)


def run(args: argparse.Namespace, server: str) -> dict:
    pairs = find_pairs(args.data)
    if not pairs:
        raise SystemExit(split.missing_data_message(args.data))
    names = [p.name for p in pairs]
    halves = {name: half for half in HALVES for name in split.select(names, half)}
    rows: list[Row] = []
    for pair in pairs[: args.limit or None]:
        rgb = np.asarray(Image.open(pair.image).convert("RGB"))
        row = Row(pair.name, halves[pair.name], rgb, _gray(pair.alpha))
        image = pair.image.read_bytes()
        for subject in SUBJECTS:
            row.answers[subject] = matte(server, image, subject, row.truth.shape)
        rows.append(row)
        print(f"{row.name} ({row.half}): " + ", ".join(f"{s} {row.sad(s):.2f}" for s in SUBJECTS)
              + f"; auto: {row.answers['auto'].reason}", flush=True)
    people: list[tuple[str, Answer, Answer]] = []
    portrait = None
    for name, rgb in people_frames(args.data, args.frames):
        body = png(rgb)
        auto = matte(server, body, "auto", rgb.shape[:2])
        person = matte(server, body, "person", rgb.shape[:2])
        people.append((name, auto, person))
        if name == "astronaut" and args.sheet:
            portrait = (rgb, {"auto": auto, "person": person,
                              "object": matte(server, body, "object", rgb.shape[:2])})
        print(f"{name}: auto -> {auto.backend} ({auto.seconds:.2f} s; person {person.seconds:.2f} s)",
              flush=True)
    print("\n## Dev objects: whole-image SAD / 1000 (lower is better), tuning and reporting half apart\n")
    print(objects_table(rows))
    print("\n## People: subject=auto keeps them on the people model\n")
    print(people_table(people))
    if args.sheet:
        image = Image.fromarray(sheet(rows, portrait, args.tile)).quantize(
            colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        args.sheet.parent.mkdir(parents=True, exist_ok=True)
        image.save(args.sheet, optimize=True)
        print(f"\nwrote {args.sheet} ({args.sheet.stat().st_size / 1024:.0f} KB)")
    return {
        "objects": [{"name": r.name, "half": r.half, "auto_chose": r.answers["auto"].backend,
                     "auto_reason": r.answers["auto"].reason,
                     **{f"sad_{s}": r.sad(s) for s in SUBJECTS},
                     **{f"s_{s}": r.answers[s].seconds for s in SUBJECTS}} for r in rows],
        "people": [{"name": n, "auto_chose": a.backend, "reason": a.reason, "s_auto": a.seconds,
                    "s_person": p.seconds} for n, a, p in people],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "dev")
    parser.add_argument("--server", default=None, help="use this running matting service")
    parser.add_argument("--models-dir", type=Path, default=REPO / "models")
    parser.add_argument("--matting-backend", default="closed_form")
    parser.add_argument("--limit", type=int, default=0, help="only the first N dev photos")
    parser.add_argument("--frames", type=int, default=4, help="frames of each dev video (people)")
    parser.add_argument("--sheet", type=Path, default=None, help="write the contact sheet here (PNG)")
    parser.add_argument("--tile", type=int, default=200, help="the sheet's tile width, px")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    summary = run_served(run, args, "auto")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
