"""Optional dependencies: which pip extra brings what, and what to say when one is missing.

The default install is slim: the offline backends (MODNet and U^2-Net-p through
onnxruntime, closed-form matting) need neither torch nor torchvision. The torch models
(Mask R-CNN, DeepLabV3, FBA Matting) need the ``torch`` extra. Asked for one of them
without it, a service refuses to start with :func:`require_torch`'s one-line message; the
``auto`` choices fall back to the offline backends with a warning saying the same.
"""

from __future__ import annotations

import importlib.util

from .weights import ModelError

#: The pip extra with torch and torchvision (pyproject.toml), and the make target.
TORCH_EXTRA = "torch"
TORCH_INSTALL = f"pip install -e '.[{TORCH_EXTRA}]' (or `make install-torch`)"


def torch_installed() -> bool:
    """Whether torch and torchvision can be imported here (nothing is imported)."""
    return all(importlib.util.find_spec(name) is not None for name in ("torch", "torchvision"))


def torch_missing_message(what: str) -> str:
    """One sentence: ``what`` needs torch, and the command that installs it."""
    return (f"{what} needs torch and torchvision, which are not installed in this environment "
            f"(the default install is slim); install them with: {TORCH_INSTALL}")


def require_torch(what: str) -> None:
    """Raise :class:`ModelError` with :func:`torch_missing_message` unless torch is installed."""
    if not torch_installed():
        raise ModelError(torch_missing_message(what))
