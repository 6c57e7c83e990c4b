"""DICOM Comprehensive 3D SR (TID 1500 measurement report) of one monai-bone prediction, built with highdicom.

One SR per source radiograph: same Patient and Study as the source (highdicom copies the source's Patient, Study and
General Study modules, as the DICOM standard requires of an object in that study -- so the SR carries the source's
PatientName and PatientBirthDate), a new Series, the source in the evidence sequence, and one measurement group:

- hip: estimated femoral-neck BMD (UCUM ``g/cm2``), T-score (``{T-score}``), the young-adult reference mean and SD and
  the screening threshold used (``g/cm2``); the WHO category (SNOMED CT normal / osteopenia / osteoporosis) and the
  screening result (positive / negative) as coded qualitative evaluations;
- knee: the predicted class (SNOMED CT) and its probability (UCUM ``1``);
- both: algorithm identification (TID 4019: bundle name, version, ``weights_sha256=...``), whether the input was
  synthetic (yes / no), and comments ("SYNTHETIC ..." and "not a diagnostic device").

With a heat-map region (:func:`monai_bone.results.heatmap.top_region`) the group is a planar ROI group (TID 1410)
whose region outlines the most salient area on the source image, so viewers that show only measurements attached to
a region (OHIF v3) display it; without one, a TID 1501 group referencing the source image.

UIDs are derived from the source SOP Instance UID and the weights hash: running the same model on the same image again
makes the same SR (a PACS replaces it instead of storing a duplicate).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
import pydicom
from highdicom.sr import (
    AlgorithmIdentification,
    CodedConcept,
    DeviceObserverIdentifyingAttributes,
    GraphicTypeValues,
    ImageRegion,
    Measurement,
    MeasurementReport,
    MeasurementsAndQualitativeEvaluations,
    ObservationContext,
    ObserverContext,
    PlanarROIMeasurementsAndQualitativeEvaluations,
    QualitativeEvaluation,
    RelationshipTypeValues,
    SourceImageForMeasurementGroup,
    SourceImageForRegion,
    TextContentItem,
    TrackingIdentifier,
)
from pydicom.uid import generate_uid

from monai_bone.constants import SYNTHETIC_NOTE
from monai_bone.tasks import get_task
from monai_bone.utils.io import atomic_write_stream

from . import codes
from .algorithm import AlgorithmInfo

__all__ = ["SR_SERIES_NUMBER", "build_sr", "derived_uid", "read_sr_values", "write_dataset"]

#: Series number of the SR series (high, so it sorts after the acquisition series).
SR_SERIES_NUMBER: int = 9901
_MANUFACTURER = "monai-bone"


def derived_uid(*parts: str) -> str:
    """A deterministic UID (pydicom's root) from the given strings."""
    return generate_uid(entropy_srcs=[str(p) for p in parts])


def _coded_class(name: str) -> CodedConcept:
    return codes.CLASS_VALUES.get(str(name).lower()) or CodedConcept(str(name)[:16].upper(), codes.SCHEME, str(name))


def _hip_items(row: Mapping[str, Any], reference: Mapping[str, float], alg: AlgorithmIdentification) -> tuple:
    g = codes.G_PER_CM2
    measurements = [
        Measurement(codes.est("BMD-FN-EST"), float(row["bmd"]), g, algorithm_id=alg),
        Measurement(codes.est("T-FN-EST"), float(row["t_score"]), codes.T_SCORE_UNIT, algorithm_id=alg),
        Measurement(codes.est("REF-MEAN"), float(reference["ref_mean"]), g),
        Measurement(codes.est("REF-SD"), float(reference["ref_sd"]), g),
        Measurement(codes.est("SCREEN-THR"), float(reference["screening_threshold"]), g),
    ]
    positive = str(row["screening_positive"]).lower() in ("true", "1")
    qualitative = [
        QualitativeEvaluation(codes.est("WHO-CAT"), _coded_class(row["who_class"])),
        QualitativeEvaluation(codes.SCREENING, codes.screening_value(positive)),
    ]
    return measurements, qualitative


def _knee_items(row: Mapping[str, Any], alg: AlgorithmIdentification) -> tuple:
    measurements = [Measurement(codes.est("KNEE-PROB"), float(row["probability"]), codes.NO_UNITS, algorithm_id=alg)]
    qualitative = [QualitativeEvaluation(codes.KNEE_CLASS, _coded_class(row["class_name"]))]
    return measurements, qualitative


def build_sr(
    source: pydicom.Dataset,
    row: Mapping[str, Any],
    task: str,
    algorithm: AlgorithmInfo,
    synthetic: bool = False,
    reference: Mapping[str, float] | None = None,
    region: np.ndarray | None = None,
) -> hd.sr.Comprehensive3DSR:
    """The SR of one prediction on ``source``.

    Args:
        source: the source radiograph's data set (pixel data not needed: read with ``stop_before_pixels=True``).
        row: the prediction row of :class:`~monai_bone.handlers.BonePredictionWriter` (hip: ``bmd``, ``t_score``,
            ``who_class``, ``screening_positive``; knee: ``class_name``, ``probability``).
        task: ``"hip"`` or ``"knee"``.
        algorithm: the model that made the prediction.
        synthetic: whether the input is synthetic (a yes/no evaluation and a "SYNTHETIC" comment).
        reference: hip only: ``ref_mean``, ``ref_sd``, ``screening_threshold`` (g/cm^2).
        region: ``(N, 2)`` closed polyline of (column, row) source pixel coordinates outlining the heat-map area.

    Raises:
        ValueError: for an unknown task or a hip prediction without its reference.
    """
    alg = AlgorithmIdentification(name=algorithm.name, version=algorithm.version, parameters=algorithm.parameters)
    spec = get_task(task)  # ValueError for an unknown task
    if spec.is_regression:  # BMD: measurement, T-score, WHO class, screening
        if reference is None:
            raise ValueError(f"a {task} SR needs the reference: ref_mean, ref_sd, screening_threshold")
        measurements, qualitative = _hip_items(row, reference, alg)
    else:  # class and probability
        measurements, qualitative = _knee_items(row, alg)
    qualitative.append(QualitativeEvaluation(codes.SYNTHETIC_INPUT, codes.YES if synthetic else codes.NO))
    sop = str(source.SOPInstanceUID)
    tracking = TrackingIdentifier(uid=derived_uid(sop, task, "tracking"), identifier=f"monai-bone {task} estimate")
    common = {"tracking_identifier": tracking, "measurements": measurements, "qualitative_evaluations": qualitative}
    if region is not None:
        roi = ImageRegion(
            graphic_type=GraphicTypeValues.POLYLINE,
            graphic_data=np.asarray(region, dtype=np.float32),
            source_image=SourceImageForRegion.from_source_image(source),
        )
        group = PlanarROIMeasurementsAndQualitativeEvaluations(referenced_region=roi, **common)
    else:
        group = MeasurementsAndQualitativeEvaluations(
            source_images=[SourceImageForMeasurementGroup.from_source_image(source)], **common
        )
    notes = ([SYNTHETIC_NOTE] if synthetic else []) + [codes.DIAGNOSTIC_DISCLAIMER]
    for text in notes:
        group[0].ContentSequence.append(TextContentItem(codes.COMMENT, text, RelationshipTypeValues.CONTAINS))
    device = DeviceObserverIdentifyingAttributes(
        uid=derived_uid(algorithm.name, algorithm.version, algorithm.weights_sha256),
        name=algorithm.name[:64],
        manufacturer_name=_MANUFACTURER,
        model_name=algorithm.version[:64],
    )
    context = ObservationContext(
        observer_device_context=ObserverContext(
            observer_type=CodedConcept("121007", "DCM", "Device"), observer_identifying_attributes=device
        )
    )
    report = MeasurementReport(
        observation_context=context, procedure_reported=codes.PROCEDURE, imaging_measurements=[group]
    )
    key = (sop, task, algorithm.weights_sha256)
    sr = hd.sr.Comprehensive3DSR(
        evidence=[source],
        content=report,
        series_instance_uid=derived_uid(*key, "series"),
        series_number=SR_SERIES_NUMBER,
        sop_instance_uid=derived_uid(*key, "sr"),
        instance_number=1,
        manufacturer=_MANUFACTURER,
        is_complete=True,
        is_final=False,
        is_verified=False,
    )
    sr.CodingSchemeIdentificationSequence = [_private_scheme()]
    sr.SeriesDescription = ("SYNTHETIC " if synthetic else "") + f"monai-bone {task} AI estimate (not diagnostic)"
    return sr


def _private_scheme() -> pydicom.Dataset:
    item = pydicom.Dataset()
    item.CodingSchemeDesignator = codes.SCHEME
    item.CodingSchemeName = "monai-bone local codes"
    item.CodingSchemeResponsibleOrganization = "monai-bone (see the model cards)"
    return item


def write_dataset(ds: pydicom.Dataset, path: str | os.PathLike) -> Path:
    """Write a DICOM data set as a Part 10 file, atomically (temporary file + rename)."""
    return atomic_write_stream(path, lambda f: ds.save_as(f, enforce_file_format=True))


def _value(item: Any) -> Any:
    value = item.value
    if isinstance(value, CodedConcept):
        return value.meaning
    return float(value)


def _algorithm(item: pydicom.Dataset) -> dict[str, Any] | None:
    """TID 4019 rows under a content item: ``{"name", "version", "parameters"}`` or None."""
    found: dict[str, Any] = {"parameters": []}
    keys = {"111001": "name", "111003": "version", "111002": "parameters"}
    for child in getattr(item, "ContentSequence", []):
        code = child.ConceptNameCodeSequence[0].CodeValue
        if code in keys and child.ValueType == "TEXT":
            if keys[code] == "parameters":
                found["parameters"].append(str(child.TextValue))
            else:
                found[keys[code]] = str(child.TextValue)
    return found if "name" in found else None


def read_sr_values(path_or_ds: str | os.PathLike | pydicom.Dataset) -> dict[str, Any]:
    """The values of an SR written by :func:`build_sr`, read back with highdicom.

    Returns:
        Local code value -> value (numbers for measurements, the code meaning for qualitative evaluations), plus
        ``algorithm`` (name, version, parameters), ``region`` (the polyline or None) and ``comments``.
    """
    if isinstance(path_or_ds, pydicom.Dataset):
        sr = hd.sr.Comprehensive3DSR.from_dataset(path_or_ds)
    else:
        sr = hd.sr.srread(path_or_ds)
    groups = list(sr.content.get_planar_roi_measurement_groups()) + list(sr.content.get_image_measurement_groups())
    if len(groups) != 1:
        raise ValueError(f"expected one measurement group, found {len(groups)}")
    group = groups[0]
    out: dict[str, Any] = {"region": None, "comments": [], "algorithm": None}
    for m in group.get_measurements():
        out[m.name.value] = float(m.value)
        out[m.name.value + ":unit"] = m.unit.value
        if out["algorithm"] is None:
            out["algorithm"] = _algorithm(m[0])
    for q in group.get_qualitative_evaluations():
        out[q.name.value] = q.value.meaning
    region = getattr(group, "roi", None)
    if region is not None:
        out["region"] = np.asarray(region.value)
    for item in group[0].ContentSequence:
        if item.ValueType == "TEXT" and item.ConceptNameCodeSequence[0].CodeValue == codes.COMMENT.value:
            out["comments"].append(str(item.TextValue))
    return out
