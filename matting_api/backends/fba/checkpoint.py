"""Safe loading and validation of FBA checkpoints.

The official ``FBA.pth`` is a *raw* state dict: a flat mapping of 197 keys (``encoder.*`` /
``decoder.*``, no ``module.`` prefix) to float32 tensors, loaded by the official code with
``torch.load`` + ``load_state_dict(strict=True)``. We load it with ``weights_only=True`` (never
unpickling arbitrary objects) and check keys and shapes ourselves so errors say what is wrong.
"""

from __future__ import annotations

import logging
import os
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from service_common.weights import ModelError

logger = logging.getLogger(__name__)

#: Where the real weights come from; appended to every error message.
WEIGHTS_HINT: str = (
    "The real checkpoint is the official FBA.pth linked from the FBA_Matting README "
    "(github.com/MarcoForte/FBA_Matting); place it at models/FBA.pth or fetch it with "
    "`make weights WEIGHTS=fba`."
)

#: How many offending keys an error message lists before summarising the rest.
MAX_LISTED: int = 5

#: Wrapper key that is unwrapped if a file holds ``{"state_dict": {...}}`` (the official file
#: does not; training scripts often save this form). Nothing else is unwrapped.
WRAPPER_KEY: str = "state_dict"

_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_PROTO = 0x80  # first byte of a pickle of protocol >= 2 (legacy torch.save format)


def checkpoint_error(message: str) -> ModelError:
    """The error for a checkpoint file or state dict that cannot be used for
    :class:`FBAMatting`: what is wrong, and where the real checkpoint comes from."""
    return ModelError(f"{message} {WEIGHTS_HINT}")


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:MAX_LISTED])
    rest = len(items) - MAX_LISTED
    return f"{shown} (and {rest} more)" if rest > 0 else shown


def _describe_file(path: Path) -> str | None:
    """A reason why ``path`` cannot be a torch checkpoint, judged from its bytes, or None."""
    size = path.stat().st_size
    if size == 0:
        return "is empty (0 bytes)"
    with path.open("rb") as fh:
        head = fh.read(4)
    if head == _ZIP_MAGIC:
        if not zipfile.is_zipfile(path):
            return (
                f"looks like a truncated or corrupted torch checkpoint ({size} bytes; the zip "
                "archive has no central directory, e.g. an interrupted download)"
            )
        return None
    if head[:1] == bytes([_PICKLE_PROTO]):
        return None  # legacy torch format or a plain pickle: torch.load(weights_only) judges
    return f"is not a torch checkpoint (starts with {head!r}; expected a zip or pickle file)"


