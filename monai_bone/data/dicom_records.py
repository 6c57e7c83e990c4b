"""What the index's header read returns or raises: :class:`DicomHeader`, :class:`FieldWarning` (one row of
``warnings.csv``) and :class:`RejectError` with the reason codes of ``rejects.csv`` (:data:`REJECT_REASONS`).

A module of its own so that the header read (:mod:`monai_bone.data.dicom_header`) and the pixel checks
(:mod:`monai_bone.data.dicom_pixels`) both import it, and neither imports the other's types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monai_bone.data.image_guards import GUARD_REASONS

__all__ = ["REJECT_REASONS", "DicomHeader", "FieldWarning", "RejectError"]

#: Reject reason codes written to ``rejects.csv`` and what each one means.
REJECT_REASONS: dict[str, str] = {
    "unreadable": "the file exists but could not be read or parsed (I/O error, corrupt header)",
    "not_dicom": "not a DICOM Part 10 file (text, PNG, DICOM without the 'DICM' file meta header, empty file)",
    "not_image": "not a PNG/JPEG image (image-folder sources)",
    "not_xray": "a DICOM object that is not a plain radiograph (CT, MR, SR, RT, DICOMDIR, ...); the detail names it",
    "unsupported_image": "a radiograph the loader cannot use (colour, multi-frame, float pixel data, no Rows/Columns)",
    "image_size": "Rows/Columns outside the size rule (each side 8..16384 px, at most 50 megapixels); never decoded",
    "no_pixel_data": "no PixelData element, or PixelData declared longer than the file (truncated) or too short",
    "undecodable": "compressed transfer syntax without an available pydicom decoder; the detail names the plugin",
    "duplicate_sop_uid": "same SOPInstanceUID as a file already indexed (the first one is used)",
    "no_clinical_row": "clinical CSV(s) given but no row for this file's key (default PatientID)",
    "missing_label": "labelled source (bmd/label column or class folders) but no usable label for this file",
    **GUARD_REASONS,
    "conflicting_duplicate": "the same (or a near-duplicate) image as another file but with a different label",
}


class RejectError(ValueError):
    """A file that the index cannot use.

    Args:
        reason: one of :data:`REJECT_REASONS`.
        detail: human-readable explanation naming the problem (never a patient name or birth date).

    Raises:
        ValueError: when ``reason`` is not a known reason code.
    """

    def __init__(self, reason: str, detail: str) -> None:
        if reason not in REJECT_REASONS:
            raise ValueError(f"unknown reject reason {reason!r}; expected one of {sorted(REJECT_REASONS)}")
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class FieldWarning:
    """A field-level correction or disagreement, one row of ``warnings.csv``.

    Attributes:
        field: clinical field (``age_xray``, ``height``, ``bmd``, ``label``, ...) or a header attribute.
        code: ``unparseable``, ``implausible``, ``unit_converted``, ``conflict``, ``disagreement``, ``derived``,
            ``unknown_code``, ``skipped`` (a clinical CSV line) or ``note``.
        original: the value as found (string or number).
        corrected: the value used instead (``None`` = set to null).
        detail: human-readable explanation.
        source: where the value came from (``"dicom"``, ``"csv:<file>:<line>"``, ``"folder"``, ``"derived"``).
    """

    field: str
    code: str
    original: Any
    corrected: Any
    detail: str
    source: str = ""


@dataclass
class DicomHeader:
    """What the index needs from one DICOM header (no pixel data, no patient names or birth dates).

    Attributes:
        path: the file.
        patient_id, study_instance_uid, series_instance_uid, sop_instance_uid: identifiers (``None`` when absent).
        modality: ``DX``, ``CR`` or ``RG``.
        sop_class_uid: SOP class UID (``None`` when absent).
        presentation_intent: ``FOR PRESENTATION``, ``FOR PROCESSING`` or ``None``.
        body_part: BodyPartExamined (upper case) or ``None``.
        view_position: ViewPosition (upper case, e.g. ``AP``, ``LL``) or ``None``.
        photometric: ``MONOCHROME1`` or ``MONOCHROME2``.
        transfer_syntax: transfer syntax UID.
        rows, columns, bits_stored: image geometry.
        synthetic: ImageComments contains :data:`~monai_bone.constants.SYNTHETIC_NOTE`.
        clinical: ``{"age_xray": years | None, "sex": "F"/"M" | None, "height": as stored (m) | None,
            "weight": kg | None}`` -- raw header values; unit fixes and plausibility checks are the index's job.
        keys: values of the extra keywords asked for (e.g. the join key), ``None`` when absent.
        warnings: problems found while parsing header fields (unparseable age, unknown sex code, ...).
        pixel_hash: perceptual hash of the pixels (:mod:`monai_bone.data.duplicates`) when asked for, else ``None``.
    """

    path: Path
    patient_id: str | None
    study_instance_uid: str | None
    series_instance_uid: str | None
    sop_instance_uid: str | None
    modality: str
    sop_class_uid: str | None
    presentation_intent: str | None
    body_part: str | None
    photometric: str
    transfer_syntax: str
    rows: int
    columns: int
    bits_stored: int | None
    synthetic: bool
    clinical: dict[str, Any] = field(default_factory=dict)
    keys: dict[str, str | None] = field(default_factory=dict)
    warnings: list[FieldWarning] = field(default_factory=list)
    view_position: str | None = None
    pixel_hash: Any = None
