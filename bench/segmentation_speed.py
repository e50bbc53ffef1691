"""CPU latency of the segmentation service, per image size and backend.

    python bench/segmentation_speed.py                 # 0.5, 1 and 2 MP, every backend
    python bench/segmentation_speed.py --repeats 5 --backends u2netp --threads 2
    python bench/segmentation_speed.py --repeats 1 --sizes 1   # quick: one size, one request

Each backend runs in a real gunicorn (``service_common.serve.Service``); the client posts a
JPEG of the shipped portrait resized to each size. Per request the server's
``Server-Timing`` header gives decode, model, trimap and encode times; "http" is the rest
of the client's wall time (upload, multipart parsing, Flask, download). Numbers are the
median of ``--repeats`` requests after one warm-up request.

* ``modnet`` and ``u2netp`` run the real models (models/modnet.onnx, models/u2netp.onnx).
* ``maskrcnn`` runs torchvision's Mask R-CNN with RANDOM weights (seeded), saved to a
  temporary models folder under the real file name: the architecture's speed does not
  depend on the weight values. Only the last layers are set, so that every region
  proposal is a person with score 0.8, and ``BACKDROP_MASKRCNN_MAX_DETECTIONS`` is
  ``--maskrcnn-detections`` (default 3): the request then does the work of a photo with
  three people (mask head, pasting, trimap), as trained weights would on such a photo.
* ``deeplabv3`` (ResNet-101) and ``deeplabv3_mobilenet`` (MobileNetV3-Large) run
  torchvision's DeepLabV3 with RANDOM weights (seeded), saved the same way, at the
  service's input size (``BACKDROP_DEEPLABV3_SIZE``, 520 px shorter side, whatever the
  photo's size). Only the classifier head is set: every pixel is a person with probability
  0.95. The network's cost does not depend on its weights; the trimap of such a mask is
  all foreground, so the trimap and encode columns are cheaper than for a real subject (the
  other backends' rows show what those cost).
"""

from __future__ import annotations

import argparse
import io
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from segmentation_api.backends.maskrcnn import MASKRCNN  # noqa: E402
from service_common.config import Settings  # noqa: E402
from service_common.serve import Service, free_port, running  # noqa: E402
from service_common.weights import registry  # noqa: E402

PHOTO = REPO / "samples" / "astronaut.png"
COLUMNS = ("decode", "model", "trimap", "encode", "http", "total")


