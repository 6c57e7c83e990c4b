"""The index's per-file pass: read each file of a source, check it, join its clinical row, label and record it.

:func:`scan_source` reads every file of an :class:`IndexPlan`'s source (headers, and the pixel hash in the same read
when de-duplicating: :mod:`monai_bone.data.duplicates`) into an :class:`IndexScan`: records with their fold groups,
rejects (``rejects.csv`` rows) and warnings (``warnings.csv`` rows). :func:`group_duplicates` then joins duplicate
images into one group. The orchestration around it is :func:`monai_bone.data.datalist.build_datalist`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from monai_bone.data.clinical_csv import ClinicalTable
from monai_bone.data.clinical_records import bmd_label, find_label, merge_clinical
from monai_bone.data.dicom_records import FieldWarning, RejectError
from monai_bone.data.duplicates import image_folder_patient_id, merge_duplicate_groups
from monai_bone.data.image_guards import checks_bilateral
from monai_bone.data.index_guards import BILATERAL_FOLDER, BilateralCheck, guard_header, split_record
from monai_bone.data.index_outputs import new_run_id
from monai_bone.data.index_summary import WARNING_COLUMNS
from monai_bone.data.parallel_read import read_headers
from monai_bone.data.pseudonym import Pseudonymiser
from monai_bone.data.sources import ImageSource, SourceImage
from monai_bone.tasks import get_task

__all__ = [
    "IndexPlan",
    "IndexScan",
    "checks_bilateral",
    "group_duplicates",
    "rel_path",
    "scan_source",
    "source_warnings",
]

logger = logging.getLogger(__name__)


def rel_path(path: Path, base: Path) -> str:
    return Path(os.path.relpath(os.path.abspath(path), os.path.abspath(base))).as_posix()


class _Relativiser:
    """Paths under ``root`` relative to ``base`` (posix), with one ``relpath`` call for the root instead of per file."""

    def __init__(self, root: Path, base: Path) -> None:
        self.root = os.fspath(root)
        self.prefix = rel_path(root, base)
        self.base = base

    def __call__(self, path: Path) -> str:
        text = os.fspath(path)
        if not text.startswith(self.root + os.sep):
            return rel_path(path, self.base)
        tail = text[len(self.root) + len(os.sep) :].replace(os.sep, "/")
        return tail if self.prefix == "." else f"{self.prefix}/{tail}"


@dataclass
class IndexPlan:
    """What the arguments and the inputs decide before any file is read."""

    src: ImageSource
    table: ClinicalTable | None
    out: Path
    out_dir: Path
    key: str
    task: str | None
    folds: int
    seed: int
    label_keys: tuple[str, ...]
    labelled: bool
    labels: tuple[str, ...] | None
    guard_task: str | None
    body_parts: Sequence[str] | None
    views: Sequence[str] | None
    bilateral: str
    test_fraction: float
    explicit_test: bool
    dedup: bool
    pseud: Pseudonymiser | None
    run_id: str = field(default_factory=new_run_id)

    @property
    def rejects_path(self) -> Path:
        return self.out_dir / "rejects.csv"

    @property
    def warnings_path(self) -> Path:
        return self.out_dir / "warnings.csv"

    def shown(self, value: Any) -> Any:
        """The join-key value as it may appear in outputs (its pseudonym when pseudonymising)."""
        return self.pseud.pseudonym(self.key, value) if self.pseud is not None and value is not None else value

    def pseudonym(self, keyword: str, value: Any) -> Any:
        return value if self.pseud is None else self.pseud.pseudonym(keyword, value)


@dataclass
class IndexScan:
    """What reading the files produced: one entry per used record in ``records``/``groups``/``synthetic``/``hashes``."""

    files: list[Path]
    rejects: list[dict[str, Any]] = field(default_factory=list)
    warning_rows: list[dict[str, Any]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    synthetic: list[bool] = field(default_factory=list)
    hashes: list[Any] = field(default_factory=list)
    stem_ids: int = 0  # image-folder records whose patient id is only their file path
    bilateral_found: int = 0  # bilateral knee images found (split into two records with bilateral="split")
    first_sop: dict[str, str] = field(default_factory=dict)

    def reject(self, rel: str, reason: str, detail: str) -> None:
        self.rejects.append({"path": rel, "reason": reason, "detail": detail})
        logger.debug("reject %s: %s (%s)", rel, reason, detail)


def _source_files(plan: IndexPlan) -> list[Path]:
    """The source's files, without the halves a bilateral split wrote beside the datalist in an earlier run."""
    files = plan.src.files()
    halves_dir = os.path.join(os.path.realpath(plan.out_dir), BILATERAL_FOLDER)
    if os.path.isdir(halves_dir):
        files = [f for f in files if not os.path.realpath(f).startswith(halves_dir + os.sep)]
    return files


