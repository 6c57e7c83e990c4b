"""Build a MONAI datalist from an image source: header scan, clinical CSV join, labels, patient-disjoint folds, rejects.

:func:`build_datalist` is the library side of ``monai-bone index``. It writes three files:

* the datalist JSON (``{"task", "synthetic", "num_folds", "seed", "clinical_fields", "labels", "source", "key",
  "training": [...]}``; see ``docs/interfaces.md``), loadable by
  ``monai.data.load_decathlon_datalist(path, data_list_key="training")``; ``image`` paths are relative to the
  datalist's folder and every record has the same keys (clinical fields are ``null`` when missing);
* ``rejects.csv`` beside it: ``path, reason, detail`` -- one row per file seen but not used (reasons:
  :data:`~monai_bone.data.dicom_header.REJECT_REASONS`);
* ``warnings.csv`` beside it: ``path, patient_id, field, code, source, original, corrected, detail`` -- field-level
  corrections and disagreements of the *used* files.

The three carry one run id (``"run_id"``; first CSV line ``# monai-bone index run <id>``) and are committed together
so that a killed run never leaves files of two runs side by side (:mod:`monai_bone.data.index_outputs`). With a task,
BodyPartExamined / ViewPosition are checked (``wrong_body_part`` / ``wrong_view``) and knee images are checked for
both knees in one image (:mod:`monai_bone.data.image_guards`, :mod:`monai_bone.data.index_guards`).

Clinical values (:data:`~monai_bone.constants.CLINICAL_FIELDS`) come from the clinical CSV(s), joined on ``key``
(default ``PatientID``), and fall back to the DICOM header for ``age_xray``, ``sex``, ``height``, ``weight``
(:data:`~monai_bone.constants.DICOM_FIELDS`). When both are present the CSV wins and a disagreement is recorded.
A height above 3 is taken as centimetres (converted, with a warning); a value outside
:data:`~monai_bone.constants.PLAUSIBLE_RANGES` is set to null with a warning; ``bmi`` is derived from height and
weight when missing.

Labels: ``bmd`` (hip) from the CSV column ``bmd``; ``label`` (knee) from the CSV column ``label`` (class index or name
of :data:`~monai_bone.constants.KNEE_LABELS_BINARY`/``KNEE_LABELS_THREE``) or from the class folder of an image-folder
source (the CSV wins when both are present). With ``task`` set and a label source available, a file without a usable
label is rejected (``missing_label``); without ``task`` or without a label source, unlabelled records are allowed
(an inference datalist).

Folds: :class:`sklearn.model_selection.StratifiedGroupKFold` with the patient as group (one patient is never in two
folds), stratified by BMD quantile bins (hip) or class (knee).

No PatientName, PatientBirthDate or other direct identifier is read, written or logged. With ``pseudonymise=True``
(``monai-bone index --pseudonymise``) PatientID, StudyInstanceUID, SOPInstanceUID and the join key are replaced by
salted pseudonyms (:mod:`monai_bone.data.pseudonym`) in the datalist, ``rejects.csv`` and ``warnings.csv``; the
clinical CSV join still uses the original values. Image paths are kept (they are needed to load the images): do not
name files or folders after patients if the outputs are shared.

Robustness: a file whose header read fails in an unexpected way (any exception other than the documented rejects)
is rejected as ``unreadable`` with the exception type and message, and the index goes on with the next file.
"""

from __future__ import annotations

import json
import logging
import math
import os
import warnings as _warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from monai_bone.constants import (
    CLINICAL_FIELDS,
    DICOM_FIELDS,
    KNEE_LABELS_BINARY,
    KNEE_LABELS_THREE,
    PLAUSIBLE_RANGES,
    SYNTHETIC_NOTE,
)
from monai_bone.data.clinical_csv import ClinicalTable, read_clinical_csv
from monai_bone.data.dicom_header import REJECT_REASONS, FieldWarning, RejectError
from monai_bone.data.duplicates import image_folder_patient_id, merge_duplicate_groups, pixel_hash
from monai_bone.data.index_guards import BILATERAL_FOLDER, BilateralCheck, guard_header, split_record
from monai_bone.data.index_outputs import RUN_ID_PREFIX, commit_outputs, new_run_id
from monai_bone.data.parallel_read import read_headers
from monai_bone.data.pseudonym import Pseudonymiser
from monai_bone.data.sources import ImageSource, SourceImage, open_source
from monai_bone.data.splits import SPLIT_KEY, TEST, TRAIN, assign_test_split, resolve_test_fraction
from monai_bone.utils.io import csv_text

__all__ = [
    "DATALIST_KEY",
    "DIRECT_IDENTIFIERS",
    "PLAUSIBLE_BMD",
    "REJECT_COLUMNS",
    "TASKS",
    "WARNING_COLUMNS",
    "IndexSummary",
    "assign_folds",
    "bmd_strata",
    "build_datalist",
    "merge_clinical",
    "resolve_label",
]

