"""MONAI Label's local datastore for ``monai-bone label serve``: a studies folder indexed with the rules of
``monai-bone index``, then one link per usable radiograph named by its image id (see :mod:`monai_bone.label.server`
for the work-folder layout). A DICOMweb URL passes through unchanged.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

from monai_bone.data.datalist import build_datalist
from monai_bone.data.folds import load_records
from monai_bone.data.image_formats import IMAGE_SUFFIXES
from monai_bone.data.inference import inference_source_kind
from monai_bone.data.sources.dicomweb import is_dicomweb_url

__all__ = ["image_id_for", "prepare_studies"]

logger = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9._\-]")


def image_id_for(rel: str | os.PathLike) -> str:
    """Datastore image id of a file: relative path without suffix, ``/`` -> ``__``, other unsafe characters -> ``_``.

    Args:
        rel: path relative to the studies folder.
    """
    p = Path(rel)
    stem = p.with_suffix("") if p.suffix.lower() in IMAGE_SUFFIXES else p
    return _UNSAFE.sub("_", "__".join(stem.parts))


def _link_suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    return ".jpg" if suffix == ".jpeg" else suffix if suffix in (".png", ".jpg") else ".dcm"


def prepare_studies(source: str | os.PathLike, work_dir: str | os.PathLike, progress: bool = True) -> dict[str, Any]:
    """Index a local studies folder and build MONAI Label's datastore folder of links (DICOMweb URLs pass through).

    Args:
        source: local folder or DICOMweb URL.
        work_dir: the server's work folder.
        progress: tqdm bar while indexing.

    Returns:
        ``{"studies": <folder or URL for --studies>, "images": n, "rejected": n, "rejects": <rejects.json or None>}``.

    Raises:
        FileNotFoundError: when the folder does not exist.
        ValueError: when it holds no usable radiograph.
    """
    text = os.fspath(source)
    if is_dicomweb_url(text):
        return {"studies": text.rstrip("/"), "images": None, "rejected": None, "rejects": None}
    root = Path(text).expanduser().resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"studies folder not found: {root}")
    work = Path(work_dir).resolve()
    index = work / "index"
    index.mkdir(parents=True, exist_ok=True)
    datalist = index / "datalist.json"
    kind = inference_source_kind(root)  # a flat folder of PNG/JPEG knee images is an image folder, not DICOM
    build_datalist(str(root), str(datalist), task=None, folds=1, progress=progress, source_kind=kind)
    studies = work / "studies"
    if studies.exists():
        for p in studies.iterdir():  # our links only; MONAI Label's own files (labels/, datastore json) are kept
            if p.is_symlink():
                p.unlink()
    studies.mkdir(parents=True, exist_ok=True)
    records = load_records(datalist)
    _link_records(records, index, root, studies)
    rejected = _read_rejects(index, root)
    rejects_csv = index / "rejects.csv"
    rejects_json = index / "rejects.json"
    rejects_json.write_text(json.dumps(rejected, indent=1) + "\n", encoding="utf-8")
    if not records:
        raise ValueError(f"{root}: no usable radiograph found (see {rejects_csv})")
    logger.info("datastore: %d radiographs linked, %d files rejected (%s)", len(records), len(rejected), rejects_csv)
    return {"studies": str(studies), "images": len(records), "rejected": len(rejected), "rejects": str(rejects_json)}


def _link_records(records: list[dict[str, Any]], index: Path, root: Path, studies: Path) -> None:
    """One link ``<image id><suffix>`` in ``studies`` per indexed record (ids made unique with ``-2``, ``-3``...)."""
    used: set[str] = set()

    def unique(image_id: str) -> str:
        n, candidate = 1, image_id
        while candidate in used:
            n += 1
            candidate = f"{image_id}-{n}"
        used.add(candidate)
        return candidate

    for rec in records:
        path = Path(rec["image"])
        path = path if path.is_absolute() else (index / path).resolve()
        image_id = unique(image_id_for(path.relative_to(root)))
        (studies / f"{image_id}{_link_suffix(path)}").symlink_to(path)


def _read_rejects(index: Path, root: Path) -> dict[str, str]:
    """Image id -> ``"reason: detail"`` of the files the index refused (from ``rejects.csv``; empty when none)."""
    rejected: dict[str, str] = {}
    rejects_csv = index / "rejects.csv"
    if rejects_csv.is_file():
        with open(rejects_csv, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(line for line in f if not line.startswith("#")):
                path = (index / (row.get("path") or "")).resolve()
                with contextlib.suppress(ValueError):
                    rejected[image_id_for(path.relative_to(root))] = f"{row.get('reason')}: {row.get('detail')}"
    return rejected
