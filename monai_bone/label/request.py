"""What one prediction request brings: the study file and the clinical values given with it.

A MONAI Label request names an image id (a file of the local datastore, or a DICOMweb series that MONAI Label has
retrieved into a folder) and may carry clinical values in its ``params``, either as top-level keys named after
:data:`~monai_bone.constants.CLINICAL_FIELDS` or under ``"clinical"``::

    {"age_bmd": 71, "smoking": "former", "clinical": {"alcohol": 2, "activity": 3.5}}

:func:`study_input` reads the file's header exactly as the index does (so a non-radiograph or a CT is refused with the
index's reason), merges the request values over the header values with
:func:`monai_bone.data.clinical_records.merge_clinical` (the index's own merge: cm heights converted, implausible values
dropped with a warning, BMI derived from height and weight) and records where every field came from.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monai_bone.constants import CLINICAL_FIELDS, DICOM_FIELDS
from monai_bone.data.clinical_csv import parse_clinical_value
from monai_bone.data.clinical_records import merge_clinical
from monai_bone.data.dicom_header import sniff_file_type
from monai_bone.data.dicom_records import RejectError
from monai_bone.data.image_formats import PLAIN_IMAGE_SUFFIXES
from monai_bone.data.sources import DicomFolderSource, ImageFolderSource

__all__ = ["PredictionError", "StudyInput", "clinical_from_request", "error_reason", "find_study_file", "study_input"]

#: A reject reason inside a one-line error message: a snake_case word followed by ``": "`` (``blank_image: ...``).
_REASON_RE = re.compile(r"(?:^|[\s:])([a-z][a-z0-9]*(?:_[a-z0-9]+)+): ")


class PredictionError(ValueError):
    """A request that cannot be served, with the HTTP status that says why.

    Args:
        message: what is wrong, naming the file or field.
        status: HTTP status code (400 bad parameter, 404 unknown model/image, 415 not an image file, 422 an image
            that is not a usable hip/knee radiograph).
        reason: short machine-readable cause (e.g. the index's reject reason ``not_xray``); the server answers it
            beside the message as ``{"detail": ..., "reason": ...}``.
    """

    def __init__(self, message: str, status: int = 422, reason: str | None = None) -> None:
        super().__init__(message)
        self.status = int(status)
        self.reason = reason


@dataclass
class StudyInput:
    """One study ready for the bundle's preprocessing.

    Attributes:
        record: the datalist-style record (``image`` path, ``patient_id``, every clinical field, ``None`` if missing).
        sources: clinical field -> ``"dicom"``, ``"request"`` or ``"derived"`` for the fields that have a value.
        missing: clinical fields without a value (they take the model's missing-field path).
        warnings: unit conversions, dropped implausible values and disagreements, as readable sentences.
        synthetic: the file says it is synthetic.
    """

    record: dict[str, Any]
    sources: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    synthetic: bool = False


def error_reason(message: str, default: str = "unusable_image") -> str:
    """The reject reason named in a load error message (``"a.dcm: RejectError: blank_image: ..."`` -> ``blank_image``).

    Args:
        message: one-line error of the bundle's loader (the ``error`` of an inference row).
        default: the reason when the message names none.
    """
    found = _REASON_RE.search(message or "")
    return found.group(1) if found else default


def clinical_from_request(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Typed clinical values from request parameters (top-level field names, or a ``"clinical"`` mapping).

    Args:
        params: the request (other keys are ignored).

    Returns:
        Field -> value for the fields given with a non-missing value (numbers as float, ``sex`` ``F``/``M``,
        ``smoking`` ``never``/``former``/``current``).

    Raises:
        PredictionError: (400) naming the field when a value does not parse or ``"clinical"`` is not a mapping.
    """
    if not params:
        return {}
    given: dict[str, Any] = {k: v for k, v in params.items() if k in CLINICAL_FIELDS}
    nested = params.get("clinical")
    if nested is not None:
        if not isinstance(nested, Mapping):
            raise PredictionError(f"'clinical' must be an object of field -> value, got {type(nested).__name__}", 400)
        unknown = sorted(str(k) for k in nested if k not in CLINICAL_FIELDS)
        if unknown:
            raise PredictionError(f"unknown clinical field(s) {unknown}; known fields: {list(CLINICAL_FIELDS)}", 400)
        given.update(nested)
    values: dict[str, Any] = {}
    for name, raw in given.items():
        try:
            value = parse_clinical_value(name, raw)
        except ValueError as err:
            raise PredictionError(f"clinical field {name!r}: {err}", 400) from None
        if value is not None:
            values[name] = value
    return values


def find_study_file(path: str | os.PathLike) -> Path:
    """The image file of a request: the file itself, or the first instance of a retrieved series folder.

    Args:
        path: a file, or a folder holding the instances of one DICOMweb series (MONAI Label's cache).

    Returns:
        The file to predict on (for a folder, the first file by name; a DX series normally holds one image).

    Raises:
        PredictionError: 404 when the path does not exist or the folder holds no file, 400 for an empty file.
    """
    p = Path(path)
    if not str(path) or not p.exists():
        raise PredictionError(f"image not found: {path}", 404)
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
        if not files:
            raise PredictionError(f"{p}: the series folder holds no instance", 404)
        p = files[0]
    if p.stat().st_size == 0:
        raise PredictionError(f"{p.name}: the image file is empty", 400, "empty_image")
    return p


def study_input(path: str | os.PathLike, params: Mapping[str, Any] | None = None) -> StudyInput:
    """Read a study's header (index rules) and merge the request's clinical values over it.

    Args:
        path: DICOM file, PNG/JPEG file, or a folder of one DICOM series.
        params: request parameters with optional clinical values (see :func:`clinical_from_request`).

    Returns:
        The :class:`StudyInput`.

    Raises:
        PredictionError: 404 for a missing file, 415 for a file that is neither DICOM nor PNG/JPEG, 422 for a file
            the index rejects (not an X-ray, no pixel data, unsupported image, ...), 400 for a bad clinical value.
    """
    file = find_study_file(path)
    row = clinical_from_request(params)
    try:
        if file.suffix.lower() in PLAIN_IMAGE_SUFFIXES:
            img = ImageFolderSource(file.parent).read(file)
        else:
            img = DicomFolderSource(file.parent).read(file)
    except RejectError as err:
        status = 415 if err.reason in ("not_dicom", "not_image") else 422
        if err.reason == "not_dicom":
            detail = f"not a DICOM file ({sniff_file_type(file)}); send a DX/CR DICOM or a PNG/JPEG radiograph"
        else:
            detail = err.detail
        raise PredictionError(f"{file.name}: {err.reason}: {detail}", status, err.reason) from None
    except OSError as err:
        raise PredictionError(f"{file.name}: cannot read the file ({err})", 422, "unreadable") from None
    found: list = list(img.warnings)
    values = merge_clinical(img, row or None, "request", found)
    dropped = {w.field for w in found if w.source == "request" and w.code == "implausible"}
    sources: dict[str, str] = {}
    for name in CLINICAL_FIELDS:
        if values[name] is None:
            continue
        if name in row and name not in dropped:
            sources[name] = "request"
        elif name in DICOM_FIELDS and img.clinical.get(name) is not None:
            sources[name] = "dicom"
        else:
            sources[name] = "derived"
    record = {"image": str(file), "patient_id": img.patient_id, **values}
    return StudyInput(
        record=record,
        sources=sources,
        missing=[n for n in CLINICAL_FIELDS if values[n] is None],
        warnings=[w.detail for w in found],
        synthetic=bool(img.synthetic),
    )
