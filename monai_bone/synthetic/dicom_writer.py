"""Write single-frame DX (Digital X-Ray, For Presentation) DICOM files with pydicom.

Used by the synthetic cohort (:mod:`monai_bone.synthetic.synth`) and by tests that need real DICOM files with a known
pixel content (for example the MONOCHROME1 / MONOCHROME2 equivalence of the X-ray normaliser).

Pixel convention of :func:`write_dx` (the one thing callers must know):

* ``pixels`` is always given in the **MONOCHROME2 convention** -- high value = high attenuation = bone bright --
  as unsigned integers in ``[0, 2**bits_stored - 1]``.
* For ``photometric="MONOCHROME2"`` the stored values are ``pixels``.
  For ``photometric="MONOCHROME1"`` the stored values are ``(2**bits_stored - 1) - pixels``, so a viewer that honours
  MONOCHROME1 (minimum = white) displays the same picture, and ``stored_MONO1 + stored_MONO2 == 2**bits_stored - 1``
  element-wise for the same ``pixels``.
* The modality LUT is ``modality = stored * RescaleSlope + RescaleIntercept`` (slope must be positive). With the default
  identity rescale (slope 1, intercept 0, ``RescaleType`` "US", as the DX IOD requires) the modality values of a
  MONOCHROME2 file equal ``pixels``; the modality values of a MONOCHROME1 file equal the stored (inverted) values.
  A non-identity ``rescale`` (as CR files carry) is supported for tests; it leaves the stored values unchanged.
* ``window`` is given in the units of ``pixels`` (MONOCHROME2 convention, before rescale); the writer converts it to
  the file's modality units: WindowCenter = ``c'`` * slope + intercept with ``c' = c`` (MONOCHROME2) or
  ``c' = 2**bits_stored - 1 - c`` (MONOCHROME1), WindowWidth = ``w`` * slope. The same ``window`` therefore selects
  the same tissue in both photometric variants of one image. A DX "For Presentation" image must carry a VOI
  transform (PS3.3 C.8.11.3): without ``window`` the writer uses the 1st-99th percentile of the pixels.
* ``voi_lut`` (optional) is a VOI LUT Sequence item given as a table over the ``pixels`` range (MONOCHROME2
  convention, ``2**bits_stored`` entries, output 16-bit); for MONOCHROME1 the table is reversed and its output
  inverted (``65535 - table[max - stored]``) so that both variants display the same picture.

The files pass ``dciodvfy`` (dicom3tools) without errors: besides the DX modules' attributes the writer fills
AcquisitionContextSequence (empty, type 2), PositionerType (``NONE``), DetectorType, the VOI window and
BurnedInAnnotation (``YES`` when ``burned_in``).

Every file is written atomically (:func:`monai_bone.utils.io.atomic_write_bytes`) as explicit VR little endian with a
file meta header (Part 10), SOP Class "Digital X-Ray Image Storage - For Presentation". UIDs are derived
deterministically from ``uid_seed`` and ``patient_id`` (``pydicom.uid.generate_uid(entropy_srcs=...)``) and dates are
fixed, so the same inputs give byte-identical files. PatientName and PatientBirthDate are always empty.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import DigitalXRayImageStorageForPresentation, ExplicitVRLittleEndian, generate_uid

from monai_bone._version import __version__
from monai_bone.constants import SYNTHETIC_NOTE
from monai_bone.synthetic.dx_checks import PHOTOMETRIC_VALUES, check_dx_pixels, check_dx_values, dicom_age
from monai_bone.utils.io import atomic_write_bytes

__all__ = ["ANATOMIC_REGION_CODES", "DEFAULT_DATE", "PHOTOMETRIC_VALUES", "dicom_age", "dx_uids", "write_dx"]

logger = logging.getLogger(__name__)


#: Fixed study/content date written to every file (no wall clock: outputs must be reproducible).
DEFAULT_DATE: str = "20000101"
_DEFAULT_TIME = "120000"

#: SNOMED CT codes for AnatomicRegionSequence, by BodyPartExamined.
ANATOMIC_REGION_CODES: dict[str, tuple[str, str]] = {
    "HIP": ("24136001", "Hip joint"),
    "KNEE": ("72696002", "Knee"),
    "PELVIS": ("12921003", "Pelvis"),
    "FEMUR": ("71341001", "Femur"),
}


def dx_uids(patient_id: str, uid_seed: str | int = "monai-bone") -> dict[str, str]:
    """Deterministic Study/Series/SOP Instance UIDs for one patient's single DX image.

    Args:
        patient_id: patient identifier (part of the entropy).
        uid_seed: any string or integer that distinguishes cohorts (e.g. ``"synth-hip-seed0"``).

    Returns:
        ``{"StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"}``.
    """
    base = [str(uid_seed), str(patient_id)]
    return {
        "StudyInstanceUID": str(generate_uid(entropy_srcs=[*base, "study"])),
        "SeriesInstanceUID": str(generate_uid(entropy_srcs=[*base, "series"])),
        "SOPInstanceUID": str(generate_uid(entropy_srcs=[*base, "instance"])),
    }


_AP_VIEW_CODE = ("399348003", "SCT", "antero-posterior")


def _voi_lut_item(table: np.ndarray, photometric: str) -> Dataset:
    """VOI LUT Sequence item from a table over the MONOCHROME2 pixel range (module docstring for MONOCHROME1)."""
    data = np.asarray(table, dtype="<u2")
    if photometric == "MONOCHROME1":  # stored = max - pixel, and MONOCHROME1 shows a low VOI output as white
        data = (65535 - data[::-1].astype(np.int64)).astype("<u2")
    item = Dataset()
    item.LUTDescriptor = [len(data) % 65536, 0, 16]
    item.LUTExplanation = "monai-bone processing curve"
    item.LUTData = np.ascontiguousarray(data).tobytes()
    item["LUTData"].VR = "OW"
    return item


def _ds(value: float, digits: int = 6) -> str:
    """Format a float as a DICOM DS string (at most 16 characters)."""
    text = f"{float(value):.{digits}g}"
    if len(text) > 16:
        text = f"{float(value):.6e}"
    return text


def _sop_common(uids: Mapping[str, str], study_date: str) -> Dataset:
    """A new dataset with the Part 10 file meta and the SOP common module."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = DigitalXRayImageStorageForPresentation
    meta.MediaStorageSOPInstanceUID = uids["SOPInstanceUID"]
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = DigitalXRayImageStorageForPresentation
    ds.SOPInstanceUID = uids["SOPInstanceUID"]
    ds.InstanceCreationDate = study_date
    ds.InstanceCreationTime = _DEFAULT_TIME
    return ds


