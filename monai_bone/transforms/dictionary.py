"""Dictionary-based wrappers of :mod:`monai_bone.transforms.array`; names end in ``d`` (aliases ``D``/``Dict``).

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

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
from monai.config import DtypeLike, KeysCollection, PathLike
from monai.config.type_definitions import NdarrayOrTensor
from monai.transforms.transform import MapTransform

from monai_bone.constants import CLINICAL_FIELDS
from monai_bone.transforms.array import ClinicalVector, LoadXray, XrayNormalise
from monai_bone.transforms.clinical_stats import ClinicalStats

__all__ = [
    "ClinicalVectorD",
    "ClinicalVectorDict",
    "ClinicalVectord",
    "LoadXrayD",
    "LoadXrayDict",
    "LoadXrayd",
    "XrayNormaliseD",
    "XrayNormaliseDict",
    "XrayNormalised",
]


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


LoadXrayD = LoadXrayDict = LoadXrayd
XrayNormaliseD = XrayNormaliseDict = XrayNormalised
ClinicalVectorD = ClinicalVectorDict = ClinicalVectord