def _read_image(scan: IndexScan, rel: str, outcome: Any) -> SourceImage | None:
    """The image of a header-read outcome, or ``None`` after recording its reject (unexpected errors included)."""
    try:
        img = outcome.get()
    except RejectError as err:
        scan.reject(rel, err.reason, err.detail)
        return None
    except Exception as err:  # noqa: BLE001 - one odd file never stops the index; it is recorded as a reject
        kind = getattr(err, "type_name", type(err).__name__)
        detail = f"unexpected {kind} while reading the header: {' '.join(str(err).split())[:300]}"
        logger.warning("%s: %s", rel, detail)
        scan.reject(rel, "unreadable", detail)
        return None
    if img.sop_instance_uid:
        if img.sop_instance_uid in scan.first_sop:
            scan.reject(rel, "duplicate_sop_uid", f"same SOPInstanceUID as {scan.first_sop[img.sop_instance_uid]}")
            return None
        scan.first_sop[img.sop_instance_uid] = rel
    return img


def _clinical_row(plan: IndexPlan, scan: IndexScan, rel: str, key_value: Any) -> tuple[bool, dict | None, str]:
    """``(ok, row, csv_source)`` of the CSV join; ``ok`` is False after recording a ``no_clinical_row`` reject."""
    table = plan.table
    if table is None:
        return True, None, ""
    if key_value is None:
        scan.reject(rel, "no_clinical_row", f"the file has no {plan.key}; cannot join the clinical CSV(s)")
        return False, None, ""
    row = table.get(key_value)
    if row is None:
        scan.reject(rel, "no_clinical_row", f"{plan.key} {plan.shown(key_value)!r} has no row in {table.describe()}")
        return False, None, ""
    return True, row, f"csv:{table.origins.get(str(key_value).strip(), '')}"


def _record_labels(
    plan: IndexPlan, img: SourceImage, row: dict | None, csv_source: str, found: list[FieldWarning]
) -> tuple[dict[str, Any], str]:
    """The record's label fields and, when the task's label is required but missing, why (else ``""``)."""
    labels: dict[str, Any] = {}
    missing = ""
    required = get_task(plan.task).label_key if plan.task is not None and plan.labelled else None
    if "bmd" in plan.label_keys:
        labels["bmd"], why = bmd_label(row, csv_source, found)
        missing = why if required == "bmd" and labels["bmd"] is None else missing
    if "label" in plan.label_keys:
        labels["label"], why = find_label(img, row, plan.labels, csv_source, found)
        missing = why if required == "label" and labels["label"] is None else missing
    return labels, missing


def _record(plan: IndexPlan, img: SourceImage, rel: str, labels: dict, values: dict) -> dict[str, Any]:
    record: dict[str, Any] = {
        "image": rel,
        "patient_id": plan.pseudonym("PatientID", img.patient_id),
        "sop_instance_uid": plan.pseudonym("SOPInstanceUID", img.sop_instance_uid),
        "study_instance_uid": plan.pseudonym("StudyInstanceUID", img.study_instance_uid),
        "modality": img.modality,
        "photometric": img.photometric,
        **labels,
        **values,
        "fold": None,
    }
    if plan.bilateral == "split":
        record.update(split_from=None, image_half=None)
    return record


def _warning_row(rel: str, patient_id: Any, w: FieldWarning, detail: str | None = None) -> dict[str, Any]:
    values = (
        rel,
        patient_id,
        w.field,
        w.code,
        w.source,
        w.original,
        w.corrected,
        w.detail if detail is None else detail,
    )
    return dict(zip(WARNING_COLUMNS, values))


def _add_warnings(plan: IndexPlan, scan: IndexScan, rel: str, patient_id: Any, key_value: Any, found: list) -> None:
    for w in found:
        detail = w.detail
        if plan.pseud is not None and key_value is not None:  # clinical CSV conflicts name the key value
            detail = detail.replace(f"{plan.key} {str(key_value).strip()}:", f"{plan.key} {plan.shown(key_value)}:")
        scan.warning_rows.append(_warning_row(rel, patient_id, w, detail))