def _study_series_equipment(
    ds: Dataset, uids: Mapping[str, str], study_date: str, body_part: str, synthetic: bool
) -> None:
    ds.StudyInstanceUID = uids["StudyInstanceUID"]
    ds.StudyDate = study_date
    ds.StudyTime = _DEFAULT_TIME
    ds.ReferringPhysicianName = ""
    ds.StudyID = "1"
    ds.AccessionNumber = ""
    ds.StudyDescription = f"{body_part} AP" + (" (SYNTHETIC)" if synthetic else "")
    ds.Modality = "DX"
    ds.SeriesInstanceUID = uids["SeriesInstanceUID"]
    ds.SeriesNumber = 1
    ds.SeriesDate = study_date
    ds.SeriesTime = _DEFAULT_TIME
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.Manufacturer = "monai-bone synthetic phantom" if synthetic else ""
    ds.ManufacturerModelName = "monai-bone phantom" if synthetic else ""
    ds.SoftwareVersions = f"monai-bone {__version__}"


def _general_image(
    ds: Dataset,
    study_date: str,
    synthetic: bool,
    laterality: str | None,
    burned_in: bool,
    photometric: str,
    rescale: tuple[float, float] | None,
) -> None:
    """General image and DX image modules (without the VOI window)."""
    ds.InstanceNumber = 1
    ds.ContentDate = study_date
    ds.ContentTime = _DEFAULT_TIME
    ds.AcquisitionDate = study_date
    ds.AcquisitionTime = _DEFAULT_TIME
    ds.ImageType = ["DERIVED", "PRIMARY"] if synthetic else ["ORIGINAL", "PRIMARY"]
    ds.PatientOrientation = ["L", "F"] if laterality not in ("L", "B") else ["R", "F"]
    ds.BurnedInAnnotation = "YES" if burned_in else "NO"
    ds.LossyImageCompression = "00"
    ds.CalibrationImage = "NO"
    if synthetic:
        ds.ImageComments = SYNTHETIC_NOTE
    ds.PixelIntensityRelationship = "LOG"
    # +1: higher stored value = more X-ray intensity reaching the detector (dark in MONOCHROME2 terms).
    ds.PixelIntensityRelationshipSign = 1 if photometric == "MONOCHROME1" else -1
    if rescale is not None:
        ds.RescaleIntercept = _ds(rescale[1])
        ds.RescaleSlope = _ds(rescale[0])
        ds.RescaleType = "US"
    ds.PresentationLUTShape = "INVERSE" if photometric == "MONOCHROME1" else "IDENTITY"