def photo_at(megapixels: float) -> tuple[bytes, int, int]:
    """The portrait resized to about ``megapixels`` MP (4:3), as JPEG bytes, with its size."""
    width = int(round(math.sqrt(megapixels * 1e6 * 4 / 3)))
    height = int(round(width * 3 / 4))
    img = Image.open(PHOTO).convert("RGB").resize((width, height), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue(), width, height


def save_random_maskrcnn(folder: Path, seed: int = 0) -> None:
    """Random Mask R-CNN weights (last layers: every proposal a person at 0.8) under the real name."""
    import torch

    from segmentation_api.backends import maskrcnn as coco
    from segmentation_api.backends.maskrcnn import build_maskrcnn_resnet50_fpn

    torch.manual_seed(seed)
    state = build_maskrcnn_resnet50_fpn(None).state_dict()
    person = coco.label_ids(["person"])[0]
    for key in ("roi_heads.box_predictor.cls_score", "roi_heads.box_predictor.bbox_pred",
                "roi_heads.mask_predictor.mask_fcn_logits"):
        state[key + ".weight"].zero_()
        state[key + ".bias"].zero_()
    state["roi_heads.box_predictor.cls_score.bias"][person] = math.log(0.8 / 0.2 * 90)
    state["roi_heads.mask_predictor.mask_fcn_logits.bias"][person] = 4.0
    torch.save(state, MASKRCNN.path(folder))


def save_random_deeplab(folder: Path, variant: str, seed: int = 0) -> None:
    """Random DeepLabV3 weights (head: every pixel a person at 0.95) under the real file name."""
    import torch

    from segmentation_api.backends import deeplab as voc
    from segmentation_api.backends.deeplab import architecture

    torch.manual_seed(seed)
    state = architecture(variant).state_dict()
    state["classifier.4.weight"].zero_()
    state["classifier.4.bias"].zero_()
    others = len(voc.VOC_CATEGORIES) - 1
    state["classifier.4.bias"][voc.label_ids(["person"])[0]] = math.log(0.95 / 0.05 * others)
    torch.save(state, registry()[variant].path(folder))


def one_request(url: str, image: bytes) -> dict[str, float]:
    """Post ``image``; return the server's timings plus http and total, in ms."""
    started = time.perf_counter()
    response = requests.post(url + "/v1/trimap", files={"image": ("photo.jpg", image, "image/jpeg")},
                             timeout=600)
    total = (time.perf_counter() - started) * 1000.0
    if response.status_code != 200:
        raise RuntimeError(f"HTTP {response.status_code}: {response.text[:300]}")
    timings = {}
    for part in response.headers["Server-Timing"].split(","):
        name, _, dur = part.strip().partition(";dur=")
        timings[name] = float(dur)
    timings["http"] = total - sum(timings.values())
    timings["total"] = total
    return timings


def bench_backend(name: str, env: dict[str, str], sizes: list[float], repeats: int,
                  log_dir: Path) -> list[tuple[str, float, str, dict[str, float]]]:
    service = Service("segmentation", free_port(), env=env, timeout=600,
                      log_path=log_dir / f"{name}.log")
    rows = []
    with running(service, ready_timeout=300):
        for mp in sizes:
            image, width, height = photo_at(mp)
            one_request(service.url, image)  # warm-up
            runs = [one_request(service.url, image) for _ in range(repeats)]
            median = {col: statistics.median(run[col] for run in runs) for col in COLUMNS}
            rows.append((name, mp, f"{width}x{height}", median))
            print_row(rows[-1])
    return rows


def print_header() -> None:
    print(f"{'backend':19s} {'MP':>4s} {'size':>10s} " + " ".join(f"{c + ' ms':>10s}" for c in COLUMNS)
          + f" {'overhead':>9s}")


def print_row(row: tuple[str, float, str, dict[str, float]]) -> None:
    name, mp, size, t = row
    overhead = (t["http"] + t["decode"] + t["encode"]) / t["model"] * 100.0
    print(f"{name:19s} {mp:4.1f} {size:>10s} " + " ".join(f"{t[c]:10.1f}" for c in COLUMNS)
          + f" {overhead:8.1f}%", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed requests per size (median)")
    parser.add_argument("--sizes", default="0.5,1,2", help="megapixels, comma-separated")
    parser.add_argument("--backends", default="modnet,u2netp,maskrcnn,deeplabv3_mobilenet,deeplabv3",
                        help="comma-separated: modnet, u2netp, maskrcnn, deeplabv3_mobilenet, deeplabv3")
    parser.add_argument("--threads", type=int, default=0, help="BACKDROP_TORCH_THREADS (0 = default)")
    parser.add_argument("--maskrcnn-detections", type=int, default=3,
                        help="detections per image for the random Mask R-CNN")
    args = parser.parse_args(argv)
    sizes = [float(s) for s in args.sizes.split(",")]
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    common = {"BACKDROP_TORCH_THREADS": str(args.threads), "BACKDROP_LOG_LEVEL": "WARNING"}

    print(f"segmentation latency, CPU, median of {args.repeats} after 1 warm-up; "
          f"torch threads: {args.threads or 'default'}; overhead = (http + decode + encode) / model")
    print_header()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        for name in backends:
            if name in ("u2netp", "modnet"):
                env = {**common, "BACKDROP_SEGMENTATION_BACKEND": name,
                       "BACKDROP_MODELS_DIR": str(Settings.from_env().models_dir)}
            elif name == "maskrcnn":
                models = tmp_dir / "models"
                models.mkdir(exist_ok=True)
                save_random_maskrcnn(models)
                env = {**common, "BACKDROP_SEGMENTATION_BACKEND": "maskrcnn",
                       "BACKDROP_MODELS_DIR": str(models),
                       "BACKDROP_MASKRCNN_MAX_DETECTIONS": str(args.maskrcnn_detections)}
            elif name in ("deeplabv3", "deeplabv3_mobilenet"):
                models = tmp_dir / "models"
                models.mkdir(exist_ok=True)
                save_random_deeplab(models, name)
                env = {**common, "BACKDROP_SEGMENTATION_BACKEND": name, "BACKDROP_MODELS_DIR": str(models)}
            else:
                parser.error(f"unknown backend {name!r}")
            bench_backend(name, env, sizes, args.repeats, tmp_dir)
    if "maskrcnn" in backends:
        print("maskrcnn: random weights (speed does not depend on weight values), "
              f"{args.maskrcnn_detections} person detections per image")
    if any(name.startswith("deeplabv3") for name in backends):
        print("deeplabv3*: random weights (speed does not depend on weight values), input resized to "
              f"{Settings.from_env().deeplabv3_size} px shorter side; mask = person 0.95 everywhere")
    return 0


if __name__ == "__main__":
    sys.exit(main())