logger = logging.getLogger(__name__)

#: Key of the record list in the datalist JSON (``load_decathlon_datalist(..., data_list_key=DATALIST_KEY)``).
DATALIST_KEY: str = "training"

#: Tasks the index knows: ``hip`` (BMD regression, label column ``bmd``), ``knee`` (classification, ``label``).
TASKS: tuple[str, ...] = ("hip", "knee")

#: Columns of ``rejects.csv`` and ``warnings.csv``.
REJECT_COLUMNS: tuple[str, ...] = ("path", "reason", "detail")
WARNING_COLUMNS: tuple[str, ...] = ("path", "patient_id", "field", "code", "source", "original", "corrected", "detail")

#: Plausible areal BMD in g/cm² (DXA femoral neck values lie well inside); outside → null with a warning.
PLAUSIBLE_BMD: tuple[float, float] = (0.1, 2.5)

#: DICOM keywords that identify a person directly; refused as join keys (and never read by the index).
DIRECT_IDENTIFIERS: frozenset[str] = frozenset(
    {
        "PatientName",
        "PatientBirthDate",
        "PatientBirthTime",
        "PatientBirthName",
        "PatientMotherBirthName",
        "OtherPatientNames",
        "PatientAddress",
        "PatientTelephoneNumbers",
        "ResponsiblePerson",
        "ReferringPhysicianName",
    }
)

#: How far header and CSV values may differ before a disagreement is recorded.
_AGREEMENT_TOLERANCE = {"age_xray": 1.0, "height": 0.02, "weight": 1.0}
_BMI_TOLERANCE = 1.0
_MAX_BMD_BINS = 5


@dataclass
class IndexSummary:
    """What :func:`build_datalist` did: ``seen == used + rejected`` always.

    Attributes:
        seen: files found in the source (the index's own outputs and input CSVs excluded).
        used: records written to the datalist.
        rejected: rows written to ``rejects.csv``.
        reasons: reject count per reason code.
        warnings: rows written to ``warnings.csv``.
        patients: distinct patients (fold groups) among the used records.
        task: ``"hip"``, ``"knee"`` or ``None``.
        labelled: whether records are required to carry a label.
        synthetic: every used file is labelled synthetic.
        num_folds: number of folds.
        fold_sizes: records per fold.
        source: the source folder (or DICOMweb URL); source_kind: ``"dicom"``, ``"kop"`` or ``"dicomweb"``.
        datalist, rejects_csv, warnings_csv: the files written.
    """

    seen: int
    used: int
    rejected: int
    reasons: dict[str, int]
    warnings: int
    patients: int
    task: str | None
    labelled: bool
    synthetic: bool
    num_folds: int
    fold_sizes: dict[int, int]
    source: Path | str
    source_kind: str
    datalist: Path
    rejects_csv: Path
    warnings_csv: Path
    test_fraction: float = 0.0
    test_studies: int = 0
    test_patients: int = 0

    def __post_init__(self) -> None:
        if self.seen != self.used + self.rejected or sum(self.reasons.values()) != self.rejected:
            raise RuntimeError(
                f"index accounting is off: seen {self.seen} != used {self.used} + rejected {self.rejected} "
                f"(reasons {self.reasons})"
            )

    def lines(self) -> list[str]:
        """Human-readable summary lines."""
        out = [
            f"index of {self.source} ({self.source_kind}): files seen {self.seen} = used {self.used} "
            f"+ rejected {self.rejected}"
        ]
        if self.reasons:
            out.append("  rejected by reason: " + ", ".join(f"{k} {v}" for k, v in sorted(self.reasons.items())))
        out.append(f"  warnings: {self.warnings} (field corrections/disagreements, see {self.warnings_csv.name})")
        folds = ", ".join(str(self.fold_sizes.get(i, 0)) for i in range(self.num_folds))
        out.append(f"  patients: {self.patients}; {self.num_folds} fold(s) of sizes [{folds}]")
        if self.test_fraction > 0:
            out.append(
                f"  locked test split: {self.test_studies} studies of {self.test_patients} patients "
                f"(--test-fraction {self.test_fraction:g}; never used for training, selection or statistics)"
            )
        task = self.task or "none (inference datalist)"
        out.append(f"  task: {task}; labelled: {'yes' if self.labelled else 'no'}; synthetic: {self.synthetic}")
        out.append(f"  wrote {self.datalist}, {self.rejects_csv.name}, {self.warnings_csv.name}")
        return out

    def one_line(self) -> str:
        """The accounting in one line: ``files seen N = used U + rejected R (reason counts); W warnings``."""
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(self.reasons.items()))
        return (
            f"index of {self.source}: files seen {self.seen} = used {self.used} + rejected {self.rejected}"
            + (f" ({reasons})" if reasons else "")
            + f"; {self.warnings} warning(s); wrote {self.datalist}"
        )

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dictionary."""
        return {
            "seen": self.seen,
            "used": self.used,
            "rejected": self.rejected,
            "reasons": dict(self.reasons),
            "warnings": self.warnings,
            "patients": self.patients,
            "task": self.task,
            "labelled": self.labelled,
            "synthetic": self.synthetic,
            "num_folds": self.num_folds,
            "fold_sizes": {str(k): v for k, v in self.fold_sizes.items()},
            "source": os.fspath(self.source),
            "source_kind": self.source_kind,
            "datalist": os.fspath(self.datalist),
            "rejects_csv": os.fspath(self.rejects_csv),
            "warnings_csv": os.fspath(self.warnings_csv),
            "test_fraction": self.test_fraction,
            "test_studies": self.test_studies,
            "test_patients": self.test_patients,
        }


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


def bmd_strata(values: Sequence[float | None], n_bins: int) -> list[int]:
    """Quantile bins of BMD values for stratification (``-1`` for a missing value).

    Args:
        values: BMD per record (``None`` when unknown).
        n_bins: number of quantile bins (1 = a single stratum).

    Returns:
        Bin index per record.
    """
    known = np.asarray([v for v in values if v is not None], dtype=float)
    if n_bins <= 1 or known.size == 0:
        return [0 if v is not None else -1 for v in values]
    edges = np.quantile(known, np.linspace(0.0, 1.0, n_bins + 1)[1:-1])
    return [int(np.searchsorted(edges, v, side="right")) if v is not None else -1 for v in values]


def _sequential_sum(values: list[float]) -> float:
    total = 0.0
    for v in values:
        total += v
    return total


def _numpy_sum(values: list[float]) -> float:
    """Sum in the order of numpy's pairwise summation for fewer than 128 values (8 partial sums, then the tail)."""
    n = len(values)
    if n < 8:
        return _sequential_sum(values)
    r = values[:8]
    stop = n - n % 8
    for i in range(8, stop, 8):
        for j in range(8):
            r[j] += values[i + j]
    total = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
    for i in range(stop, n):
        total += values[i]
    return total


