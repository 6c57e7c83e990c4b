"""Clinical records: one record's clinical fields and label from a clinical CSV row and the image header.

The index (:func:`monai_bone.data.datalist.build_datalist`) and the MONAI Label request parser
(:func:`monai_bone.label.request.study_input`) both call :func:`merge_clinical`, so a served study gets exactly the
record an index of the same file would give.

Rules: the CSV (or request) value wins over the DICOM header where both are present and a disagreement beyond
:data:`AGREEMENT_TOLERANCE` is recorded; a height above 3 is taken as centimetres (converted, with a warning); a value
outside :data:`~monai_bone.constants.PLAUSIBLE_RANGES` is set to null with a warning; ``bmi`` is derived from height
and weight when missing. Labels: ``bmd`` from the CSV (:func:`bmd_label`, plausible range :data:`PLAUSIBLE_BMD`);
knee ``label`` from the CSV column or the class folder (:func:`find_label`; the CSV wins).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from monai_bone.constants import CLINICAL_FIELDS, DICOM_FIELDS, KNEE_LABELS_BINARY, KNEE_LABELS_THREE, PLAUSIBLE_RANGES
from monai_bone.data.clinical_csv import ClinicalTable
from monai_bone.data.dicom_records import FieldWarning
from monai_bone.data.sources import ImageSource, SourceImage

__all__ = [
    "AGREEMENT_TOLERANCE",
    "PLAUSIBLE_BMD",
    "bmd_label",
    "find_label",
    "label_set",
    "merge_clinical",
    "resolve_label",
]

#: Plausible areal BMD in g/cm² (DXA femoral neck values lie well inside); outside → null with a warning.
PLAUSIBLE_BMD: tuple[float, float] = (0.1, 2.5)

#: How far header and CSV values may differ before a disagreement is recorded.
AGREEMENT_TOLERANCE: dict[str, float] = {"age_xray": 1.0, "height": 0.02, "weight": 1.0}
_BMI_TOLERANCE = 1.0


def resolve_label(value: Any, labels: Sequence[str]) -> int:
    """Turn a class index or class name into an index into ``labels``.

    Args:
        value: integer (or integral text/float such as ``"1"``/``1.0``) or class name (case-insensitive).
        labels: class names, e.g. :data:`~monai_bone.constants.KNEE_LABELS_BINARY`.

    Returns:
        The class index.

    Raises:
        ValueError: when the value is neither a valid index nor one of the names.
    """
    text = str(value).strip()
    lowered = [name.lower() for name in labels]
    if text.lower() in lowered:
        return lowered.index(text.lower())
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"label {text!r} is not a class index or one of {list(labels)}") from None
    if not number.is_integer() or not 0 <= number < len(labels):
        raise ValueError(f"label {text!r} is not a class index in [0, {len(labels) - 1}] ({list(labels)})")
    return int(number)


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    return value


def _check_value(name: str, value: Any, source: str, out: list[FieldWarning]) -> Any:
    """Unit fix (height in cm) and plausibility check of one clinical value; returns the value to use."""
    if value is None or name not in PLAUSIBLE_RANGES:
        return value
    value = float(value)
    if name == "height" and value > 3.0:
        metres = value / 100.0
        out.append(
            FieldWarning(name, "unit_converted", _fmt(value), _fmt(metres), f"height {value:g} > 3 taken as cm", source)
        )
        value = metres
    lo, hi = PLAUSIBLE_RANGES[name]
    if not lo <= value <= hi:
        detail = f"{name} {value:g} outside [{lo:g}, {hi:g}]; set to null"
        out.append(FieldWarning(name, "implausible", _fmt(value), None, detail, source))
        return None
    return value


def _agree(name: str, a: Any, b: Any) -> bool:
    if name in AGREEMENT_TOLERANCE:
        return abs(float(a) - float(b)) <= AGREEMENT_TOLERANCE[name]
    return a == b


def merge_clinical(
    img: SourceImage, row: dict[str, Any] | None, csv_source: str, out: list[FieldWarning]
) -> dict[str, Any]:
    """Clinical fields of one record: CSV first, DICOM header as fallback, BMI derived when missing.

    The index calls it for every image; the MONAI Label app calls it with the request's clinical values as ``row``,
    so a served study gets exactly the record an index of the same file would give.

    Args:
        img: the image as read by its source (its ``clinical`` holds the header's fields).
        row: typed values given for this image (a clinical CSV row, a request), or ``None``.
        csv_source: where ``row`` came from, written into warnings (``"csv:<file>"``, ``"request"``).
        out: list receiving the unit fixes, implausible values, disagreements and derivations found.

    Returns:
        Every field of :data:`~monai_bone.constants.CLINICAL_FIELDS` (``None`` where missing).
    """
    values: dict[str, Any] = {}
    for name in CLINICAL_FIELDS:
        csv_value = _check_value(name, row.get(name) if row else None, csv_source, out)
        header_value = _check_value(name, img.clinical.get(name), "dicom", out) if name in DICOM_FIELDS else None
        if csv_value is not None and header_value is not None and not _agree(name, csv_value, header_value):
            out.append(
                FieldWarning(
                    name,
                    "disagreement",
                    _fmt(header_value),
                    _fmt(csv_value),
                    f"DICOM {DICOM_FIELDS[name]} gives {_fmt(header_value)}, clinical CSV gives {_fmt(csv_value)}; "
                    "CSV value used",
                    csv_source,
                )
            )
        values[name] = csv_value if csv_value is not None else header_value
    height, weight, bmi = values["height"], values["weight"], values["bmi"]
    if height is not None and weight is not None:
        computed = weight / height**2
        if bmi is None:
            derived = _check_value("bmi", round(computed, 2), "derived", out)
            if derived is not None:
                detail = "bmi missing; derived as weight / height^2"
                out.append(FieldWarning("bmi", "derived", None, derived, detail, "derived"))
            values["bmi"] = derived
        elif abs(bmi - computed) > _BMI_TOLERANCE:
            out.append(
                FieldWarning(
                    "bmi",
                    "disagreement",
                    _fmt(computed),
                    _fmt(bmi),
                    f"bmi {bmi:g} differs from weight / height^2 = {computed:.2f}; given bmi kept",
                    csv_source,
                )
            )
    return values


def label_set(table: ClinicalTable | None, src: ImageSource) -> tuple[str, ...]:
    """Binary unless an ``osteopenia`` folder exists or a CSV label is ``osteopenia`` / ``2``."""
    three = src.labels == KNEE_LABELS_THREE
    if table is not None and table.has_column("label"):
        for row in table.rows.values():
            value = row.get("label")
            if value is not None and str(value).strip().lower() in ("osteopenia", "2", "2.0"):
                three = True
                break
    return KNEE_LABELS_THREE if three else KNEE_LABELS_BINARY


def find_label(
    img: SourceImage,
    row: dict[str, Any] | None,
    labels: tuple[str, ...],
    csv_source: str,
    out: list[FieldWarning],
) -> tuple[int | None, str]:
    """Knee class of a record: CSV ``label`` first, class folder as fallback; returns ``(index, why-missing)``."""
    csv_label, folder_label, why = None, None, ""
    raw = row.get("label") if row else None
    if raw is not None:
        try:
            csv_label = resolve_label(raw, labels)
        except ValueError as err:
            out.append(FieldWarning("label", "unparseable", raw, None, f"{err}; set to null", csv_source))
            why = f"CSV label {raw!r} is not valid ({err})"
    if img.class_name is not None:
        try:
            folder_label = resolve_label(img.class_name, labels)
        except ValueError as err:
            why = why or f"class folder {img.class_name!r} is not in the label set ({err})"
    if csv_label is not None and folder_label is not None and csv_label != folder_label:
        out.append(
            FieldWarning(
                "label",
                "disagreement",
                labels[folder_label],
                labels[csv_label],
                f"class folder says {labels[folder_label]!r}, clinical CSV says {labels[csv_label]!r}; CSV value used",
                csv_source,
            )
        )
    label = csv_label if csv_label is not None else folder_label
    if label is None and not why:
        if row is not None and "label" in row:
            why = "the clinical CSV row has no (or a conflicting) 'label' value"
        elif img.class_name is None and img.modality is None:
            why = f"file is not inside a class folder ({', '.join(labels)})"
        else:
            why = "no 'label' value"
    return label, why


def bmd_label(row: dict[str, Any] | None, csv_source: str, out: list[FieldWarning]) -> tuple[float | None, str]:
    """Hip label of a record: the CSV ``bmd`` when plausible; returns ``(bmd, why-missing)``.

    An implausible value (outside :data:`PLAUSIBLE_BMD`) is set to null with a warning appended to ``out``.
    """
    bmd = row.get("bmd") if row else None
    if bmd is not None and not PLAUSIBLE_BMD[0] <= bmd <= PLAUSIBLE_BMD[1]:
        detail = f"bmd {bmd:g} g/cm^2 outside [{PLAUSIBLE_BMD[0]:g}, {PLAUSIBLE_BMD[1]:g}]; set to null"
        out.append(FieldWarning("bmd", "implausible", _fmt(bmd), None, detail, csv_source))
        return None, f"bmd {bmd:g} g/cm^2 is implausible"
    if bmd is None:
        return None, "the clinical CSV row has no (or a conflicting) 'bmd' value" if row else "no 'bmd' value"
    return bmd, ""
