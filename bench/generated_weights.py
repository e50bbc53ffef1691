"""Weight files of the real architectures with generated values, under the real file names.

Mask R-CNN, DeepLabV3 and FBA weights cannot be downloaded everywhere (CI, offline
machines), but a user drops the real files into ``models/``. Files made here have exactly
the keys and shapes of the published ones, so the project loads them the way it loads the
real ones (strict loading, the same builders): tests, benchmarks and the GPU check use them
to walk the path a user with the weights walks.

* torchvision's models: their builders without weights (``weights=None,
  weights_backbone=None``) and the published heads (91 COCO entries for Mask R-CNN, 21 VOC
  classes and the auxiliary head for DeepLabV3), initialised from ``torch.manual_seed(seed)``.
  Random Mask R-CNN weights find nothing in a photo (``422 no_subject``).
* FBA Matting: the deterministic recipe of the checkpoint manifest
  (``tests/fba/data/manifest.json``; the reference outputs in ``tests/fba/data`` were made
  by the official implementation with these values): entry ``i`` is ``randn(shape) * 0.05``
  from a CPU generator seeded with ``1234 + i``.

Command line::

    python bench/generated_weights.py DIR                       # every torch model's file
    python bench/generated_weights.py DIR fba maskrcnn          # just those

Importing this module does not import torch; making a file does.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

if TYPE_CHECKING:
    import torch

#: The FBA checkpoint manifest: the 197 official keys in state-dict order, with shapes.
FBA_MANIFEST = REPO / "tests" / "fba" / "data" / "manifest.json"
#: The recipe's constants (seed of entry ``i`` is ``FBA_BASE_SEED + i``).
FBA_BASE_SEED = 1234
FBA_SCALE = 0.05


def fba_manifest_entries(path: Path = FBA_MANIFEST) -> list[dict[str, Any]]:
    """The manifest's entries: ``{"index", "key", "shape", "dtype"}`` in state-dict order."""
    with path.open() as fh:
        return json.load(fh)["entries"]


def fba_weight(index: int, shape: list[int], key: str) -> torch.Tensor:
    """The recipe's tensor for manifest entry ``index`` (float32; int64 zeros for
    ``num_batches_tracked``; ``running_var`` made positive)."""
    import torch

    if key.endswith("num_batches_tracked"):
        return torch.zeros(shape, dtype=torch.int64)
    gen = torch.Generator().manual_seed(FBA_BASE_SEED + index)
    tensor = torch.randn(shape, generator=gen) * FBA_SCALE
    if key.endswith("running_var"):
        tensor = tensor.abs() + 0.5
    return tensor


def fba_state_dict(entries: list[dict[str, Any]] | None = None) -> OrderedDict[str, torch.Tensor]:
    """FBA's whole generated state dict, in manifest order (the ``FBA.pth`` container)."""
    entries = fba_manifest_entries() if entries is None else entries
    return OrderedDict((e["key"], fba_weight(e["index"], e["shape"], e["key"])) for e in entries)


def _torchvision_builders() -> dict[str, Callable[[], torch.nn.Module]]:
    from torchvision.models import segmentation
    from torchvision.models.detection import maskrcnn_resnet50_fpn, maskrcnn_resnet50_fpn_v2

    bare = {"weights": None, "weights_backbone": None}
    return {
        "maskrcnn": lambda: maskrcnn_resnet50_fpn(**bare, num_classes=91),
        "maskrcnn_v2": lambda: maskrcnn_resnet50_fpn_v2(**bare, num_classes=91),
        "deeplabv3": lambda: segmentation.deeplabv3_resnet101(**bare, num_classes=21, aux_loss=True),
        "deeplabv3_mobilenet": lambda: segmentation.deeplabv3_mobilenet_v3_large(
            **bare, num_classes=21, aux_loss=True),
    }


#: Every weights key this module can make a file for.
KEYS: tuple[str, ...] = ("maskrcnn", "maskrcnn_v2", "deeplabv3", "deeplabv3_mobilenet", "fba")


def state_dict(key: str, seed: int = 0) -> OrderedDict[str, torch.Tensor]:
    """The generated state dict of weights file ``key`` (one of :data:`KEYS`)."""
    if key == "fba":
        return fba_state_dict()
    import torch

    builders = _torchvision_builders()
    if key not in builders:
        raise KeyError(f"no generator for weights {key!r}; expected one of {', '.join(KEYS)}")
    torch.manual_seed(seed)
    return builders[key]().state_dict()


def save_generated_weights(models_dir: Path, keys: Iterable[str] = KEYS, seed: int = 0) -> dict[str, Path]:
    """Write each key's file under its real name (the weights registry's) in ``models_dir``.

    Returns ``{key: path}``.
    """
    import torch

    from service_common.weights import registry

    files = registry()
    models_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for key in keys:
        path = files[key].path(models_dir)
        torch.save(state_dict(key, seed), path)
        written[key] = path
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models_dir", type=Path, help="where to write the files")
    parser.add_argument("keys", nargs="*", help=f"which files, of {', '.join(KEYS)} (default: all)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.keys) - set(KEYS))
    if unknown:
        parser.error(f"no generator for {', '.join(unknown)}; expected some of {', '.join(KEYS)}")
    args.keys = args.keys or list(KEYS)
    for key, path in save_generated_weights(args.models_dir, args.keys).items():
        print(f"{key}: {path} ({path.stat().st_size / 1e6:.0f} MB, generated values)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
