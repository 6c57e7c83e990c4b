"""Dictionary-based wrappers of :mod:`monai_bone.transforms.array`; names end in ``d`` (aliases ``D``/``Dict``).

Inference wraps the image part of the chain in :class:`SafeXrayd`, so that one unreadable study becomes an error
row instead of stopping the run.

A typical preprocessing chain (all MONAI except the two X-ray transforms and the clinical vector)::

    Compose([
        LoadXrayd("image"),
        XrayNormalised("image", window=None, percentiles=(0.5, 99.5)),
        Resized("image", spatial_size=512, size_mode="longest"),
        SpatialPadd("image", spatial_size=(512, 512)),
        RepeatChanneld("image", repeats=3),          # only for 3-channel backbones
        ClinicalVectord(stats="clinical_stats.json"),
    ])
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.config import DtypeLike, KeysCollection, PathLike
from monai.config.type_definitions import NdarrayOrTensor
from monai.data import MetaTensor
from monai.transforms import Compose
from monai.transforms.transform import MapTransform

from monai_bone.constants import CLINICAL_FIELDS
from monai_bone.data.xray_plain import plain_xray_meta
from monai_bone.transforms.array import ClinicalVector, LoadXray, XrayNormalise
from monai_bone.transforms.clinical_stats import ClinicalStats

__all__ = [
    "ClinicalVectorD",
    "ClinicalVectorDict",
    "ClinicalVectord",
    "LoadXrayD",
    "LoadXrayDict",
    "LoadXrayd",
    "SafeXrayD",
    "SafeXrayDict",
    "SafeXrayd",
    "XrayNormaliseD",
    "XrayNormaliseDict",
    "XrayNormalised",
]

logger = logging.getLogger(__name__)


class LoadXrayd(MapTransform):
    """Dictionary-based wrapper of :class:`monai_bone.transforms.LoadXray`: replaces each path by the loaded image.

    Args:
        keys: keys of the items holding file paths.
        allow_rgb: convert colour images to luminance (with a warning) instead of rejecting them.
        allow_no_preamble: read DICOM files without preamble/file meta with ``force=True`` when that yields an image.
        dtype: output dtype.
        allow_missing_keys: don't raise an exception if a key is missing.

    Raises:
        XrayReadError: (a ``ValueError``) naming the file, see :class:`~monai_bone.transforms.LoadXray`.
    """

    backend = LoadXray.backend

    def __init__(
        self,
        keys: KeysCollection,
        allow_rgb: bool = True,
        allow_no_preamble: bool = True,
        dtype: DtypeLike = np.float32,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.loader = LoadXray(allow_rgb=allow_rgb, allow_no_preamble=allow_no_preamble, dtype=dtype)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.loader(d[key])
        return d


class XrayNormalised(MapTransform):
    """Dictionary-based wrapper of :class:`monai_bone.transforms.XrayNormalise`.

    The photometric interpretation and the VOI window come from each image's MetaTensor meta (as set by
    :class:`LoadXrayd`) unless ``photometric`` / an explicit ``window`` is given.

    Args:
        keys: keys of the images to normalise.
        invert_monochrome1: invert MONOCHROME1 images.
        window: ``None``, ``"voi"`` (the file's WindowCenter/Width) or ``(center, width)``.
        percentiles: ``(lower, upper)`` percentiles mapped to 0 and 1, or ``None`` for min..max.
        photometric: ``"MONOCHROME1"``/``"MONOCHROME2"`` to override the meta, or ``None``.
        max_percentile_pixels: subsample size for the percentile estimate.
        dtype: output dtype.
        allow_missing_keys: don't raise an exception if a key is missing.
    """

    backend = XrayNormalise.backend

    def __init__(
        self,
        keys: KeysCollection,
        invert_monochrome1: bool = True,
        window: str | Sequence[float] | None = None,
        percentiles: Sequence[float] | None = (0.5, 99.5),
        photometric: str | None = None,
        max_percentile_pixels: int = 1_000_000,
        dtype: DtypeLike = np.float32,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.normaliser = XrayNormalise(
            invert_monochrome1=invert_monochrome1,
            photometric=photometric,
            window=window,
            percentiles=percentiles,
            max_percentile_pixels=max_percentile_pixels,
            dtype=dtype,
        )

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.normaliser(d[key])
        return d


class ClinicalVectord(MapTransform):
    """Dictionary-based wrapper of :class:`monai_bone.transforms.ClinicalVector`.

    Reads the clinical ``fields`` of a datalist item (absent keys count as missing) and writes the float32 vector
    ``(F,)`` -- NaN where missing -- to ``output_key`` and the presence mask ``(F,)`` (1 present, 0 missing) to
    ``mask_key``.

    Args:
        fields: clinical fields in vector order.
        stats: :class:`~monai_bone.transforms.ClinicalStats`, a path to its JSON, or ``None`` for no normalisation.
        output_key: key for the vector.
        mask_key: key for the mask; ``None`` writes no mask.
        remove_fields: delete the raw field keys from the output dict (raw ``None`` values do not collate in a
            ``DataLoader``; the vector and mask carry the information).

    Raises:
        ValueError: for unknown fields, or when ``stats`` lacks one of ``fields``.
    """

    backend = ClinicalVector.backend

    def __init__(
        self,
        fields: Sequence[str] = CLINICAL_FIELDS,
        stats: ClinicalStats | PathLike | None = None,
        output_key: str = "clinical",
        mask_key: str | None = "clinical_mask",
        remove_fields: bool = False,
    ) -> None:
        self.vectoriser = ClinicalVector(fields=fields, stats=stats)
        super().__init__(self.vectoriser.fields, allow_missing_keys=True)
        self.output_key = output_key
        self.mask_key = mask_key
        self.remove_fields = remove_fields

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        vector, mask = self.vectoriser(d)
        if self.remove_fields:
            for key in self.vectoriser.fields:
                d.pop(key, None)
        d[self.output_key] = vector
        if self.mask_key is not None:
            d[self.mask_key] = mask
        return d


class SafeXrayd(MapTransform):
    """Run an image chain (load, normalise, resize, ...) on a record; a study that fails gets a placeholder image and
    an error message instead of stopping the whole run.

    Rule: any exception raised by ``transforms`` for one record (unreadable, truncated or undecodable file, absurd
    size, non-finite pixels, ...) is caught; the record's ``keys`` then hold a **zero** placeholder image with exactly
    the shape, dtype and meta keys that a good study gets (made once by running ``transforms[1:]`` on a small
    template, so batches still collate; its ``filename_or_obj`` is the failing file), and ``error_key`` holds a
    one-line message naming the file. Successful records get ``error_key = ""``. Each failure is logged as a warning.
    Downstream, :class:`~monai_bone.handlers.BonePredictionWriter` writes an error row with no prediction for such a
    study (the network runs on the zeros, and its output for that study is discarded).

    Use it in inference only: in training a placeholder would be trained on (the training datasets drop unreadable
    studies instead, see :func:`monai_bone.data.make_dataset`).

    Args:
        keys: keys holding the image paths (and, after the chain, the images).
        transforms: the chain; ``transforms[0]`` must be the loader (path -> image, e.g. :class:`LoadXrayd`), the
            others must accept a loaded ``(1, H, W)`` image.
        error_key: key of the error message.
        template_size: ``(rows, columns)`` of the template that the placeholder is made from.
        allow_missing_keys: don't raise an exception if a key is missing.

    Raises:
        ValueError: when ``transforms`` is empty.
    """

    def __init__(
        self,
        keys: KeysCollection,
        transforms: Sequence[Callable],
        error_key: str = "error",
        template_size: Sequence[int] = (32, 32),
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        transforms = list(transforms)
        if not transforms:
            raise ValueError("SafeXrayd needs at least the loading transform")
        self.chain = Compose(transforms)
        self.after_load = Compose(transforms[1:])
        self.error_key = error_key
        self.template_size = (int(template_size[0]), int(template_size[1]))
        self._placeholders: dict[Hashable, MetaTensor] | None = None

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        try:
            d = dict(self.chain(dict(data)))
        except Exception as err:  # noqa: BLE001 - any per-study failure becomes an error row, by design
            return self._placeholder_record(data, err)
        d[self.error_key] = ""
        return d

    def _placeholder_record(self, data: Mapping[Hashable, Any], err: Exception) -> dict[Hashable, Any]:
        d = dict(data)
        names = [self._name(d.get(key)) for key in self.key_iterator(d)]
        # MONAI's Compose wraps the real error in RuntimeError("applying transform ...") ... from err
        while isinstance(err, RuntimeError) and str(err).startswith("applying transform") and err.__cause__:
            err = err.__cause__
        message = " ".join(str(err).split()) or type(err).__name__
        where = next((n for n in names if n), "<no file name>")
        if where not in message:
            message = f"{where}: {type(err).__name__}: {message}"
        if len(message) > 600:
            message = message[:597] + "..."
        logger.warning("study skipped (error row, no prediction): %s", message)
        placeholders = self._make_placeholders()
        for key, name in zip(self.key_iterator(d), names):
            image = placeholders[key].clone()
            image.meta = {**dict(placeholders[key].meta), "filename_or_obj": name}
            d[key] = image
        d[self.error_key] = message
        return d

    @staticmethod
    def _name(value: Any) -> str:
        if isinstance(value, (str, os.PathLike)):
            return os.fspath(value)
        meta = getattr(value, "meta", None)
        return str(meta.get("filename_or_obj", "")) if isinstance(meta, Mapping) else ""

    def _make_placeholders(self) -> dict[Hashable, MetaTensor]:
        """Zero images shaped like a good study: ``transforms[1:]`` applied to a gradient template (built once)."""
        if self._placeholders is None:
            rows, cols = self.template_size
            # an 8-bit grey ramp: a valid image for every check after the loader (e.g. the blank-image guard)
            ramp = torch.linspace(0.0, 255.0, rows * cols, dtype=torch.float32).reshape(1, rows, cols)
            template = {
                key: MetaTensor(ramp.clone(), meta=plain_xray_meta("", (rows, cols), fmt="placeholder"))
                for key in self.keys
            }
            try:
                out = self.after_load(template)
            except Exception as err:
                raise RuntimeError(
                    f"SafeXrayd: the transforms after the loader fail on a {rows} x {cols} template image "
                    f"({type(err).__name__}: {err}); check the preprocessing chain"
                ) from err
            placeholders = {}
            for key in self.keys:
                image = out[key]
                if not isinstance(image, MetaTensor):
                    image = MetaTensor(torch.as_tensor(image))
                image = image.clone()
                image.zero_()
                image.meta = {**dict(image.meta), "format": "placeholder"}
                placeholders[key] = image
            self._placeholders = placeholders
        return self._placeholders


LoadXrayD = LoadXrayDict = LoadXrayd
SafeXrayD = SafeXrayDict = SafeXrayd
XrayNormaliseD = XrayNormaliseDict = XrayNormalised
ClinicalVectorD = ClinicalVectorDict = ClinicalVectord
