"""Send many image files to the matting service concurrently and write the results.

One :class:`Task` per input file says where its result goes. :func:`run_tasks` runs them
on a thread pool (one pooled HTTP client shared by all threads), shows a tqdm progress bar,
decodes every result (:func:`client.api.check_image`: an answer that is not a whole image of
the type it claims is a failure, never a file), writes it atomically
(:func:`client.files.atomic_write`) and returns a
:class:`BatchReport` with a :class:`FileError` (file, code, message) per failed file.
With ``skip_existing`` a task whose output already exists is not sent again, which makes
an interrupted run resumable: a file is only ever present complete.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from .api import MattingClient, MattingError, check_image
from .files import atomic_write, list_images, same_file
from .options import EXT_BY_FORMAT, IMAGE_EXTS, extension_for

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Task:
    """One input file and where its result goes.

    Attributes:
        source: the image file to send.
        output: the result's path. When ``exact`` is false it is a stem: the extension
            of the answer's format (``.png``, ``.jpg``, ``.webp``) is appended.
        exact: whether ``output`` is the final name.
        trimap: a trimap file to send with the image, if any.
    """

    source: Path
    output: Path
    exact: bool = False
    trimap: Path | None = None

    def candidates(self, fmt: str | None) -> list[Path]:
        """The paths the result may be written to, given the requested ``format``."""
        if self.exact:
            return [self.output]
        exts = [EXT_BY_FORMAT[fmt]] if fmt in EXT_BY_FORMAT else list(EXT_BY_FORMAT.values())
        return [Path(f"{self.output}{ext}") for ext in exts]


@dataclass(frozen=True)
class FileError:
    """Why one file failed: ``code`` is the API's error code or a client one
    (``unreadable_input``, ``missing_trimap``, ``write_failed``, ``would_overwrite_input``,
    ``service_unreachable``, ``timeout``, ``bad_response``, ``answer_too_large``, ``redirect``)."""

    path: Path
    code: str
    message: str
    status: int | None = None


@dataclass
class BatchReport:
    """What a batch did: written outputs, skipped inputs (already done), failures, and
    inputs not attempted because the service became unreachable."""

    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[FileError] = field(default_factory=list)
    not_attempted: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.not_attempted


class TaskFailed(Exception):
    """One task failed; carries its :class:`FileError`."""

    def __init__(self, error: FileError) -> None:
        super().__init__(error.message)
        self.error = error


def _read(path: Path, what: str, source: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TaskFailed(FileError(source, "unreadable_input",
                                   f"cannot read {what} {path}: {exc.strerror or exc}")) from exc


def run_task(
    client: MattingClient,
    task: Task,
    options: Mapping[str, Any],
    bg_image: bytes | None = None,
) -> Path:
    """Send ``task.source`` (and its trimap) with ``options``; check that the answer is a whole
    image of the format asked for (decoded), then write it atomically.

    Returns:
        the path written.

    Raises:
        TaskFailed: with the file's :class:`FileError` (API error, unreadable input, ...).
    """
    image = _read(task.source, "input", task.source)
    trimap = _read(task.trimap, "trimap", task.source) if task.trimap is not None else None
    try:
        body, headers = client.matte(
            image, filename=task.source.name, bg_image=bg_image, trimap=trimap, **options
        )
        check_image(body, headers.get("Content-Type"), options.get("format"))
    except MattingError as exc:
        raise TaskFailed(FileError(task.source, exc.code, exc.message, exc.status)) from exc
    if task.exact:
        target = task.output
    else:
        target = Path(f"{task.output}{extension_for(headers.get('Content-Type'), options.get('format'))}")
    if same_file(task.source, target):
        raise TaskFailed(FileError(task.source, "would_overwrite_input",
                                   f"refusing to overwrite the input {task.source}"))
    try:
        atomic_write(target, body)
    except OSError as exc:
        raise TaskFailed(FileError(task.source, "write_failed",
                                   f"cannot write {target}: {exc.strerror or exc}")) from exc
    return target


def find_trimap(trimap_dir: Path, rel: Path) -> Path | None:
    """The trimap for input ``rel`` (relative path): same folder and stem, any image
    extension (``.png`` preferred)."""
    folder = trimap_dir / rel.parent
    exact = folder / f"{rel.stem}.png"
    if exact.is_file():
        return exact
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            if path.stem == rel.stem and path.suffix.lower() in IMAGE_EXTS and path.is_file():
                return path
    return None


def plan_folder(input_dir: Path, output_dir: Path, trimap_dir: Path | None = None) -> list[Task]:
    """One :class:`Task` per image under ``input_dir``; results mirror its sub-folders in
    ``output_dir`` under the same stem (the extension comes from the result's format).

    A missing trimap (when ``trimap_dir`` is given) is left as ``trimap=None`` here and
    reported by :func:`run_tasks` through ``require_trimap``.
    """
    tasks = []
    for src in list_images(input_dir, exclude=output_dir):
        rel = src.relative_to(input_dir)
        trimap = find_trimap(trimap_dir, rel) if trimap_dir is not None else None
        tasks.append(Task(src, output_dir / rel.parent / rel.stem, exact=False, trimap=trimap))
    return tasks


def run_tasks(
    client: MattingClient,
    tasks: Sequence[Task],
    options: Mapping[str, Any],
    *,
    bg_image: bytes | None = None,
    jobs: int = 4,
    skip_existing: bool = False,
    require_trimap: bool = False,
    progress: bool = True,
) -> BatchReport:
    """Run ``tasks`` with ``jobs`` requests in flight.

    Args:
        client: shared by all threads (its pool should hold ``jobs`` connections).
        tasks: what to do, e.g. from :func:`plan_folder`.
        options: form fields for :meth:`MattingClient.matte` (same for every file).
        bg_image: background image bytes sent with every file.
        jobs: concurrent requests.
        skip_existing: leave out tasks whose output already exists.
        require_trimap: report tasks without a trimap as ``missing_trimap`` failures.
        progress: show a tqdm bar on stderr.

    Returns:
        the :class:`BatchReport`; failures are sorted by file name. When the service cannot
        be reached (``service_unreachable``, after the client's retry) the files not yet
        sent are left out and listed in ``not_attempted``.
    """
    report = BatchReport()
    todo: list[Task] = []
    for task in tasks:
        done = [p for p in task.candidates(options.get("format")) if p.exists()]
        if skip_existing and done:
            report.skipped.append(task.source)
        elif require_trimap and task.trimap is None:
            report.failed.append(FileError(task.source, "missing_trimap",
                                           "no trimap with the same name in the trimap folder"))
        else:
            todo.append(task)
    if report.skipped:
        log.info("skipping %d file(s) already done", len(report.skipped))
    with (
        ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="matte") as pool,
        tqdm(total=len(todo), unit="img", disable=not progress, dynamic_ncols=True) as bar,
    ):
        futures = {pool.submit(run_task, client, t, options, bg_image): t for t in todo}
        try:
            for fut in as_completed(futures):
                if fut.cancelled():
                    report.not_attempted.append(futures[fut].source)
                    continue
                try:
                    report.written.append(fut.result())
                except TaskFailed as exc:
                    report.failed.append(exc.error)
                    log.warning("failed: %s: %s: %s", exc.error.path, exc.error.code,
                                exc.error.message)
                    if exc.error.code == "service_unreachable":
                        for other in futures:
                            other.cancel()  # no point sending the rest
                bar.update(1)
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise
    report.failed.sort(key=lambda e: str(e.path))
    report.not_attempted.sort()
    return report
