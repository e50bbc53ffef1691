"""Mask R-CNN (torchvision, COCO): its weights, its categories, its builders, its backend.

The network is built with ``weights=None, weights_backbone=None`` (nothing is ever
downloaded) and its state dict is then loaded from the models folder (else from torch hub's
cache, :func:`service_common.weights.find_weights`) with
``torch.load(..., weights_only=True)`` and ``load_state_dict(strict=True)``. Built that
way torchvision uses ``BatchNorm2d`` instead of ``FrozenBatchNorm2d`` in the backbone; in
eval mode both compute the same thing, and the published state dict loads strictly into it.

Per request: the image goes through the transform, backbone, RPN and RoI heads; the
detections are filtered by score and class *before* their masks are pasted at full image
size (pasting 100 low-score masks of a 2 MP image would need ~800 MB), then pasted.

COCO's category names are written out here (:data:`COCO_CATEGORIES`, equal to
``MaskRCNN_ResNet50_FPN_Weights.COCO_V1.meta["categories"]``: a test checks it) so that a
worker that only needs the names (U^2-Net-p validates ``classes`` with them) imports neither
torch nor torchvision (about 3 s and 700 MB per worker). Likewise the weights entries repeat
the URLs and checksums of torchvision's enums (tests check them). Importing this module does
not import torch; building a model does.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np

from service_common.config import Settings
from service_common.registry import register_model
from service_common.weights import WeightsFile, torchvision_weights

from .base import Instance, TorchBackend, check_rgb

if TYPE_CHECKING:
    import torch
    from torchvision.models.detection import MaskRCNN

__all__ = ["COCO_CATEGORIES", "MASKRCNN", "MASKRCNN_V2", "MaskRCNNBackend",
           "build_maskrcnn_resnet50_fpn", "build_maskrcnn_resnet50_fpn_v2", "class_names",
           "label_ids", "load"]

log = logging.getLogger(__name__)

#: All 91 COCO entries, indexed by Mask R-CNN label id (``__background__`` and a few unused
#: ``N/A`` ids included).
COCO_CATEGORIES: tuple[str, ...] = (
    '__background__', 'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train',
    'truck', 'boat', 'traffic light', 'fire hydrant', 'N/A', 'stop sign', 'parking meter', 'bench',
    'bird', 'cat', 'dog', 'horse', 'sheep', 'cow', 'elephant', 'bear', 'zebra', 'giraffe', 'N/A',
    'backpack', 'umbrella', 'N/A', 'N/A', 'handbag', 'tie', 'suitcase', 'frisbee', 'skis',
    'snowboard', 'sports ball', 'kite', 'baseball bat', 'baseball glove', 'skateboard',
    'surfboard', 'tennis racket', 'bottle', 'N/A', 'wine glass', 'cup', 'fork', 'knife', 'spoon',
    'bowl', 'banana', 'apple', 'sandwich', 'orange', 'broccoli', 'carrot', 'hot dog', 'pizza',
    'donut', 'cake', 'chair', 'couch', 'potted plant', 'bed', 'N/A', 'dining table', 'N/A', 'N/A',
    'toilet', 'N/A', 'tv', 'laptop', 'mouse', 'remote', 'keyboard', 'cell phone', 'microwave',
    'oven', 'toaster', 'sink', 'refrigerator', 'N/A', 'book', 'clock', 'vase', 'scissors',
    'teddy bear', 'hair drier', 'toothbrush',
)



#: torchvision's heads have one output per entry (80 classes, background and unused ids).
NUM_CLASSES = len(COCO_CATEGORIES)

_INPUT_RULE = ("RGB float in [0, 1]; the model resizes (shorter side 800, longer at most 1333) "
               "and normalises with the ImageNet mean and std itself")



def _weights(key: str, title: str, builder: str, enum: str, digest: str, size: int) -> WeightsFile:
    """The COCO_V1 file of torchvision's ``builder`` (weights enum ``enum``)."""
    return torchvision_weights(
        key, f"{builder}_coco-{digest}.pth",
        used_by=f"segmentation: {title} (torchvision {builder}, COCO_V1)",
        source=f"torchvision {enum}.COCO_V1", trained_on="COCO", approx_size=size,
        categories=COCO_CATEGORIES, input_rule=_INPUT_RULE)