def _stratified_group_kfold(n_splits: int, seed: int):
    """``StratifiedGroupKFold`` whose inner fold scoring runs in plain floats.

    scikit-learn's ``StratifiedGroupKFold`` scores every candidate fold of every group with a few NumPy calls on tiny
    arrays (~1 ms per patient on a small machine -- more than reading that patient's DICOM header). The subclass
    keeps sklearn's validation, shuffling, group ordering and fold construction and only replaces
    ``_find_best_fold`` with plain float arithmetic in numpy's order of operations: the same criterion (mean over
    classes of the across-fold std of the class fractions), the same floats, so the same tie-break (``np.isclose``
    → fewer samples, then lower fold index) and the same folds (checked against the stock method in the tests).
    If a future sklearn renames the private hook, the stock method runs instead (same result, slower).
    """
    from sklearn.model_selection import StratifiedGroupKFold

    class _VectorisedStratifiedGroupKFold(StratifiedGroupKFold):
        def _find_best_fold(self, y_counts_per_fold, y_cnt, group_y_counts):
            # sklearn's criterion in plain floats, with numpy's order of operations (so ties break identically):
            # per class, the std over folds of count / class total, with the group added to candidate fold i
            counts, totals, group = y_counts_per_fold.tolist(), y_cnt.tolist(), group_y_counts.tolist()
            k, n_classes = len(counts), len(totals)
            # numpy reduces a (k, 1) array over axis 0 pairwise, a (k, C > 1) one row by row
            fold_sum = _numpy_sum if n_classes == 1 else _sequential_sum

            def std(vals: list[float]) -> float:
                mean = fold_sum(vals) / k
                return math.sqrt(fold_sum([(v - mean) * (v - mean) for v in vals]) / k)

            fractions = [[counts[j][c] / totals[c] for j in range(k)] for c in range(n_classes)]
            base = [std(f) for f in fractions]  # classes the group does not touch keep these for every candidate
            touched = [c for c in range(n_classes) if group[c]]
            best_fold, min_eval, min_samples = None, math.inf, math.inf
            for i in range(k):
                stds = list(base)
                for c in touched:
                    vals = list(fractions[c])
                    vals[i] = (counts[i][c] + group[c]) / totals[c]
                    stds[c] = std(vals)
                fold_eval, n_samples = _numpy_sum(stds) / n_classes, sum(counts[i])
                close = math.isfinite(min_eval) and abs(fold_eval - min_eval) <= 1e-8 + 1e-5 * abs(min_eval)
                if fold_eval < min_eval or (close and n_samples < min_samples):
                    best_fold, min_eval, min_samples = i, fold_eval, n_samples
            return best_fold

    return _VectorisedStratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)


