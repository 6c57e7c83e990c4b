"""Header reading for the index across worker processes.

Reading a DICOM header is Python-bound (pydicom parses element by element), so the index reads large sources with
``workers`` forked processes (POSIX ``fork``: the source object is inherited, nothing is re-imported) in chunks of
:data:`CHUNK` files, and hands the results back in file order. Rejects and unexpected errors come back as
:class:`ReadOutcome` objects that re-raise in the parent, so the index's per-file accounting is the same as with one
process. ``workers=None`` picks ``min(4, CPUs // 2)`` for sources of at least :data:`MIN_PARALLEL_FILES` files, else
one process; where ``fork`` is not available everything runs in the calling process.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monai_bone.data.dicom_records import RejectError

__all__ = ["CHUNK", "MIN_PARALLEL_FILES", "ReadOutcome", "default_workers", "read_headers"]

#: Files per task sent to a worker.
CHUNK: int = 32
#: Smallest source read in parallel when ``workers`` is not given (starting workers costs ~0.05-0.3 s).
MIN_PARALLEL_FILES: int = 1000

_SOURCE: Any = None  # the source, inherited by forked workers


class WorkerError(Exception):
    """An unexpected error raised while a worker read a header; ``type_name`` is the original exception type."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(message)
        self.type_name = type_name


@dataclass
class ReadOutcome:
    """The result of reading one file: the image, or the reject / error to raise in the parent."""

    image: Any = None
    reject: tuple[str, str] | None = None
    error: tuple[str, str] | None = None

    def get(self) -> Any:
        """The image; raises the :class:`RejectError` or :class:`WorkerError` recorded instead."""
        if self.reject is not None:
            raise RejectError(*self.reject)
        if self.error is not None:
            raise WorkerError(*self.error)
        return self.image


def _read_one(source: Any, path: Path, keys: Sequence[str], pixel_hash: bool = False) -> ReadOutcome:
    try:
        image = source.read(path, keys=keys, pixel_hash=True) if pixel_hash else source.read(path, keys=keys)
        return ReadOutcome(image=image)
    except RejectError as err:
        return ReadOutcome(reject=(err.reason, err.detail))
    except Exception as err:  # noqa: BLE001 - reported per file by the index, like in the single-process loop
        return ReadOutcome(error=(type(err).__name__, str(err)))


def _read_chunk(args: tuple[list[Path], tuple[str, ...], bool]) -> list[ReadOutcome]:
    paths, keys, pixel_hash = args
    return [_read_one(_SOURCE, p, keys, pixel_hash) for p in paths]


def _set_source(source: Any) -> None:
    global _SOURCE
    _SOURCE = source


def default_workers(n_files: int) -> int:
    """Workers used when none are given: ``min(4, CPUs // 2)`` for at least :data:`MIN_PARALLEL_FILES` files, else 1
    (a 2-core machine reads in one process: the workers would only compete with the parent)."""
    if n_files < MIN_PARALLEL_FILES or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(4, cpus // 2))


def read_headers(
    source: Any, files: Sequence[Path], keys: Sequence[str], workers: int | None = None, pixel_hash: bool = False
) -> Iterator[tuple[Path, Any]]:
    """Yield ``(path, outcome)`` for every file, in order: an object whose ``get()`` returns the image or raises.

    Args:
        source: an :class:`~monai_bone.data.sources.ImageSource`.
        files: the files to read.
        keys: extra DICOM keywords to read (the join key).
        workers: worker processes (``None``: :func:`default_workers`; 1: read in this process, lazily).
        pixel_hash: also hash each image's pixels in the same read (duplicate grouping, ``SourceImage.pixel_hash``).
    """
    keys = tuple(keys)
    workers = default_workers(len(files)) if workers is None else max(1, int(workers))
    if workers == 1 or len(files) < 2 or "fork" not in multiprocessing.get_all_start_methods():
        for path in files:
            yield path, _read_one(source, path, keys, pixel_hash)
        return
    chunks = [(list(files[i : i + CHUNK]), keys, pixel_hash) for i in range(0, len(files), CHUNK)]
    context = multiprocessing.get_context("fork")
    with context.Pool(min(workers, len(chunks)), initializer=_set_source, initargs=(source,)) as pool:
        for (paths, _, _), outcomes in zip(chunks, pool.imap(_read_chunk, chunks)):
            yield from zip(paths, outcomes)
