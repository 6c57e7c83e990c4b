"""Image guards as transforms: refuse, at load time, an image the model was not made for.

:class:`XrayGuard` (array) / :class:`XrayGuardd` (dictionary) go right after :class:`~monai_bone.transforms.LoadXray`
in the bundles' training and inference chains. They apply the rules of :mod:`monai_bone.data.image_guards` to the
loaded image and its meta (``BodyPartExamined``, ``ViewPosition``, ``BitsStored``, ``RescaleSlope``):

* ``blank_image``: blank or degenerate pixels (near-constant, tiny dynamic range, mostly saturated);
* ``wrong_body_part`` / ``wrong_view``: with ``task`` set, a DICOM body part or view that does not fit the task
  (missing tags pass -- PNG/JPEG files have none -- and are logged at debug level);
* with ``task="knee"``, a bilateral knee image (both knees side by side) is logged as a warning naming the file
  (``monai-bone index --bilateral split`` makes two studies of it).

A refusal raises :class:`ImageGuardError` (an :class:`~monai_bone.transforms.XrayReadError`, so a ``ValueError``)
whose message starts with the file name and the reason code and whose ``reason`` attribute holds the code. In
training the memory-cached dataset drops the study and lists it with that reason in its rejects CSV
(:func:`monai_bone.data.make_dataset`); in inference :class:`~monai_bone.transforms.SafeXrayd` turns it into an
error row (and the MONAI Label app into a 422 answer naming the reason).
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
from monai.config import KeysCollection
from monai.config.type_definitions import NdarrayOrTensor
from monai.transforms.transform import MapTransform, Transform
from monai.utils.enums import TransformBackends

from monai_bone.data.image_guards import (
    bilateral_score,
    blank_image_problem,
    check_body_part_view,
    checks_bilateral,
    is_bilateral,
    parse_tag_list,
)
from monai_bone.data.xray_reader import XrayReadError

__all__ = ["ImageGuardError", "XrayGuard", "XrayGuardD", "XrayGuardDict", "XrayGuardd"]

logger = logging.getLogger(__name__)


class ImageGuardError(XrayReadError):
    """An image refused by a guard; ``reason`` is ``blank_image``, ``wrong_body_part`` or ``wrong_view``."""

    def __init__(self, name: str, reason: str, detail: str) -> None:
        super().__init__(f"{name}: {reason}: {detail}")
        self.reason = reason
        self.detail = detail


def _meta(img: Any) -> Mapping[str, Any]:
    meta = getattr(img, "meta", None)
    return meta if isinstance(meta, Mapping) else {}


class XrayGuard(Transform):
    """Check a loaded radiograph (see the module docstring); returns it unchanged or raises.

    Args:
        task: ``"hip"``, ``"knee"`` or ``None`` (no body part / view check).
        body_parts: accepted BodyPartExamined values (list or comma-separated text; default: the task's).
        views: accepted ViewPosition values (default ``AP``, ``PA``).
        blank: check for blank / degenerate images.
        bilateral: ``task="knee"``: warn about bilateral knee images.

    Raises:
        ImageGuardError: naming the file and the reason.
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(
        self,
        task: str | None = None,
        body_parts: str | Sequence[str] | None = None,
        views: str | Sequence[str] | None = None,
        blank: bool = True,
        bilateral: bool = True,
    ) -> None:
        if task is not None:
            check_body_part_view(task, None, None)  # validates the task
        self.task = task
        self.body_parts = parse_tag_list(body_parts)
        self.views = parse_tag_list(views)
        self.blank = bool(blank)
        self.bilateral = bool(bilateral)

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        meta = _meta(img)
        name = str(meta.get("filename_or_obj", "") or "<image>")
        if self.task is not None:
            findings = check_body_part_view(
                self.task, meta.get("BodyPartExamined"), meta.get("ViewPosition"), self.body_parts, self.views
            )
            for f in findings:
                if f.reason is not None:
                    raise ImageGuardError(name, f.reason, f.detail)
            if findings and meta.get("format") == "dicom":
                logger.debug("%s: %s", name, "; ".join(f.detail for f in findings))
        if not self.blank and not (self.bilateral and checks_bilateral(self.task)):
            return img
        arr = np.asarray(img.detach().cpu().numpy() if hasattr(img, "detach") else img)
        if self.blank:
            problem = blank_image_problem(arr, meta.get("BitsStored"), meta.get("RescaleSlope"))
            if problem:
                raise ImageGuardError(name, "blank_image", problem)
        if self.bilateral and checks_bilateral(self.task):
            mono1 = str(meta.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1"
            if is_bilateral(arr, monochrome1=mono1):
                logger.warning(
                    "%s looks like a bilateral knee image (both knees side by side, score %.2f); predicted as one "
                    "study -- index it with `monai-bone index --task knee --bilateral split` for one study per knee",
                    name,
                    bilateral_score(arr, monochrome1=mono1),
                )
        return img


class XrayGuardd(MapTransform):
    """Dictionary-based wrapper of :class:`XrayGuard` (same arguments, plus ``keys`` and ``allow_missing_keys``)."""

    backend = XrayGuard.backend

    def __init__(
        self,
        keys: KeysCollection,
        task: str | None = None,
        body_parts: str | Sequence[str] | None = None,
        views: str | Sequence[str] | None = None,
        blank: bool = True,
        bilateral: bool = True,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.guard = XrayGuard(task=task, body_parts=body_parts, views=views, blank=blank, bilateral=bilateral)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.guard(d[key])
        return d


XrayGuardD = XrayGuardDict = XrayGuardd
