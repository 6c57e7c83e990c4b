"""Build a MONAI datalist from an image source: header scan, clinical CSV join, labels, patient-disjoint folds, rejects.

:func:`build_datalist` is the library side of ``monai-bone index``. It writes three files:

* the datalist JSON (format and reader: :mod:`monai_bone.data.folds`), loadable by
  ``monai.data.load_decathlon_datalist(path, data_list_key="training")``; ``image`` paths are relative to the
  datalist's folder and every record has the same keys (clinical fields are ``null`` when missing);
* ``rejects.csv`` beside it: ``path, reason, detail`` -- one row per file seen but not used (reasons:
  :data:`~monai_bone.data.dicom_records.REJECT_REASONS`);
* ``warnings.csv`` beside it: ``path, patient_id, field, code, source, original, corrected, detail`` -- field-level
  corrections and disagreements of the *used* files.

The three carry one run id (``"run_id"``; first CSV line ``# monai-bone index run <id>``) and are committed together
so that a killed run never leaves files of two runs side by side (:mod:`monai_bone.data.index_outputs`).

The steps, each in its own module: the source lists and reads the files (:mod:`monai_bone.data.sources`, header
only, :mod:`monai_bone.data.parallel_read`); body part / view / bilateral checks (:mod:`monai_bone.data.index_guards`);
the clinical CSV join and the record's clinical fields and label (:mod:`monai_bone.data.clinical_csv`,
:mod:`monai_bone.data.clinical_records`: the CSV wins over the header, disagreements and fixes go to
``warnings.csv``); duplicate grouping (:mod:`monai_bone.data.duplicates`); the locked test split
(:mod:`monai_bone.data.splits`) and patient-disjoint stratified folds (:mod:`monai_bone.data.fold_assign`). This
module only orchestrates them, in small functions.

Labels: with ``task`` set and a label source available (a ``bmd`` / ``label`` CSV column, or class folders), a file
without a usable label is rejected (``missing_label``); without ``task`` or without a label source, unlabelled
records are allowed (an inference datalist).

No PatientName, PatientBirthDate or other direct identifier is read, written or logged. With ``pseudonymise=True``
(``monai-bone index --pseudonymise``) PatientID, StudyInstanceUID, SOPInstanceUID and the join key are replaced by
salted pseudonyms (:mod:`monai_bone.data.pseudonym`) in the datalist, ``rejects.csv`` and ``warnings.csv``; the
clinical CSV join still uses the original values. Image paths are kept (they are needed to load the images): do not
name files or folders after patients if the outputs are shared.

Robustness: a file whose header read fails in an unexpected way (any exception other than the documented rejects)
is rejected as ``unreadable`` with the exception type and message, and the index goes on with the next file.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from monai_bone.constants import CLINICAL_FIELDS, SYNTHETIC_NOTE
from monai_bone.data.clinical_csv import ClinicalTable, read_clinical_csv
from monai_bone.data.clinical_records import PLAUSIBLE_BMD, label_set
from monai_bone.data.dicom_records import REJECT_REASONS
from monai_bone.data.fold_assign import assign_folds, fold_strata
from monai_bone.data.folds import DATALIST_KEY, dump_datalist
from monai_bone.data.image_guards import checks_bilateral
from monai_bone.data.index_options import DIRECT_IDENTIFIERS, TASKS, IndexOptions
from monai_bone.data.index_outputs import RUN_ID_PREFIX, OutputCommit
from monai_bone.data.index_scan import (
    IndexPlan,
    IndexScan,
    group_duplicates,
    rel_path,
    scan_source,
    source_warnings,
)
from monai_bone.data.index_summary import REJECT_COLUMNS, WARNING_COLUMNS, IndexSummary
from monai_bone.data.pseudonym import Pseudonymiser
from monai_bone.data.sources import DEFAULT_CACHE_NAME, ImageSource, open_source
from monai_bone.data.splits import SPLIT_KEY, TEST, TRAIN, assign_test_split, resolve_test_fraction
from monai_bone.tasks import get_task
from monai_bone.utils.io import csv_text

__all__ = [
    "DATALIST_KEY",
    "DIRECT_IDENTIFIERS",
    "PLAUSIBLE_BMD",
    "IndexOptions",
    "REJECT_COLUMNS",
    "TASKS",
    "WARNING_COLUMNS",
    "IndexSummary",
    "build_datalist",
]

logger = logging.getLogger(__name__)


def _normalise_clinical_arg(clinical: str | os.PathLike | Iterable[str | os.PathLike] | None) -> list[Path]:
    if clinical is None:
        return []
    if isinstance(clinical, (str, os.PathLike)):
        return [Path(clinical)]
    return [Path(c) for c in clinical]


def _label_plan(task: str | None, table: ClinicalTable | None, src: ImageSource) -> tuple[tuple[str, ...], bool]:
    """The label keys records carry and whether a label is required (a task with a label source)."""
    present = {
        "bmd": table is not None and table.has_column("bmd"),
        "label": (table is not None and table.has_column("label")) or src.kind == "kop",
    }
    if task is None:
        return tuple(k for k in ("bmd", "label") if present[k]), False
    label_key = get_task(task).label_key
    if not present[label_key]:
        wanted = "a 'bmd' column" if label_key == "bmd" else "a 'label' column or class folders"
        logger.warning("task %s but no label source (%s): records carry no labels (inference datalist)", task, wanted)
    return (label_key,), present[label_key]


def _plan(source, out, clinical, options: IndexOptions) -> IndexPlan:
    """Check the options, read the clinical CSV(s), open the source and decide labels, guards and splits."""
    opts = options.check()
    pseud = Pseudonymiser(opts.salt) if opts.pseudonymise else None
    out = Path(out)
    if out.is_dir():
        raise ValueError(f"out {out} is a folder; give the datalist JSON file path (e.g. {out / 'datalist.json'})")
    out_dir = out.parent if str(out.parent) else Path(".")
    clinical_paths = _normalise_clinical_arg(clinical)
    table = read_clinical_csv(clinical_paths, key=opts.key) if clinical_paths else None
    src = open_source(
        source,
        kind=opts.source_kind,
        exclude=[out, out_dir / "rejects.csv", out_dir / "warnings.csv", *clinical_paths],
        cache=out_dir / DEFAULT_CACHE_NAME if opts.cache is None else opts.cache,
        progress=opts.progress,
    )
    label_keys, labelled = _label_plan(opts.task, table, src)
    guard_task = opts.guard_task
    return IndexPlan(
        src=src,
        table=table,
        out=out,
        out_dir=out_dir,
        key=opts.key,
        task=opts.task,
        folds=int(opts.folds),
        seed=int(opts.seed),
        label_keys=label_keys,
        labelled=labelled,
        labels=label_set(table, src) if "label" in label_keys else None,
        guard_task=guard_task,
        body_parts=opts.body_parts,
        views=opts.views,
        bilateral=opts.bilateral if opts.bilateral is not None else ("warn" if checks_bilateral(guard_task) else "off"),
        test_fraction=resolve_test_fraction(opts.test_fraction, labelled),
        explicit_test=opts.test_fraction is not None,
        dedup=labelled if opts.dedup is None else bool(opts.dedup),
        pseud=pseud,
    )


def _csv_outputs(plan: IndexPlan, scan: IndexScan) -> list[tuple[Path, bytes | None]]:
    run_line = RUN_ID_PREFIX[2:] + plan.run_id  # csv_text adds the "# "
    reject_text = csv_text(scan.rejects, REJECT_COLUMNS, comment=run_line).encode("utf-8")
    warning_text = csv_text(scan.warning_rows, WARNING_COLUMNS, comment=run_line).encode("utf-8")
    return [(plan.rejects_path, reject_text), (plan.warnings_path, warning_text)]


def _stratify_by(plan: IndexPlan) -> str | None:
    if plan.task is not None:
        return get_task(plan.task).label_key
    if "bmd" in plan.label_keys and "label" not in plan.label_keys:
        return "bmd"
    return "label" if "label" in plan.label_keys else None


def _assign_splits(plan: IndexPlan, scan: IndexScan, commit: OutputCommit) -> tuple[list[bool], list[int], float]:
    """Locked test split (whole patients), then folds over the rest; records get ``split`` and ``fold``.

    Returns:
        ``(held, fold_ids, test_fraction)``: test membership per record, the fold of each training record, and the
        test fraction used (0 when the default split did not fit a small cohort).
    """
    records, groups = scan.records, scan.groups
    strata = fold_strata(records, groups, _stratify_by(plan), plan.folds)
    test_fraction = plan.test_fraction
    try:
        held = assign_test_split(groups, strata, test_fraction, plan.seed, min_train_groups=plan.folds)
    except ValueError as err:
        if plan.explicit_test:
            commit.finish([(plan.out, None)])
            raise
        logger.warning("no locked test split: %s", err)  # the default on a cohort too small for one
        test_fraction, held = 0.0, [False] * len(groups)
    train_idx = [i for i, h in enumerate(held) if not h]
    try:
        fold_ids = assign_folds([groups[i] for i in train_idx], [strata[i] for i in train_idx], plan.folds, plan.seed)
    except ValueError:
        commit.finish([(plan.out, None)])
        raise
    for record, is_held in zip(records, held):
        record[SPLIT_KEY] = TEST if is_held else TRAIN
    for i, fold in zip(train_idx, fold_ids):
        records[i]["fold"] = fold
    return held, fold_ids, test_fraction


def _datalist_doc(plan: IndexPlan, scan: IndexScan, test_fraction: float, synthetic: bool) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "task": plan.task,
        "synthetic": synthetic,
        "num_folds": plan.folds,
        "seed": plan.seed,
        "test_fraction": float(test_fraction),
        "test_seed": plan.seed,
        "clinical_fields": list(CLINICAL_FIELDS),
        "run_id": plan.run_id,
    }
    if plan.labels is not None:
        doc["labels"] = list(plan.labels)
    doc.update({"source": plan.src.url or rel_path(plan.src.root, plan.out_dir), "source_kind": plan.src.kind})
    doc["key"] = plan.key
    if plan.pseud is not None:
        doc["pseudonymised"] = "HMAC-SHA256 with a user salt (monai_bone.data.pseudonym); salt not stored"
    if synthetic:
        doc["note"] = SYNTHETIC_NOTE
    doc[DATALIST_KEY] = scan.records
    return doc


def _all_synthetic(flags: list[bool]) -> bool:
    synthetic = all(flags)
    if any(flags) and not synthetic:
        logger.warning(
            "%d of %d used files are synthetic: the datalist mixes synthetic and real data", sum(flags), len(flags)
        )
    return synthetic


def _summary(
    plan: IndexPlan, scan: IndexScan, held: list[bool], fold_ids: list[int], test_fraction: float, synthetic: bool
):
    return IndexSummary(
        seen=len(scan.files),
        used=len(scan.records) - scan.bilateral_found * (plan.bilateral == "split"),
        rejected=len(scan.rejects),
        reasons=dict(Counter(r["reason"] for r in scan.rejects)),
        warnings=len(scan.warning_rows),
        patients=len(set(scan.groups)),
        task=plan.task,
        labelled=plan.labelled,
        synthetic=synthetic,
        num_folds=plan.folds,
        fold_sizes=dict(sorted(Counter(fold_ids).items())),
        source=plan.src.url or plan.src.root,
        source_kind=plan.src.kind,
        datalist=plan.out,
        rejects_csv=plan.rejects_path,
        warnings_csv=plan.warnings_path,
        test_fraction=float(test_fraction),
        test_studies=sum(held),
        test_patients=len({g for g, h in zip(scan.groups, held) if h}),
    )


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
            instances are retrieved into ``cache`` and indexed like a folder; see
            :mod:`monai_bone.data.sources.dicomweb`).
        out: datalist JSON path (its folder receives ``rejects.csv`` and ``warnings.csv``).
        clinical: clinical CSV path(s), merged on ``key``; ``None`` for none.
        key: join key: a DICOM keyword whose value matches the CSV column of the same name (case-insensitive);
            for image folders the key value is the file stem. Direct identifiers (PatientName, ...) are refused.
        task: a registered task (:func:`monai_bone.tasks.task_names`: ``"hip"``, label ``bmd``; ``"knee"``, label
            ``label``) or ``None`` (labels optional).
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
        dedup: group exact and near-duplicate images by a perceptual hash of their pixels, computed in the same file
            read as the header, and reject duplicates with conflicting labels (:mod:`monai_bone.data.duplicates`);
            ``None``: when labelled.

    Returns:
        The :class:`IndexSummary` (``seen == used + rejected``).

    Raises:
        ValueError: bad arguments, an unreadable clinical CSV, no usable image, or fewer patients than folds
            (``rejects.csv``/``warnings.csv`` are written before the last two so the reasons can be read).
        FileNotFoundError: when the source or a clinical CSV does not exist.
        DicomwebError: DICOMweb sources: the server cannot be reached or a search fails.
    """
    options = IndexOptions(
        key=key,
        task=task,
        folds=folds,
        seed=seed,
        progress=progress,
        source_kind=source_kind,
        cache=cache,
        pseudonymise=pseudonymise,
        salt=salt,
        mapping=mapping,
        image_task=image_task,
        body_parts=body_parts,
        views=views,
        bilateral=bilateral,
        workers=workers,
        test_fraction=test_fraction,
        dedup=dedup,
    )
    plan = _plan(source, out, clinical, options)
    scan = scan_source(plan, workers, progress)
    if plan.dedup and scan.records:
        group_duplicates(scan)
    source_warnings(plan, scan)
    outputs = _csv_outputs(plan, scan)
    reasons = dict(Counter(r["reason"] for r in scan.rejects))
    if set(reasons) - set(REJECT_REASONS):  # pragma: no cover - RejectError validates codes
        raise RuntimeError(f"unknown reject reasons {set(reasons) - set(REJECT_REASONS)}")
    # the CSVs are written (and fsync'd) in the background while the folds and the datalist are computed
    with OutputCommit(plan.out_dir, [p.name for p, _ in outputs] + [plan.out.name]) as commit:
        commit.stage(outputs)
        if not scan.records:
            commit.finish([(plan.out, None)])
            raise ValueError(
                f"no usable images in {plan.src.url or plan.src.root}: {len(scan.files)} file(s) seen, all rejected "
                f"({', '.join(f'{k} {v}' for k, v in sorted(reasons.items())) or 'no files'}); see {plan.rejects_path}"
            )
        held, fold_ids, test_fraction = _assign_splits(plan, scan, commit)
        synthetic = _all_synthetic(scan.synthetic)
        doc = _datalist_doc(plan, scan, test_fraction, synthetic)
        commit.finish([(plan.out, dump_datalist(doc).encode("utf-8"))])
    if plan.pseud is not None and mapping is not None:
        if Path(mapping).resolve().parent == plan.out_dir.resolve():
            logger.warning("the pseudonym mapping %s is beside the datalist; keep it apart from shared data", mapping)
        plan.pseud.write_mapping(mapping)
    summary = _summary(plan, scan, held, fold_ids, test_fraction, synthetic)
    logger.info("%s", summary.one_line())
    return summary
