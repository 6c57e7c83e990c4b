"""monai_bone.transforms: X-ray loading and normalisation, clinical vector (array and dictionary versions)."""

from __future__ import annotations

from monai_bone.data.xray_reader import XrayReadError  # what LoadXray raises (the reader is in monai_bone.data)
from monai_bone.transforms.array import ClinicalVector, LoadXray, XrayNormalise
from monai_bone.transforms.clinical_fit import fit_clinical_stats, load_clinical_stats
from monai_bone.transforms.clinical_stats import STATS_FORMAT, ClinicalStats, check_fields, encode_field
from monai_bone.transforms.dictionary import (
    ClinicalVectorD,
    ClinicalVectord,
    ClinicalVectorDict,
    LoadXrayD,
    LoadXrayd,
    LoadXrayDict,
    SafeXrayD,
    SafeXrayd,
    SafeXrayDict,
    XrayNormaliseD,
    XrayNormalised,
    XrayNormaliseDict,
)
from monai_bone.transforms.guards import ImageGuardError, XrayGuard, XrayGuardD, XrayGuardd, XrayGuardDict

__all__ = [
    "STATS_FORMAT",
    "ClinicalStats",
    "ClinicalVector",
    "ClinicalVectorD",
    "ClinicalVectorDict",
    "ClinicalVectord",
    "ImageGuardError",
    "LoadXray",
    "LoadXrayD",
    "LoadXrayDict",
    "LoadXrayd",
    "SafeXrayD",
    "SafeXrayDict",
    "SafeXrayd",
    "XrayNormalise",
    "XrayNormaliseD",
    "XrayNormaliseDict",
    "XrayNormalised",
    "XrayGuard",
    "XrayGuardD",
    "XrayGuardDict",
    "XrayGuardd",
    "XrayReadError",
    "check_fields",
    "encode_field",
    "fit_clinical_stats",
    "load_clinical_stats",
]
