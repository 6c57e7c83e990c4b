"""Image sources of the index: DICOM folders and KOP-style image folders (:mod:`.folders`) and DICOMweb servers
(:mod:`.dicomweb`, retrieved into a local cache and then read like a DICOM folder).

:func:`open_source` picks the source for a folder or URL. The modules import one way only: ``dicomweb`` builds on
``folders``; this package imports both.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Collection
from pathlib import Path

from monai_bone.data.sources.dicomweb import (
    DEFAULT_CACHE_NAME,
    DicomwebError,
    DicomwebSource,
    is_dicomweb_url,
    split_dicomweb_url,
)
from monai_bone.data.sources.folders import (
    SOURCE_KINDS,
    DicomFolderSource,
    ImageFolderSource,
    ImageSource,
    SourceImage,
    detect_source_kind,
)

__all__ = [
    "DEFAULT_CACHE_NAME",
    "SOURCE_KINDS",
    "DicomFolderSource",
    "DicomwebError",
    "DicomwebSource",
    "ImageFolderSource",
    "ImageSource",
    "SourceImage",
    "detect_source_kind",
    "is_dicomweb_url",
    "open_source",
    "split_dicomweb_url",
]

logger = logging.getLogger(__name__)

_FOLDER_SOURCES: dict[str, type[ImageSource]] = {"dicom": DicomFolderSource, "kop": ImageFolderSource}


def open_source(
    source: str | os.PathLike,
    kind: str | None = None,
    exclude: Collection[str | os.PathLike] = (),
    cache: str | os.PathLike | None = None,
    progress: bool = True,
) -> ImageSource:
    """Open a source folder as a :class:`DicomFolderSource` or :class:`ImageFolderSource`, or a DICOMweb URL as a
    :class:`~.dicomweb.DicomwebSource` (which contacts the server only when its files are listed).

    Args:
        source: folder path, or DICOMweb URL (``http(s)://HOST:PORT/PATH``).
        kind: ``"dicom"``, ``"kop"``, ``"dicomweb"`` or ``None`` to auto-detect (:func:`detect_source_kind` for
            folders; a URL is always DICOMweb).
        exclude: files to leave out of the listing.
        cache: DICOMweb only: folder receiving the retrieved instances (default ``dicomweb_cache`` in the current
            folder; ``monai-bone index`` puts it beside the datalist).
        progress: DICOMweb only: tqdm bars for the search and retrieval.

    Returns:
        The source.

    Raises:
        ValueError: for an unknown kind, a kind that does not fit the source, or a path that is not a folder.
        FileNotFoundError: when the folder does not exist.
    """
    text = os.fspath(source)
    if kind is not None and kind not in SOURCE_KINDS:
        raise ValueError(f"unknown source kind {kind!r}; expected one of {SOURCE_KINDS} or None (auto-detect)")
    if is_dicomweb_url(text):
        if kind not in (None, "dicomweb"):
            raise ValueError(f"source {text!r} is a URL: source kind {kind!r} applies to folders only")
        cache = Path(DEFAULT_CACHE_NAME) if cache is None else Path(cache)
        logger.debug("source %s opened as dicomweb (cache %s)", text, cache)
        return DicomwebSource(text, cache, exclude=exclude, progress=progress)
    if kind == "dicomweb":
        raise ValueError(f"source kind 'dicomweb' needs a URL (http://HOST:PORT/dicom-web), got {text!r}")
    path = Path(text)
    if not path.exists():
        raise FileNotFoundError(f"source {path} does not exist")
    if not path.is_dir():
        raise ValueError(f"source {path} is not a folder (give the folder that holds the images)")
    kind = kind or detect_source_kind(path)
    logger.debug("source %s opened as %s", path, kind)
    return _FOLDER_SOURCES[kind](path, exclude=exclude)