MASKRCNN = _weights("maskrcnn", "Mask R-CNN", "maskrcnn_resnet50_fpn", "MaskRCNN_ResNet50_FPN_Weights",
                    "bf2d0c1e", 178_090_079)
MASKRCNN_V2 = _weights("maskrcnn_v2", "Mask R-CNN v2", "maskrcnn_resnet50_fpn_v2",
                       "MaskRCNN_ResNet50_FPN_V2_Weights", "73cbd019", 185_000_000)

_UNUSED = ("__background__", "N/A")


@functools.cache
def class_names() -> tuple[str, ...]:
    """The 80 names a client may ask for (``"person"``, ``"dog"``, ``"traffic light"``, ...)."""
    return tuple(c for c in COCO_CATEGORIES if c not in _UNUSED)


def label_ids(names: list[str] | tuple[str, ...]) -> list[int]:
    """The Mask R-CNN label ids of ``names`` (each must be one of :func:`class_names`)."""
    index = {name: i for i, name in enumerate(COCO_CATEGORIES) if name not in _UNUSED}
    return [index[name] for name in names]


def _build(builder: str, weights: WeightsFile, weights_path: Path | None, min_size: int, max_size: int,
           max_detections: int) -> MaskRCNN:
    """torchvision's ``builder`` without weights, then ``weights_path`` loaded strictly."""
    import torchvision.models.detection as detection

    from service_common.torch_runtime import load_state_dict_file

    model = getattr(detection, builder)(
        weights=None, weights_backbone=None, num_classes=NUM_CLASSES,
        min_size=min_size, max_size=max_size, box_detections_per_img=max_detections,
    )
    if weights_path is not None:
        load_state_dict_file(model, weights_path, weights)
    return model.eval()


def build_maskrcnn_resnet50_fpn(
    weights_path: Path | None = None, *, min_size: int = 800, max_size: int = 1333,
    max_detections: int = 100,
) -> MaskRCNN:
    """torchvision's ``maskrcnn_resnet50_fpn`` in eval mode, weights from ``weights_path``.

    Args:
        weights_path: a state dict file (``maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth``);
            ``None`` leaves the random initial weights (tests, benchmarks).
        min_size, max_size: the model's resize rule (shorter side to ``min_size``, longer
            side at most ``max_size``); torchvision's defaults are 800 and 1333.
        max_detections: most detections kept per image, all classes together (100).
    """
    return _build("maskrcnn_resnet50_fpn", MASKRCNN, weights_path, min_size, max_size, max_detections)


def build_maskrcnn_resnet50_fpn_v2(
    weights_path: Path | None = None, *, min_size: int = 800, max_size: int = 1333,
    max_detections: int = 100,
) -> MaskRCNN:
    """torchvision's ``maskrcnn_resnet50_fpn_v2`` in eval mode; see the v1 builder."""
    return _build("maskrcnn_resnet50_fpn_v2", MASKRCNN_V2, weights_path, min_size, max_size, max_detections)


#: backend name -> (builder, weights file).
VARIANTS: dict[str, tuple[Callable[..., MaskRCNN], WeightsFile]] = {
    "maskrcnn": (build_maskrcnn_resnet50_fpn, MASKRCNN),
    "maskrcnn_v2": (build_maskrcnn_resnet50_fpn_v2, MASKRCNN_V2),
}


@register_model("segmentation", "maskrcnn", weights=MASKRCNN, torch=True, title="Mask R-CNN",
                what="COCO instances", mask_kind="segmentation", classes=class_names(), auto="preferred")