def unwrap_state_dict(obj: object, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Validate a loaded object as a flat ``str -> Tensor`` state dict.

    A mapping whose only useful content is under ``"state_dict"`` is unwrapped once
    (``{"state_dict": sd, ...}`` → ``sd``); the official file needs no unwrapping. Anything else
    that is not a flat mapping of tensors is refused.

    Raises:
        ModelError: the object is not a state dict.
    """
    if isinstance(obj, Mapping) and WRAPPER_KEY in obj and isinstance(obj[WRAPPER_KEY], Mapping):
        logger.info("%s: unwrapping the state dict stored under %r", source, WRAPPER_KEY)
        obj = obj[WRAPPER_KEY]
    if not isinstance(obj, Mapping):
        raise checkpoint_error(
            f"{source} holds a {type(obj).__name__}, not a state dict (a flat mapping of "
            "parameter names to tensors)."
        )
    bad = [str(k) for k, v in obj.items() if not (isinstance(k, str) and torch.is_tensor(v))]
    if bad:
        raise checkpoint_error(
            f"{source} is not a flat state dict: {len(bad)} entries are not str -> Tensor: {_listing(bad)}."
        )
    return dict(obj)


def load_state_dict_file(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Load a raw state dict from ``path`` safely.

    Uses ``torch.load(path, map_location="cpu", weights_only=True)``: only tensors and plain
    containers are unpickled, so a file that pickles arbitrary objects is refused *without*
    executing it. See :func:`unwrap_state_dict` for the accepted layouts.

    Returns:
        ``{key: tensor}`` on the CPU (tensors keep their stored dtype).

    Raises:
        ModelError: missing/empty/truncated file, not a torch checkpoint, a pickle of
            something other than tensors, or not a state dict.
    """
    path = Path(path)
    if not path.is_file():
        raise checkpoint_error(f"Checkpoint {str(path)!r} does not exist or is not a file.")
    problem = _describe_file(path)
    if problem is not None:
        raise checkpoint_error(f"Checkpoint {str(path)!r} {problem}.")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # weights_only refuses any global it does not allow-list, before executing it.
        # Keep torch's reason line, not its advice to retry with weights_only=False.
        reason = next(
            (line.strip() for line in str(exc).splitlines() if "GLOBAL" in line),
            "objects other than tensors",
        )
        raise checkpoint_error(
            f"Checkpoint {str(path)!r} was refused: it is not a plain tensor state dict and "
            f"arbitrary pickled objects are never loaded ({reason})."
        ) from exc
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as exc:
        raise checkpoint_error(
            f"Checkpoint {str(path)!r} could not be read as a torch checkpoint "
            f"(truncated or corrupted?): {type(exc).__name__}: {exc}."
        ) from exc
    return unwrap_state_dict(obj, source=f"Checkpoint {str(path)!r}")


def check_state_dict(
    expected: Mapping[str, torch.Size | tuple[int, ...]],
    state_dict: Mapping[str, torch.Tensor],
    source: str = "state dict",
) -> None:
    """Check keys and shapes of ``state_dict`` against ``expected`` (key → shape).

    Raises:
        ModelError: naming missing keys, unexpected keys and shape mismatches (a few of
            each, with counts), plus a hint when keys carry a ``module.`` prefix.
    """
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [
        f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(expected[k])}"
        for k in expected
        if k in state_dict and tuple(state_dict[k].shape) != tuple(expected[k])
    ]
    non_float = [k for k in expected if k in state_dict and not state_dict[k].is_floating_point()]
    if not (missing or unexpected or mismatched or non_float):
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing keys: {_listing(missing)}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected keys: {_listing(unexpected)}")
    if mismatched:
        parts.append(f"{len(mismatched)} shape mismatches: {_listing(mismatched)}")
    if non_float:
        parts.append(f"{len(non_float)} non-floating-point tensors: {_listing(non_float)}")
    hint = ""
    if unexpected and all(k.startswith("module.") for k in unexpected):
        hint = (
            " The keys carry a 'module.' (DataParallel) prefix; the official FBA.pth has none, "
            "so this is not the official file."
        )
    raise checkpoint_error(
        f"{source} does not match the FBA model ({len(expected)} keys expected): "
        + "; ".join(parts)
        + "."
        + hint
    )


def load_into(
    model: nn.Module,
    weights: str | os.PathLike[str] | Mapping[str, torch.Tensor],
) -> None:
    """Load ``weights`` (a path or a loaded state dict) into ``model`` with ``strict=True``.

    Raises:
        ModelError: as :func:`load_state_dict_file` and :func:`check_state_dict`.
    """
    if isinstance(weights, (str, os.PathLike)):
        source = f"Checkpoint {os.fspath(weights)!r}"
        state_dict = load_state_dict_file(weights)
    else:
        source = "The given state dict"
        state_dict = unwrap_state_dict(weights, source=source)
    expected = {k: v.shape for k, v in model.state_dict().items()}
    check_state_dict(expected, state_dict, source=source)
    model.load_state_dict(state_dict, strict=True)
    logger.info("%s: loaded %d tensors", source, len(state_dict))


#: The official file's number of tensors (all ``encoder.*`` / ``decoder.*``).
OFFICIAL_KEYS = 197


def check_file(path: Path) -> None:
    """The check of a downloaded ``FBA.pth`` (its authors publish no checksum): a readable raw
    state dict of :data:`OFFICIAL_KEYS` ``encoder.`` / ``decoder.`` tensors.

    Raises:
        ModelError: it is not.
    """
    state = load_state_dict_file(path)
    if len(state) != OFFICIAL_KEYS or not all(k.startswith(("encoder.", "decoder.")) for k in state):
        raise checkpoint_error(f"{path} is not the FBA state dict (expected {OFFICIAL_KEYS} "
                               "encoder./decoder. keys).")