def _index_one(
    plan: IndexPlan, scan: IndexScan, path: Path, rel: str, img: SourceImage, bilateral: BilateralCheck
) -> None:
    """Check, join, label and record one image that its source could read (or record why it is rejected)."""
    guard_notes: list[FieldWarning] = []
    if plan.guard_task:
        refused = guard_header(img, plan.guard_task, plan.body_parts, plan.views, guard_notes)
        if refused is not None:
            return scan.reject(rel, *refused)
    key_value = img.key_values.get(plan.key)
    ok, row, csv_source = _clinical_row(plan, scan, rel, key_value)
    if not ok:
        return None
    found: list[FieldWarning] = list(img.warnings) + guard_notes
    if plan.table is not None:
        found.extend(plan.table.warnings.get(str(key_value).strip(), []))
    values = merge_clinical(img, row, csv_source, found)
    labels, missing = _record_labels(plan, img, row, csv_source, found)
    if missing:
        return scan.reject(rel, "missing_label", f"{plan.key} {plan.shown(key_value)!r}: {missing}")
    halves = bilateral(path, rel, found) if checks_bilateral(plan.guard_task) else None
    if img.patient_id is None:
        note = "no PatientID: the image is its own group for the folds"
        found.append(FieldWarning("patient_id", "note", None, None, note, "dicom"))
    if plan.src.kind == "kop":  # image folders: CSV patient_id, else the path inside the source (not the bare stem)
        img.patient_id, from_csv = image_folder_patient_id(path, plan.src.root, row)
        scan.stem_ids += not from_csv
    record = _record(plan, img, rel, labels, values)
    parts = split_record(record, halves, lambda p: rel_path(p, plan.out_dir)) if halves else [record]
    n = len(parts)
    scan.records.extend(parts)
    scan.groups.extend([img.patient_id if img.patient_id is not None else f"image:{rel}"] * n)
    scan.synthetic.extend([bool(img.synthetic or (plan.table is not None and plan.table.synthetic))] * n)
    # the file is hashed once: the halves of a split bilateral image are one patient, not duplicates
    scan.hashes.extend([img.pixel_hash if plan.dedup else None] + [None] * (n - 1))
    _add_warnings(plan, scan, rel, record["patient_id"], key_value, found)


def scan_source(plan: IndexPlan, workers: int | None, progress: bool) -> IndexScan:
    """Read every file of the source (headers, and pixel hashes when de-duplicating) into records and rejects."""
    scan = IndexScan(files=_source_files(plan))
    relative = _Relativiser(plan.src.root, plan.out_dir)
    bilateral = BilateralCheck(plan.bilateral, plan.out_dir)
    outcomes = read_headers(plan.src, scan.files, (plan.key,), workers, pixel_hash=plan.dedup)
    for path, outcome in tqdm(outcomes, total=len(scan.files), desc="index", unit="file", disable=not progress):
        rel = relative(path)
        img = _read_image(scan, rel, outcome)
        if img is not None:
            _index_one(plan, scan, path, rel, img, bilateral)
    scan.bilateral_found = bilateral.found
    return scan


def group_duplicates(scan: IndexScan) -> None:
    """Twins share a fold/test group (``near_duplicate`` warnings); twins with conflicting labels are rejected."""
    records = scan.records
    scan.groups, consistent, conflicting = merge_duplicate_groups(records, scan.groups, scan.hashes)
    dropped = {i for comp in conflicting for i in comp}
    for comp in conflicting:
        names = [records[i]["image"] for i in comp]
        for i in comp:
            others = ", ".join(n for n in names if n != records[i]["image"])
            scan.reject(records[i]["image"], "conflicting_duplicate", f"same image as {others} with a different label")
    for comp in consistent:
        for i in comp[1:]:
            rec, twin = records[i], records[comp[0]]["image"]
            scan.warning_rows.append(
                dict(zip(WARNING_COLUMNS, (rec["image"], rec["patient_id"], "image", "near_duplicate", "pixels")))
                | {"detail": f"same image as {twin}: both kept in one fold/test-split group"}
            )
    if dropped:
        gone = {records[i]["image"] for i in dropped}
        keep = [i for i in range(len(records)) if i not in dropped]
        scan.records, scan.groups = [records[i] for i in keep], [scan.groups[i] for i in keep]
        scan.synthetic = [scan.synthetic[i] for i in keep]
        scan.warning_rows = [w for w in scan.warning_rows if w["path"] not in gone]


def source_warnings(plan: IndexPlan, scan: IndexScan) -> None:
    """Warnings about the source as a whole: file-name patient ids, problems of the CSV files themselves."""
    if scan.stem_ids:
        detail = (
            f"{scan.stem_ids} image-folder file(s) have no patient_id in a clinical CSV: each file (its path inside "
            "the source) is its own patient, so two images of one person may land in different folds; add a "
            "patient_id column to a CSV keyed by file name"
        )
        where = rel_path(plan.src.root, plan.out_dir)
        scan.warning_rows.append(
            dict(zip(WARNING_COLUMNS, (where, None, "patient_id", "patient_id_from_file_name", "index")))
            | {"detail": detail}
        )
    if plan.table is not None:  # skipped lines, encoding fallback
        for csv_path, w in plan.table.file_warnings:
            scan.warning_rows.append(_warning_row(rel_path(csv_path, plan.out_dir), None, w))