def assign_folds(groups: Sequence[str], strata: Sequence[int], n_folds: int, seed: int = 0) -> list[int]:
    """Patient-disjoint, stratified fold index per record (``StratifiedGroupKFold``, shuffled with ``seed``).

    Falls back to a shuffled ``GroupKFold`` (with a logged warning) when no class has ``n_folds`` members.

    Args:
        groups: group (patient) id per record; a group never spans two folds.
        strata: stratum (class or BMD bin) per record.
        n_folds: number of folds; 1 puts every record in fold 0.
        seed: shuffling seed.

    Returns:
        Fold index per record.

    Raises:
        ValueError: when there are fewer distinct groups than folds, or ``n_folds < 1``.
    """
    from sklearn.model_selection import GroupKFold

    n = len(groups)
    if n_folds < 1:
        raise ValueError(f"folds must be >= 1, got {n_folds}")
    n_groups = len(set(groups))
    if n_groups < n_folds:
        raise ValueError(
            f"{n_groups} patient(s) with usable images but {n_folds} folds requested; every fold needs at least one "
            f"patient: use --folds {max(n_groups, 1)} or fewer (or index more images)"
        )
    if n_folds == 1:
        return [0] * n
    folds = np.full(n, -1, dtype=int)
    x = np.zeros((n, 1))
    y = np.asarray(strata)
    g = np.asarray(groups)
    try:
        with _warnings.catch_warnings():
            _warnings.simplefilter("ignore", UserWarning)  # "least populated class has only k members"
            splits = list(_stratified_group_kfold(n_folds, seed).split(x, y, g))
    except ValueError as err:
        logger.warning("stratified folds impossible (%s); using unstratified patient-grouped folds", err)
        splits = list(GroupKFold(n_splits=n_folds, shuffle=True, random_state=seed).split(x, y, g))
    for fold, (_, test) in enumerate(splits):
        folds[test] = fold
    return [int(f) for f in folds]


def _rel(path: Path, base: Path) -> str:
    return Path(os.path.relpath(os.path.abspath(path), os.path.abspath(base))).as_posix()


class _Relativiser:
    """Paths under ``root`` relative to ``base`` (posix), with one ``relpath`` call for the root instead of per file."""

    def __init__(self, root: Path, base: Path) -> None:
        self.root = os.fspath(root)
        self.prefix = _rel(root, base)
        self.base = base

    def __call__(self, path: Path) -> str:
        text = os.fspath(path)
        if not text.startswith(self.root + os.sep):
            return _rel(path, self.base)
        tail = text[len(self.root) + len(os.sep) :].replace(os.sep, "/")
        return tail if self.prefix == "." else f"{self.prefix}/{tail}"


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
    if name in _AGREEMENT_TOLERANCE:
        return abs(float(a) - float(b)) <= _AGREEMENT_TOLERANCE[name]
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


def _label_set(table: ClinicalTable | None, src: ImageSource) -> tuple[str, ...]:
    """Binary unless an ``osteopenia`` folder exists or a CSV label is ``osteopenia`` / ``2``."""
    three = src.labels == KNEE_LABELS_THREE
    if table is not None and table.has_column("label"):
        for row in table.rows.values():
            value = row.get("label")
            if value is not None and str(value).strip().lower() in ("osteopenia", "2", "2.0"):
                three = True
                break
    return KNEE_LABELS_THREE if three else KNEE_LABELS_BINARY


