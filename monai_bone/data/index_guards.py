"""The image guards as the index applies them: body part / view per file, and bilateral knee images.

:func:`guard_header` turns :func:`monai_bone.data.image_guards.check_body_part_view` into a reject or warnings for one
indexed file. :class:`BilateralCheck` decodes knee images (``monai-bone index --task knee``; ``--bilateral off``
skips the decoding), flags bilateral ones with a warning naming the file (``--bilateral warn``, the default for knee)
or splits them into a left and a right half (``--bilateral split``): each half becomes its own record, written as a
16-bit PNG (MONOCHROME2, grey levels rescaled to the full 16-bit range) under ``bilateral/`` beside the datalist,
with ``split_from`` naming the original file and ``image_half`` the side (``left``/``right`` as displayed; the
patient's laterality depends on the view and is not inferred). Both halves keep the patient id, so they always
fall in the same fold.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from monai_bone.data.dicom_records import FieldWarning
from monai_bone.data.image_formats import PLAIN_IMAGE_SUFFIXES
from monai_bone.data.image_guards import BodyPartViewRule, bilateral_score, is_bilateral, split_halves
from monai_bone.data.sources import SourceImage
from monai_bone.utils.io import atomic_write_stream

__all__ = ["BILATERAL_FOLDER", "BILATERAL_MODES", "BilateralCheck", "guard_header", "read_pixels", "split_record"]

logger = logging.getLogger(__name__)

#: ``--bilateral`` choices: skip the check, warn about bilateral knees, or split them into two studies.
BILATERAL_MODES: tuple[str, ...] = ("off", "warn", "split")
#: Folder (beside the datalist) receiving the halves of split bilateral images.
BILATERAL_FOLDER: str = "bilateral"


@functools.lru_cache(maxsize=16)
def _rule(task: str, body_parts: tuple[str, ...] | None, views: tuple[str, ...] | None) -> BodyPartViewRule:
    return BodyPartViewRule(task, body_parts, views)


def guard_header(
    img: SourceImage,
    task: str,
    body_parts: Sequence[str] | None,
    views: Sequence[str] | None,
    found: list[FieldWarning],
) -> tuple[str, str] | None:
    """Check one file's BodyPartExamined / ViewPosition against the task.

    Image files (PNG/JPEG, no DICOM tags) are not checked. Missing tags and ambiguous body parts add a warning to
    ``found``.

    Returns:
        ``(reason, detail)`` of the first refusal, or ``None`` when the file is kept.
    """
    if img.modality is None:
        return None
    rule = _rule(task, None if body_parts is None else tuple(body_parts), None if views is None else tuple(views))
    findings = rule(img.body_part, img.view_position)
    for f in findings:
        if f.reason is not None:
            return f.reason, f.detail
    for f in findings:
        found.append(FieldWarning(f.field, "note", f.value, f.value, f.detail, "dicom"))
    return None


def read_pixels(path: str | os.PathLike) -> tuple[np.ndarray, bool]:
    """Decode one radiograph for the pixel checks of the index: ``(float array (H, W), monochrome1)``.

    DICOM through pydicom (modality LUT applied; the index has already checked the header and decoder), PNG/JPEG
    through PIL (colour converted to grey).
    """
    path = Path(path)
    if path.suffix.lower() in PLAIN_IMAGE_SUFFIXES:
        from PIL import Image

        with Image.open(path) as im:
            im = im if im.mode in ("L", "I", "I;16", "F") else im.convert("L")
            return np.asarray(im, dtype=np.float64), False
    import pydicom
    from pydicom.pixels import apply_modality_lut

    ds = pydicom.dcmread(path)
    arr = np.asarray(apply_modality_lut(ds.pixel_array, ds), dtype=np.float64)
    return arr, str(ds.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1"


def _png16(arr: np.ndarray, monochrome1: bool) -> np.ndarray:
    lo, hi = float(arr.min()), float(arr.max())
    scaled = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
    if monochrome1:
        scaled = 1.0 - scaled
    return np.rint(scaled * 65535.0).astype(np.uint16)


class BilateralCheck:
    """Bilateral knee detection (and optional split) for the index.

    Args:
        mode: one of :data:`BILATERAL_MODES`.
        out_dir: the datalist's folder (halves go to ``out_dir/bilateral/``).
    """

    def __init__(self, mode: str, out_dir: Path) -> None:
        if mode not in BILATERAL_MODES:
            raise ValueError(f"bilateral must be one of {BILATERAL_MODES}, got {mode!r}")
        self.mode = mode
        self.folder = Path(out_dir) / BILATERAL_FOLDER
        self.found = 0

    def __call__(self, path: Path, rel: str, found: list[FieldWarning]) -> list[tuple[str, str]] | None:
        """Check one file; returns ``[(half name, half path), ...]`` when it was split, else ``None``.

        A file that cannot be decoded here is left to the loader (which rejects it with the file named).
        """
        if self.mode == "off":
            return None
        try:
            arr, mono1 = read_pixels(path)
        except Exception as err:  # noqa: BLE001 - the loader reports undecodable files; this check just skips them
            logger.debug("%s: bilateral check skipped (%s)", rel, err)
            return None
        if not is_bilateral(arr, monochrome1=mono1):
            return None
        self.found += 1
        score = bilateral_score(arr, monochrome1=mono1)
        if self.mode == "warn":
            detail = (
                f"{rel} looks like a bilateral knee image (both knees side by side, score {score:.2f}); kept as one "
                "study -- index with --bilateral split to make a left and a right study"
            )
            logger.warning("%s", detail)
            found.append(FieldWarning("bilateral", "note", None, None, detail, "pixels"))
            return None
        stem = rel.replace("/", "__").rsplit(".", 1)[0]
        halves = []
        for name, half in split_halves(arr).items():
            target = self.folder / f"{stem}_{name}.png"
            _write_png16(target, _png16(half, mono1))
            halves.append((name, target))
        detail = f"{rel} is a bilateral knee image (score {score:.2f}); split into a left and a right study"
        found.append(FieldWarning("bilateral", "note", None, None, detail, "pixels"))
        return [(name, os.fspath(target)) for name, target in halves]


def _write_png16(path: Path, pixels: np.ndarray) -> None:
    from PIL import Image

    image = Image.fromarray(pixels)
    atomic_write_stream(path, lambda f: image.save(f, format="PNG"))


def split_record(record: dict[str, Any], halves: Sequence[tuple[str, str]], rel) -> list[dict[str, Any]]:
    """The records of the halves of a split image (``rel`` makes a half's path relative to the datalist)."""
    out = []
    for name, path in halves:
        out.append({**record, "image": rel(Path(path)), "split_from": record["image"], "image_half": name})
    return out