def _voi(
    ds: Dataset,
    arr: np.ndarray,
    window: tuple[float, float] | None,
    rescale: tuple[float, float] | None,
    photometric: str,
    max_value: int,
    voi_function: str,
    voi_lut: np.ndarray | None,
) -> None:
    """The VOI window (in the file's stored and rescaled values, module docstring) and the optional VOI LUT."""
    if window is None:
        w_lo, w_hi = np.percentile(arr[:: max(1, arr.shape[0] // 256), :: max(1, arr.shape[1] // 256)], [1.0, 99.0])
        window = ((float(w_lo) + float(w_hi)) / 2.0, max(float(w_hi) - float(w_lo), 1.0))
    slope, intercept = (1.0, 0.0) if rescale is None else (float(rescale[0]), float(rescale[1]))
    center = float(window[0]) if photometric == "MONOCHROME2" else max_value - float(window[0])
    ds.WindowCenter = _ds(center * slope + intercept)
    ds.WindowWidth = _ds(float(window[1]) * slope)
    ds.WindowCenterWidthExplanation = "DEFAULT"
    ds.VOILUTFunction = voi_function
    if voi_lut is not None:
        ds.VOILUTSequence = DicomSequence([_voi_lut_item(np.asarray(voi_lut), photometric)])


def _anatomy_detector(
    ds: Dataset, body_part: str, laterality: str | None, spacing: Sequence[float], synthetic: bool
) -> None:
    """Anatomy, view, positioning and detector attributes."""
    ds.BodyPartExamined = body_part
    ds.ViewPosition = "AP"
    view = Dataset()
    view.CodeValue, view.CodingSchemeDesignator, view.CodeMeaning = _AP_VIEW_CODE
    view.ViewModifierCodeSequence = DicomSequence([])
    ds.ViewCodeSequence = DicomSequence([view])
    ds.ImageLaterality = laterality or "U"
    if body_part in ANATOMIC_REGION_CODES:
        code, meaning = ANATOMIC_REGION_CODES[body_part]
        item = Dataset()
        item.CodeValue = code
        item.CodingSchemeDesignator = "SCT"
        item.CodeMeaning = meaning
        ds.AnatomicRegionSequence = DicomSequence([item])
    ds.PixelSpacing = [_ds(s) for s in spacing]
    ds.ImagerPixelSpacing = [_ds(s) for s in spacing]
    ds.DetectorType = "SCINTILLATOR" if synthetic else ""
    ds.PositionerType = "NONE"
    ds.AcquisitionContextSequence = DicomSequence([])


def write_dx(
    path: str | os.PathLike,
    pixels: np.ndarray,
    *,
    patient_id: str,
    body_part: str,
    sex: str | None = None,
    age_years: float | None = None,
    height_m: float | None = None,
    weight_kg: float | None = None,
    photometric: str = "MONOCHROME2",
    bits_stored: int = 12,
    pixel_spacing_mm: Sequence[float] = (0.15, 0.15),
    uid_seed: str | int = "monai-bone",
    laterality: str | None = None,
    rescale: tuple[float, float] | None = (1.0, 0.0),
    window: tuple[float, float] | None = None,
    voi_function: str = "LINEAR",
    voi_lut: np.ndarray | None = None,
    burned_in: bool = False,
    study_date: str = DEFAULT_DATE,
    synthetic: bool = True,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write one single-frame DX "For Presentation" DICOM file (explicit VR little endian, Part 10 file meta).

    Args:
        path: destination ``.dcm`` file; parent folders are created; written atomically.
        pixels: 2-D array ``(rows, cols)`` in the **MONOCHROME2 convention** (bone bright), unsigned integer values in
            ``[0, 2**bits_stored - 1]`` (any integer dtype or an integral float array).
        patient_id: PatientID (never a name; PatientName and PatientBirthDate are written empty).
        body_part: BodyPartExamined, e.g. ``"HIP"`` or ``"KNEE"`` (upper-cased).
        sex: PatientSex ``"F"``, ``"M"`` or ``"O"``; ``None`` writes the tag empty (unknown).
        age_years: PatientAge in years, written as completed years ``"075Y"``; ``None`` writes it empty.
        height_m: PatientSize in metres; ``None`` omits the value (tag empty).
        weight_kg: PatientWeight in kg; ``None`` omits the value (tag empty).
        photometric: ``"MONOCHROME2"`` (stored = ``pixels``) or ``"MONOCHROME1"``
            (stored = ``2**bits_stored - 1 - pixels``; PresentationLUTShape ``"INVERSE"``).
        bits_stored: BitsStored, 8 to 16 (BitsAllocated is always 16, HighBit = BitsStored - 1, unsigned).
        pixel_spacing_mm: (row spacing, column spacing) in mm, written as PixelSpacing and ImagerPixelSpacing.
        uid_seed: entropy for the deterministic UIDs (:func:`dx_uids`); give each cohort its own seed.
        laterality: ImageLaterality ``"R"``, ``"L"``, ``"B"`` (both, a bilateral image) or ``None`` (written ``"U"``).
        rescale: ``(RescaleSlope, RescaleIntercept)`` with a positive slope, written with RescaleType ``"US"``;
            ``None`` omits the three tags. Stored values do not depend on it.
        window: optional ``(center, width)`` in ``pixels`` units (MONOCHROME2 convention), converted to the file's
            WindowCenter/WindowWidth as described in the module docstring; default: the 1st-99th percentile window.
        voi_function: VOILUTFunction of the window, ``"LINEAR"``, ``"LINEAR_EXACT"`` or ``"SIGMOID"``.
        voi_lut: optional VOI LUT table (module docstring), written as VOILUTSequence beside the window.
        burned_in: the pixels hold burned-in text or markers (BurnedInAnnotation ``YES``).
        study_date: StudyDate/ContentDate (``YYYYMMDD``), fixed for reproducibility.
        synthetic: write :data:`~monai_bone.constants.SYNTHETIC_NOTE` into ImageComments and mark the equipment as
            the monai-bone phantom. Set ``False`` only for files that are not synthetic images.
        extra: further ``{DICOM keyword: value}`` elements to set last (e.g. ``{"KVP": "70"}``).

    Returns:
        The path written.

    Raises:
        ValueError: naming ``path`` when the pixels, a tag value or an ``extra`` keyword is invalid.
    """
    path = Path(path)
    where = f"cannot write DX file {path}"
    arr = np.asarray(pixels)
    bits_stored = check_dx_pixels(arr, bits_stored, where)
    max_value = (1 << bits_stored) - 1
    photometric, voi_function, spacing, age_text, body_part = check_dx_values(
        where,
        photometric=photometric,
        sex=sex,
        laterality=laterality,
        pixel_spacing_mm=pixel_spacing_mm,
        rescale=rescale,
        window=window,
        voi_function=voi_function,
        voi_lut=voi_lut,
        bits_stored=bits_stored,
        height_m=height_m,
        weight_kg=weight_kg,
        age_years=age_years,
        body_part=body_part,
    )
    uids = dx_uids(patient_id, uid_seed)
    ds = _sop_common(uids, study_date)
    # patient (no names, no birth date)
    ds.PatientName = ""
    ds.PatientID = str(patient_id)
    ds.PatientBirthDate = ""
    ds.PatientSex = sex or ""
    ds.PatientAge = age_text
    ds.PatientSize = _ds(height_m, 4) if height_m is not None else None
    ds.PatientWeight = _ds(weight_kg, 5) if weight_kg is not None else None
    _study_series_equipment(ds, uids, study_date, body_part, synthetic)
    _general_image(ds, study_date, synthetic, laterality, burned_in, photometric, rescale)
    _voi(ds, arr, window, rescale, photometric, max_value, voi_function, voi_lut)
    _anatomy_detector(ds, body_part, laterality, spacing, synthetic)
    # image pixel
    stored = (
        arr.astype(np.uint16) if photometric == "MONOCHROME2" else (max_value - arr.astype(np.int64)).astype(np.uint16)
    )
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.Rows, ds.Columns = int(arr.shape[0]), int(arr.shape[1])
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 0
    ds.PixelData = np.ascontiguousarray(stored, dtype="<u2").tobytes()
    ds["PixelData"].VR = "OW"

    for keyword, value in (extra or {}).items():
        if tag_for_keyword(keyword) is None:
            raise ValueError(f"{where}: extra keyword {keyword!r} is not a DICOM keyword")
        setattr(ds, keyword, value)

    buf = io.BytesIO()
    try:
        pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    except (ValueError, TypeError, OverflowError) as err:
        raise ValueError(f"{where}: {err}") from err
    atomic_write_bytes(path, buf.getvalue())
    logger.debug("wrote %s (%s, %d-bit, %dx%d)", path, photometric, bits_stored, arr.shape[0], arr.shape[1])
    return path