def _find_label(
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


def _dump_datalist(doc: dict[str, Any]) -> str:
    """JSON text with the top-level keys indented and one record per line.

    Readable and diff-friendly like an indented file, but each record goes through the C JSON encoder (an indented
    dump runs the pure-Python encoder, which costs as much as reading the DICOM headers of a large cohort).
    """
    parts = [f"  {json.dumps(k)}: {json.dumps(v, allow_nan=False)}" for k, v in doc.items() if k != DATALIST_KEY]
    rows = ",\n".join(f"    {json.dumps(r, allow_nan=False)}" for r in doc[DATALIST_KEY])
    parts.append(f"  {json.dumps(DATALIST_KEY)}: [\n{rows}\n  ]" if rows else f"  {json.dumps(DATALIST_KEY)}: []")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def _normalise_clinical_arg(clinical: str | os.PathLike | Iterable[str | os.PathLike] | None) -> list[Path]:
    if clinical is None:
        return []
    if isinstance(clinical, (str, os.PathLike)):
        return [Path(clinical)]
    return [Path(c) for c in clinical]


def build_datalist(
    source: str | os.PathLike,
    out: str | os.PathLike,
    clinical: str | os.PathLike | Iterable[str | os.PathLike] | None = None,
    key: str = "PatientID",
    task: str | None = None,
    folds: int = 10,
    seed: int = 0,
    progress: bool = True,
    source_kind: str | None = None,
    cache: str | os.PathLike | None = None,
    pseudonymise: bool = False,
    salt: str | None = None,
    mapping: str | os.PathLike | None = None,
    image_task: str | None = None,
    body_parts: Sequence[str] | None = None,
    views: Sequence[str] | None = None,
    bilateral: str | None = None,
    workers: int | None = None,
    test_fraction: float | None = None,
    dedup: bool | None = None,
) -> IndexSummary:
    """Index an image source into a MONAI datalist with folds, plus ``rejects.csv`` and ``warnings.csv`` beside it.

    Args:
        source: DICOM folder, KOP-style image folder, or DICOMweb URL (``http://HOST:PORT/dicom-web``: DX/CR
            instances are retrieved into ``cache`` and indexed like a folder;
            see :mod:`monai_bone.data.sources.dicomweb`).
        out: datalist JSON path (its folder receives ``rejects.csv`` and ``warnings.csv``).
        clinical: clinical CSV path(s), merged on ``key``; ``None`` for none.
        key: join key: a DICOM keyword whose value matches the CSV column of the same name (case-insensitive);
            for image folders the key value is the file stem. Direct identifiers (PatientName, ...) are refused.
        task: ``"hip"`` (label ``bmd``), ``"knee"`` (label ``label``) or ``None`` (labels optional).
        folds: number of patient-disjoint folds (1 = no split, every record in fold 0).
        seed: fold shuffling seed.
        progress: show a tqdm progress bar.
        source_kind: ``"dicom"``, ``"kop"``, ``"dicomweb"`` or ``None`` to auto-detect.
        cache: DICOMweb sources: folder for the retrieved instances (default ``dicomweb_cache/`` beside ``out``).
        pseudonymise: replace PatientID, Study/SOP Instance UIDs and the join key by salted pseudonyms in every output.
        salt: secret salt of the pseudonyms (default: the ``MONAI_BONE_SALT`` environment variable); never written.
        mapping: with ``pseudonymise``, write the original -> pseudonym CSV here (nowhere by default).
        image_task: check BodyPartExamined / ViewPosition against this task (default ``task``; see
            :mod:`monai_bone.data.image_guards`): refused files are rejected as ``wrong_body_part`` / ``wrong_view``.
        body_parts: accepted body parts (default: the task's, e.g. ``HIP``, ``PELVIS``).
        views: accepted views (default ``AP``, ``PA``).
        bilateral: knee images: ``"off"``, ``"warn"`` (default for knee: decode and warn about bilateral images) or
            ``"split"`` (make a left and a right record; :mod:`monai_bone.data.index_guards`).
        workers: processes reading headers (``None``: up to 4 for 1000 files or more on 4+ CPUs, see
            :mod:`monai_bone.data.parallel_read`; 1: this process only).
        test_fraction: share of patients held out as the locked test split (:mod:`monai_bone.data.splits`);
            ``None``: 0.2 when the data are labelled, else 0; 0 turns it off.
        dedup: group exact and near-duplicate images by a perceptual hash of their decoded pixels and reject
            duplicates with conflicting labels (:mod:`monai_bone.data.duplicates`); ``None``: when labelled.

    Returns:
        The :class:`IndexSummary` (``seen == used + rejected``).

    Raises:
        ValueError: bad arguments, an unreadable clinical CSV, no usable image, or fewer patients than folds
            (``rejects.csv``/``warnings.csv`` are written before the last two so the reasons can be read).
        FileNotFoundError: when the source or a clinical CSV does not exist.
        DicomwebError: DICOMweb sources: the server cannot be reached or a search fails.
    """
    from tqdm import tqdm

    from monai_bone.data.sources.dicomweb import DEFAULT_CACHE_NAME

    if task is not None and task not in TASKS:
        raise ValueError(f"task must be one of {TASKS} or None, got {task!r}")
    if isinstance(folds, bool) or not isinstance(folds, (int, np.integer)) or folds < 1:
        raise ValueError(f"folds must be an integer >= 1, got {folds!r}")
    if not key or key in DIRECT_IDENTIFIERS:
        raise ValueError(f"key {key!r} is not allowed: use PatientID or another non-identifying keyword")
    if mapping is not None and not pseudonymise:
        raise ValueError("a pseudonym mapping file was asked for without pseudonymise (--pseudonymise)")
    pseud = Pseudonymiser(salt) if pseudonymise else None
    guard_task = image_task if image_task is not None else task
    if guard_task is not None and guard_task not in TASKS:
        raise ValueError(f"image_task must be one of {TASKS} or None, got {guard_task!r}")
    bilateral = bilateral if bilateral is not None else ("warn" if guard_task == "knee" else "off")
    run_id = new_run_id()

    def shown(value: Any) -> Any:
        """The join-key value as it may appear in outputs (its pseudonym when pseudonymising)."""
        return pseud.pseudonym(key, value) if pseud is not None and value is not None else value

    out = Path(out)
    if out.is_dir():
        raise ValueError(f"out {out} is a folder; give the datalist JSON file path (e.g. {out / 'datalist.json'})")
    out_dir = out.parent if str(out.parent) else Path(".")
    rejects_path, warnings_path = out_dir / "rejects.csv", out_dir / "warnings.csv"
    clinical_paths = _normalise_clinical_arg(clinical)
    table = read_clinical_csv(clinical_paths, key=key) if clinical_paths else None
    src = open_source(
        source,
        kind=source_kind,
        exclude=[out, rejects_path, warnings_path, *clinical_paths],
        cache=out_dir / DEFAULT_CACHE_NAME if cache is None else cache,
        progress=progress,
    )

    has_bmd = table is not None and table.has_column("bmd")
    has_label = (table is not None and table.has_column("label")) or src.kind == "kop"
    if task == "hip":
        label_keys, labelled = ("bmd",), has_bmd
    elif task == "knee":
        label_keys, labelled = ("label",), has_label
    else:
        label_keys = tuple(k for k, present in (("bmd", has_bmd), ("label", has_label)) if present)
        labelled = False
    if task is not None and not labelled:
        wanted = "a 'bmd' column" if task == "hip" else "a 'label' column or class folders"
        logger.warning("task %s but no label source (%s): records carry no labels (inference datalist)", task, wanted)
    labels = _label_set(table, src) if "label" in label_keys else None
    explicit_test = test_fraction is not None
    test_fraction = resolve_test_fraction(test_fraction, labelled)
    dedup = labelled if dedup is None else bool(dedup)
    hashes: list[Any] = []  # pixel hash per record (duplicate grouping)
    stem_ids = 0  # image-folder records whose patient id is only their file path

    files = src.files()
    halves_dir = os.path.join(os.path.realpath(out_dir), BILATERAL_FOLDER)  # our own split halves are not inputs
    if os.path.isdir(halves_dir):
        files = [f for f in files if not os.path.realpath(f).startswith(halves_dir + os.sep)]
    rejects: list[dict[str, Any]] = []
    warning_rows: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = []
    groups: list[str] = []
    synthetic_flags: list[bool] = []
    first_sop: dict[str, str] = {}

    def reject(rel: str, reason: str, detail: str) -> None:
        rejects.append({"path": rel, "reason": reason, "detail": detail})
        logger.debug("reject %s: %s (%s)", rel, reason, detail)

    relative = _Relativiser(src.root, out_dir)
    bilateral_check = BilateralCheck(bilateral, out_dir)
    outcomes = read_headers(src, files, (key,), workers)
    for path, outcome in tqdm(outcomes, total=len(files), desc="index", unit="file", disable=not progress):
        rel = relative(path)
        try:
            img = outcome.get()
        except RejectError as err:
            reject(rel, err.reason, err.detail)
            continue
        except Exception as err:  # noqa: BLE001 - one odd file never stops the index; it is recorded as a reject
            kind = getattr(err, "type_name", type(err).__name__)
            detail = f"unexpected {kind} while reading the header: {' '.join(str(err).split())[:300]}"
            logger.warning("%s: %s", rel, detail)
            reject(rel, "unreadable", detail)
            continue
        if img.sop_instance_uid:
            if img.sop_instance_uid in first_sop:
                reject(rel, "duplicate_sop_uid", f"same SOPInstanceUID as {first_sop[img.sop_instance_uid]}")
                continue
            first_sop[img.sop_instance_uid] = rel
        guard_notes: list[FieldWarning] = []
        refused = guard_header(img, guard_task, body_parts, views, guard_notes) if guard_task else None
        if refused is not None:
            reject(rel, *refused)
            continue
        key_value = img.key_values.get(key)
        row, csv_source = None, ""
        if table is not None:
            if key_value is None:
                reject(rel, "no_clinical_row", f"the file has no {key}; cannot join the clinical CSV(s)")
                continue
            row = table.get(key_value)
            if row is None:
                reject(rel, "no_clinical_row", f"{key} {shown(key_value)!r} has no row in {table.describe()}")
                continue
            csv_source = f"csv:{table.origins.get(str(key_value).strip(), '')}"
        found: list[FieldWarning] = list(img.warnings) + guard_notes
        if table is not None:
            found.extend(table.warnings.get(str(key_value).strip(), []))
        values = merge_clinical(img, row, csv_source, found)

        record_labels: dict[str, Any] = {}
        missing = ""
        if "bmd" in label_keys:
            bmd = row.get("bmd") if row else None
            if bmd is not None and not PLAUSIBLE_BMD[0] <= bmd <= PLAUSIBLE_BMD[1]:
                found.append(
                    FieldWarning(
                        "bmd",
                        "implausible",
                        _fmt(bmd),
                        None,
                        f"bmd {bmd:g} g/cm^2 outside [{PLAUSIBLE_BMD[0]:g}, {PLAUSIBLE_BMD[1]:g}]; set to null",
                        csv_source,
                    )
                )
                missing = f"bmd {bmd:g} g/cm^2 is implausible"
                bmd = None
            if bmd is None and not missing:
                missing = "the clinical CSV row has no (or a conflicting) 'bmd' value" if row else "no 'bmd' value"
            record_labels["bmd"] = bmd
            if task == "hip" and labelled and bmd is None:
                reject(rel, "missing_label", f"{key} {shown(key_value)!r}: {missing}")
                continue
        if "label" in label_keys:
            label, missing = _find_label(img, row, labels, csv_source, found)
            record_labels["label"] = label
            if task == "knee" and labelled and label is None:
                reject(rel, "missing_label", f"{key} {shown(key_value)!r}: {missing}")
                continue

        halves = bilateral_check(path, rel, found) if guard_task == "knee" else None
        if img.patient_id is None:
            found.append(
                FieldWarning(
                    "patient_id", "note", None, None, "no PatientID: the image is its own group for the folds", "dicom"
                )
            )
        if src.kind == "kop":  # image folders: CSV patient_id, else the path inside the source (not the bare stem)
            img.patient_id, from_csv = image_folder_patient_id(path, src.root, row)
            stem_ids += not from_csv
        record: dict[str, Any] = {
            "image": rel,
            "patient_id": img.patient_id if pseud is None else pseud.pseudonym("PatientID", img.patient_id),
            "sop_instance_uid": (
                img.sop_instance_uid if pseud is None else pseud.pseudonym("SOPInstanceUID", img.sop_instance_uid)
            ),
            "study_instance_uid": (
                img.study_instance_uid if pseud is None else pseud.pseudonym("StudyInstanceUID", img.study_instance_uid)
            ),
            "modality": img.modality,
            "photometric": img.photometric,
            **record_labels,
            **values,
            "fold": None,
        }
        if bilateral == "split":
            record.update(split_from=None, image_half=None)
        parts = split_record(record, halves, lambda p: _rel(p, out_dir)) if halves else [record]
        records.extend(parts)
        groups.extend([img.patient_id if img.patient_id is not None else f"image:{rel}"] * len(parts))
        synthetic_flags.extend([bool(img.synthetic or (table is not None and table.synthetic))] * len(parts))
        # the file is hashed once: the halves of a split bilateral image are one patient, not duplicates
        hashes.extend([pixel_hash(path, dicom=src.kind != "kop") if dedup else None] + [None] * (len(parts) - 1))
        for w in found:
            detail = w.detail
            if pseud is not None and key_value is not None:  # clinical CSV conflicts name the key value
                detail = detail.replace(f"{key} {str(key_value).strip()}:", f"{key} {shown(key_value)}:")
            warning_rows.append(
                {
                    "path": rel,
                    "patient_id": record["patient_id"],
                    "field": w.field,
                    "code": w.code,
                    "source": w.source,
                    "original": w.original,
                    "corrected": w.corrected,
                    "detail": detail,
                }
            )

    # duplicate grouping (monai_bone.data.duplicates): twins share a fold/test group; conflicting twins are rejected
    if dedup and records:
        groups, consistent, conflicting = merge_duplicate_groups(records, groups, hashes)
        dropped = {i for comp in conflicting for i in comp}
        for comp in conflicting:
            names = [records[i]["image"] for i in comp]
            for i in comp:
                others = ", ".join(n for n in names if n != records[i]["image"])
                reject(records[i]["image"], "conflicting_duplicate", f"same image as {others} with a different label")
        for comp in consistent:
            for i in comp[1:]:
                rec, twin = records[i], records[comp[0]]["image"]
                warning_rows.append(
                    dict(zip(WARNING_COLUMNS, (rec["image"], rec["patient_id"], "image", "near_duplicate", "pixels")))
                    | {"detail": f"same image as {twin}: both kept in one fold/test-split group"}
                )
        if dropped:
            gone = {records[i]["image"] for i in dropped}
            keep = [i for i in range(len(records)) if i not in dropped]
            records, groups = [records[i] for i in keep], [groups[i] for i in keep]
            synthetic_flags = [synthetic_flags[i] for i in keep]
            warning_rows = [w for w in warning_rows if w["path"] not in gone]
    if stem_ids:
        detail = (
            f"{stem_ids} image-folder file(s) have no patient_id in a clinical CSV: each file (its path inside the "
            "source) is its own patient, so two images of one person may land in different folds; add a patient_id "
            "column to a CSV keyed by file name"
        )
        where = _rel(src.root, out_dir)
        warning_rows.append(
            dict(zip(WARNING_COLUMNS, (where, None, "patient_id", "patient_id_from_file_name", "index")))
            | {"detail": detail}
        )

    if table is not None:  # problems of the CSV files themselves (skipped lines, encoding fallback)
        for csv_path, w in table.file_warnings:
            warning_rows.append(
                {
                    "path": _rel(csv_path, out_dir),
                    "patient_id": None,
                    "field": w.field,
                    "code": w.code,
                    "source": w.source,
                    "original": w.original,
                    "corrected": w.corrected,
                    "detail": w.detail,
                }
            )

    run_line = RUN_ID_PREFIX[2:] + run_id  # csv_text adds the "# "
    reject_text = csv_text(rejects, REJECT_COLUMNS, comment=run_line).encode("utf-8")
    warning_text = csv_text(warning_rows, WARNING_COLUMNS, comment=run_line).encode("utf-8")
    outputs: list[tuple[Path, bytes | None]] = [(rejects_path, reject_text), (warnings_path, warning_text)]
    reasons = dict(Counter(r["reason"] for r in rejects))
    unknown = set(reasons) - set(REJECT_REASONS)
    if unknown:  # pragma: no cover - RejectError validates codes
        raise RuntimeError(f"unknown reject reasons {unknown}")
    if not records:
        commit_outputs([*outputs, (out, None)])
        raise ValueError(
            f"no usable images in {src.url or src.root}: {len(files)} file(s) seen, all rejected "
            f"({', '.join(f'{k} {v}' for k, v in sorted(reasons.items())) or 'no files'}); see {rejects_path}"
        )

    if task == "hip" or (task is None and "bmd" in label_keys and "label" not in label_keys):
        n_bins = max(1, min(_MAX_BMD_BINS, len(set(groups)) // folds))
        strata = bmd_strata([r["bmd"] for r in records], n_bins)
    elif "label" in label_keys:
        strata = [r["label"] if r["label"] is not None else -1 for r in records]
    else:
        strata = [0] * len(records)
    # locked test split (monai_bone.data.splits): whole patients held out before the folds are assigned
    try:
        held = assign_test_split(groups, strata, test_fraction, seed, min_train_groups=int(folds))
    except ValueError as err:
        if explicit_test:
            commit_outputs([*outputs, (out, None)])
            raise
        logger.warning("no locked test split: %s", err)  # the default on a cohort too small for one
        test_fraction, held = 0.0, [False] * len(groups)
    train_idx = [i for i, h in enumerate(held) if not h]
    try:
        fold_ids = assign_folds([groups[i] for i in train_idx], [strata[i] for i in train_idx], int(folds), seed)
    except ValueError:
        commit_outputs([*outputs, (out, None)])
        raise
    for record, is_held in zip(records, held):
        record[SPLIT_KEY] = TEST if is_held else TRAIN
    for i, fold in zip(train_idx, fold_ids):
        records[i]["fold"] = fold

    synthetic = all(synthetic_flags)
    if any(synthetic_flags) and not synthetic:
        logger.warning(
            "%d of %d used files are synthetic: the datalist mixes synthetic and real data",
            sum(synthetic_flags),
            len(synthetic_flags),
        )
    datalist: dict[str, Any] = {
        "task": task,
        "synthetic": synthetic,
        "num_folds": int(folds),
        "seed": int(seed),
        "test_fraction": float(test_fraction),
        "test_seed": int(seed),
        "clinical_fields": list(CLINICAL_FIELDS),
        "run_id": run_id,
    }
    if labels is not None:
        datalist["labels"] = list(labels)
    datalist.update({"source": src.url or _rel(src.root, out_dir), "source_kind": src.kind, "key": key})
    if pseud is not None:
        datalist["pseudonymised"] = "HMAC-SHA256 with a user salt (monai_bone.data.pseudonym); salt not stored"
    if synthetic:
        datalist["note"] = SYNTHETIC_NOTE
    datalist[DATALIST_KEY] = records
    commit_outputs([*outputs, (out, _dump_datalist(datalist).encode("utf-8"))])
    if pseud is not None and mapping is not None:
        if Path(mapping).resolve().parent == out_dir.resolve():
            logger.warning("the pseudonym mapping %s is beside the datalist; keep it apart from shared data", mapping)
        pseud.write_mapping(mapping)

    summary = IndexSummary(
        seen=len(files),
        used=len(records) - bilateral_check.found * (bilateral == "split"),
        rejected=len(rejects),
        reasons=reasons,
        warnings=len(warning_rows),
        patients=len(set(groups)),
        task=task,
        labelled=labelled,
        synthetic=synthetic,
        num_folds=int(folds),
        fold_sizes=dict(sorted(Counter(fold_ids).items())),
        source=src.url or src.root,
        source_kind=src.kind,
        datalist=out,
        rejects_csv=rejects_path,
        warnings_csv=warnings_path,
        test_fraction=float(test_fraction),
        test_studies=sum(held),
        test_patients=len({g for g, h in zip(groups, held) if h}),
    )
    logger.info("%s", summary.one_line())
    return summary