@register_model("segmentation", "maskrcnn_v2", weights=MASKRCNN_V2, torch=True, title="Mask R-CNN v2",
                what="COCO instances", mask_kind="segmentation", classes=class_names())
def load(settings: Settings, name: str) -> MaskRCNNBackend:
    """The backend ``name`` (``maskrcnn`` or ``maskrcnn_v2``) under ``settings``."""
    return MaskRCNNBackend.from_settings(settings, variant=name)


class MaskRCNNBackend(TorchBackend):
    """A loaded Mask R-CNN; :meth:`predict` finds instances of COCO classes.

    One model per worker process. Calls are serialised by a lock (the per-request score
    threshold is set on the model's RoI heads).
    """

    class_aliases = MappingProxyType({})
    #: COCO's 80 class names (the module's :func:`class_names`).
    class_names: tuple[str, ...] = class_names()

    def __init__(self, model: MaskRCNN, name: str = "maskrcnn", device: torch.device | None = None):
        super().__init__(model, name, device)

    @classmethod
    def from_settings(cls, settings: Settings, variant: str = "maskrcnn") -> MaskRCNNBackend:
        """Build ``variant`` (``maskrcnn`` or ``maskrcnn_v2``) with the weights in
        ``settings.models_dir``, else in torch hub's cache."""
        builder, weights = VARIANTS[variant]
        model, device = cls.load(settings, weights, variant, lambda path: builder(
            path, min_size=settings.maskrcnn_min_size, max_size=settings.maskrcnn_max_size,
            max_detections=settings.maskrcnn_max_detections))
        return cls(model, name=variant, device=device)

    def predict(self, rgb: np.ndarray, classes: list[str], score_threshold: float,
                working_size: int | None = None) -> list[Instance]:
        """Instances of ``classes`` (COCO names, :func:`class_names`) with score
        ``> score_threshold`` (see :meth:`.base.Backend.predict`), by decreasing score."""
        import torch

        check_rgb(rgb)
        wanted = torch.tensor(label_ids(classes), dtype=torch.int64)
        height, width = rgb.shape[:2]
        image = torch.from_numpy(rgb.copy()).permute(2, 0, 1)
        with self._lock, torch.inference_mode():
            image = image.to(self.device_obj, dtype=torch.float32).div_(255.0)
            model = self.model
            model.roi_heads.score_thresh = float(score_threshold)
            images, _ = model.transform([image])
            features = model.backbone(images.tensors)
            proposals, _ = model.rpn(images, features)
            detections, _ = model.roi_heads(features, proposals, images.image_sizes)
            det = detections[0]
            keep = (det["scores"] > score_threshold) & torch.isin(det["labels"], wanted.to(self.device_obj))
            det = {key: value[keep] for key, value in det.items()}
            if det["scores"].numel() == 0:
                return []
            det = model.transform.postprocess([det], images.image_sizes, [(height, width)])[0]
            masks = det["masks"][:, 0].float().clamp_(0.0, 1.0).cpu().numpy()
            boxes = det["boxes"].cpu().numpy()
            scores = det["scores"].cpu().numpy()
            labels = det["labels"].cpu().numpy()
        names = COCO_CATEGORIES
        instances = []
        for mask, box, score, label in zip(masks, boxes, scores, labels, strict=True):
            x1, y1, x2, y2 = (float(v) for v in box)
            left, top = int(np.floor(max(x1, 0.0))), int(np.floor(max(y1, 0.0)))
            right, bottom = int(np.ceil(min(x2, width))), int(np.ceil(min(y2, height)))
            instances.append(Instance(
                mask=np.ascontiguousarray(mask, dtype=np.float32),
                label=names[int(label)],
                score=float(score),
                box=(left, top, max(right - left, 0), max(bottom - top, 0)),
            ))
        instances.sort(key=lambda inst: inst.score, reverse=True)
        return instances
