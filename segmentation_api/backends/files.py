"""Where a backend finds its weights file: the models folder, else torch hub's cache.

A torchvision weights file is looked for, in order, at

1. ``<models dir>/<file name>`` (``BACKDROP_MODELS_DIR``; ``make weights`` puts it there);
2. ``torch.hub.get_dir()/checkpoints/<file name>``: where torchvision itself caches the
   file when a program calls ``weights.get_state_dict()`` (``$TORCH_HOME/hub``, by
   default ``~/.cache/torch/hub``), so a machine that already has it need not copy it.

Nothing is ever downloaded. torch is imported only when the models folder lacks the file.
"""

from __future__ import annotations

from pathlib import Path

from service_common.weights import WeightsFile, missing_message


def hub_cache_path(w: WeightsFile) -> Path:
    """Where torch hub caches ``w``: ``torch.hub.get_dir()/checkpoints/<file name>``."""
    import torch.hub  # local: a models-folder hit needs no torch

    return Path(torch.hub.get_dir()) / "checkpoints" / w.filename


def find_weights(w: WeightsFile, models_dir: Path) -> Path | None:
    """The file of ``w`` in ``models_dir``, else in torch hub's cache; ``None`` when in neither."""
    local = w.path(models_dir)
    if local.is_file():
        return local
    cached = hub_cache_path(w)
    return cached if cached.is_file() else None


def not_found_message(w: WeightsFile, models_dir: Path) -> str:
    """:func:`~service_common.weights.missing_message` plus the cache path that was tried."""
    return f"{missing_message(w, models_dir)} (Also looked in torch hub's cache: {hub_cache_path(w)}.)"
