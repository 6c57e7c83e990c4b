"""Cross-validation over a datalist's folds: baselines and bundle-trained networks in one ablation table.

Hip rows (BMD regression, screening at 0.899 g/cm^2):

- ``ost``: OST index ``0.2 × (weight − age)`` mapped to BMD by a line fitted on the training folds;
- ``clinical_ridge`` / ``clinical_gbm``: scikit-learn models on the clinical fields only (:mod:`.baselines`);
- ``image_stats``: the trivial image baseline -- ridge on block means/SDs and percentiles of the image plus the
  clinical fields (:mod:`.image_stats`); a network row that does not beat it is flagged;
- ``image``, ``clinical``, ``concat``, ``xattn``: ``XAttnBMD(fusion=...)`` trained by the hip bundle's
  ``train.json`` (``ConfigWorkflow`` with overrides), with the bundle's loss (Weighted Smooth L1);
- the two best of those (lowest pooled out-of-fold MSE) again with plain Smooth L1 (same ``beta``): the loss ablation.

Knee rows (the paper's Table I set): ``hybrid`` (the bundle's ``HybridAttentionNet``) and ``densenet169`` (MONAI's
``DenseNet169`` in the same bundle workflow: the paper's strongest baseline), and ``image_stats`` (logistic
regression on the same trivial image statistics).

Only the training split is read: records of the locked test split (``"split": "test"``) never enter a fit. Besides
``ablation.*`` the run writes ``comparisons.csv``/``.md`` (:mod:`.comparisons`): paired patient-level bootstrap
differences in MSE/MAE/R² and DeLong's ΔAUC between rows.

CV fold ``j`` of ``K`` validates on the datalist folds ``f`` with ``f % K == j`` (the datalist's folds are
patient-disjoint and BMD/label-stratified by ``monai-bone index``, so merged folds are too). Every fit's out-of-fold
predictions are kept in ``<out>/runs/<row>/fold<j>/oof.json`` with the settings that made them; rerunning the same
command reuses finished fits (a killed run resumes), and any changed setting retrains.

With a locked test split, each network row's fold-0 fit keeps its ``model.pt`` and scores the test split once, its
thresholds chosen on the row's out-of-fold predictions (:mod:`.test_split`). Initial weights are resolved before any
fit (:mod:`.pretrained_check`): offline ImageNet weights stop the run with one line.

The rows and their bundle overrides live in :mod:`.rows`, fold grouping and the fit cache in :mod:`.folds`; this
module runs them.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from monai_bone.bundle import default_bundle_dir, quiet_engines, train_and_predict
from monai_bone.constants import SYNTHETIC_NOTE
from monai_bone.data.folds import datalist_info, has_test_split, load_records
from monai_bone.data.splits import training_split
from monai_bone.tasks import get_task

from .baselines import ClinicalBaseline, OSTBaseline
from .comparisons import TRIVIAL, trivial_flags, write_comparisons
from .folds import FoldCache, cv_splits, file_sha256, find_cohort_info, has_finite, resolve_datalist
from .image_stats import ImageStatsBaseline
from .pretrained_check import check_pretrained
from .repeats import repeat_datalist, write_repeat_summary
from .roi import find_landmarks_csv, roi_fold_overrides, roi_note
from .rows import (
    ALT_HIP_LOSS,
    CV_ROWS,
    DEFAULT_HIP_LOSS,
    HIP_LOSS_ROWS,
    ROW_LABELS,
    densenet_def,
    hip_loss_beta,
    knee_probability,
    param_count,
    row_overrides,
    smooth_l1_overrides,
)
from .screening_table import clinical_screening_rows, write_operating_points
from .subgroups import write_subgroups
from .table import write_ablation_table
from .test_split import TEST_FIT_FOLD, keep_model_overrides, score_test_split, scored_rows
from .variant_summary import FoldPrediction, VariantResult, summarise_variant

__all__ = ["CVResult", "run_cv"]

logger = logging.getLogger(__name__)


@dataclass
class CVResult:
    """What :func:`run_cv` produced.

    Args:
        task: ``"hip"`` or ``"knee"``.
        out_dir: output folder.
        paths: written files by name (``csv``, ``markdown``, ``png``, ``folds``, ``predictions``, ``json``).
        rows: the ablation-table rows (dicts, as in ``ablation.csv``).
        synthetic: whether the data were synthetic.
        oracle_r2: the synthetic oracle R² (hip), when known.
    """

    task: str
    out_dir: Path
    paths: dict[str, Path]
    rows: list[dict[str, Any]]
    synthetic: bool
    oracle_r2: float | None = None
    notes: list[str] = field(default_factory=list)


def run_cv(
    task: str,
    data: str | os.PathLike,
    out_dir: str | os.PathLike,
    folds: int | None = None,
    epochs: int | None = None,
    size: int | None = None,
    batch_size: int | None = None,
    num_workers: int | None = None,
    device: str | None = None,
    bundle_dir: str | os.PathLike | None = None,
    variants: Sequence[str] | None = None,
    loss_ablation: bool = True,
    n_boot: int = 1000,
    seed: int = 0,
    overrides: Mapping[str, Any] | None = None,
    progress: bool = True,
    quiet: bool = True,
    repeats: int = 1,
    roi_size_mm: float | None = None,
    roi_landmarks_csv: str | os.PathLike | None = None,
    test_eval: bool | None = None,
) -> CVResult:
    """Run the ablation cross-validation of ``task`` on a datalist and write the table.

    Args:
        task: ``"hip"`` or ``"knee"``.
        data: datalist JSON (from ``monai-bone index``), or a folder holding ``datalist.json``.
        out_dir: output folder (table files at the top, per-fit folders under ``runs/``).
        folds: number of CV folds (default: the datalist's folds).
        epochs: training epochs per fit (default: the bundle's).
        size: image side in pixels (the bundle's ``spatial_size``; default: the bundle's).
        batch_size: training batch size (default: the bundle's).
        num_workers: data loader workers (default: the bundle's).
        device: torch device string (default: the bundle's choice, CUDA when available).
        bundle_dir: bundle folder (default: this source tree's bundle of ``task``).
        variants: rows to run (default: all of the task); hip names ``ost``, ``clinical_ridge``, ``clinical_gbm``,
            ``image``, ``clinical``, ``concat``, ``xattn``; knee ``hybrid``, ``densenet169``.
        loss_ablation: hip: rerun the two best networks with plain Smooth L1.
        n_boot: bootstrap resamples for the pooled CIs.
        seed: training and bootstrap seed.
        overrides: further bundle config overrides (ID → value).
        progress: tqdm bar over folds × rows.
        quiet: mute per-iteration engine logs while the bar runs.
        repeats: run the CV ``repeats`` times with fold seeds ``seed, seed + 1, ...`` (repeat 0 uses the datalist's
            folds; the others re-fold the training split into ``<out>/repeat<r>/``) and write ``repeats.csv``/``.md``
            with each row's spread over repeats (:mod:`.repeats`).
        roi_size_mm: network input = a crop of this many mm around a landmark found by a localiser fitted on each CV
            fold's training records and shared by that fold's rows (:mod:`.roi`); None: the whole image. The
            ``image_stats`` baseline always reads the whole image.
        roi_landmarks_csv: landmarks for the localisers (default: a synthetic cohort's ``realism.csv``).
        test_eval: score the locked test split with each network row's fold-0 fit through the bundle's
            ``evaluate.json``, thresholds chosen on the row's out-of-fold predictions (:mod:`.test_split`); default:
            when the datalist has a test split.

    Returns:
        The :class:`CVResult`.

    Raises:
        ValueError: bad task, variants, folds, or a datalist without targets for the task.
        FileNotFoundError: missing datalist or bundle.
    """
    again = {
        "folds": folds,
        "epochs": epochs,
        "size": size,
        "batch_size": batch_size,
        "num_workers": num_workers,
        "device": device,
        "bundle_dir": bundle_dir,
        "variants": variants,
        "loss_ablation": loss_ablation,
        "n_boot": n_boot,
        "seed": seed,
        "overrides": overrides,
        "progress": progress,
        "quiet": quiet,
        "roi_size_mm": roi_size_mm,
        "roi_landmarks_csv": roi_landmarks_csv,
        "test_eval": test_eval,
    }
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    spec = get_task(task)
    if spec.name not in CV_ROWS:
        raise ValueError(f"task must be one of {sorted(CV_ROWS)} (tasks with CV rows), got {task!r}")
    baseline_rows, network_rows = CV_ROWS[spec.name]
    allowed = (*baseline_rows, *network_rows, *(HIP_LOSS_ROWS if spec.is_regression else ()))
    chosen = list(variants) if variants else [*baseline_rows, *network_rows]
    unknown = [v for v in chosen if v not in allowed]
    if unknown:
        raise ValueError(f"unknown {task} variant(s) {unknown}; choose from {list(allowed)}")
    datalist = resolve_datalist(data).resolve()
    info = datalist_info(datalist)
    target = spec.label_key
    records = _training_records(datalist, info, task, target)
    splits = cv_splits([int(r["fold"]) for r in records], folds)
    k = len(splits)
    bundle = Path(bundle_dir) if bundle_dir is not None else default_bundle_dir(task)
    synthetic = bool(info.get("synthetic"))
    cohort = find_cohort_info(datalist, info)
    oracle_r2 = float(cohort["oracle_r2"]) if cohort and cohort.get("oracle_r2") is not None else None
    if roi_size_mm is not None and roi_landmarks_csv is None:
        roi_landmarks_csv = find_landmarks_csv(datalist, info)
    test_eval = has_test_split(datalist) if test_eval is None else bool(test_eval)

    settings = {"epochs": epochs, "spatial_size": size, "batch_size": batch_size, "num_workers": num_workers}
    ov = _bundle_overrides(seed, settings, device, overrides)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cache = FoldCache(
        out / "runs",
        {
            "task": task,
            "datalist_sha256": file_sha256(datalist),
            "train_json_sha256": file_sha256(bundle / "configs" / "train.json"),
            "overrides": ov,
        },
    )

    net_rows = [v for v in chosen if v in network_rows]
    loss_rows = [v for v in chosen if v in HIP_LOSS_ROWS]  # explicit plain Smooth L1 rows (e.g. xattn_smoothl1)
    # the initial weights of every network row, before any fit (offline ImageNet: one clear error, not a traceback)
    check_pretrained(bundle, [{**ov, **row_overrides(v, bundle)} for v in net_rows])
    n_alt = min(2, len(net_rows)) if spec.is_regression and loss_ablation else 0
    total = k * (len(chosen) + n_alt)
    bar = tqdm(total=total, desc=f"CV {task}{' (SYNTHETIC)' if synthetic else ''}", unit="fit", disable=not progress)

    def split(j: int) -> tuple[list[dict], list[dict]]:
        val = set(splits[j])
        return [r for r in records if int(r["fold"]) not in val], [r for r in records if int(r["fold"]) in val]

    n_classes = len(info.get("labels") or (0, 1))

    def reference(recs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        if spec.is_regression:
            return np.array([float(r[target]) for r in recs])
        return np.array([float(int(r[target]) == n_classes - 1) for r in recs])  # osteoporosis vs rest

    def baseline(name: str) -> VariantResult:
        label = ROW_LABELS[name] if spec.is_regression else "Trivial image statistics, logistic (sklearn)"
        res = VariantResult(name, label, "baseline", "-")
        for j in range(k):
            bar.set_postfix_str(f"{name} fold {j + 1}/{k}")
            train, val = split(j)
            if name == TRIVIAL:
                model = ImageStatsBaseline(task, seed=seed)
            else:
                model = OSTBaseline() if name == "ost" else ClinicalBaseline(name.split("_", 1)[1], seed=seed)
            pred = model.fit(train, reference(train)).predict(val)
            res.folds.append(FoldPrediction(j, pred, reference(val), [str(r.get("patient_id", "")) for r in val]))
            bar.update(1)
        return res

    row_ov: dict[str, dict[str, Any]] = {}

    def network(row: str, label: str, loss: str, extra: Mapping[str, Any], convert: Callable | None) -> VariantResult:
        res = VariantResult(row, label, "network", loss)
        row_ov[row] = {**ov, **extra, **roi_fold_overrides(out, TEST_FIT_FOLD, roi_size_mm, roi_landmarks_csv)}
        for j in range(k):
            bar.set_postfix_str(f"{row} fold {j + 1}/{k}")
            fold_extra = {**extra, **roi_fold_overrides(out, j, roi_size_mm, roi_landmarks_csv)}
            key = {"row": row, "val_folds": splits[j], "extra": fold_extra}
            keep = test_eval and j == TEST_FIT_FOLD  # this fit's model scores the test split (.test_split)
            cached = cache.load(row, j, key)
            if cached is not None and keep and not (cache.path(row, j) / "models" / "model.pt").is_file():
                cached = None  # finished before without its model: fit again
            if cached is None:
                run_dir = cache.clear(row, j)
                fit_ov = {**ov, **fold_extra, **(keep_model_overrides(bundle) if keep else {})}
                with quiet_engines(quiet):
                    pred, true, ids = train_and_predict(bundle, datalist, splits[j], run_dir, fit_ov, keep)
                if convert is not None:
                    pred, true = convert(pred, true)
                cached = FoldPrediction(j, pred, true, ids)
                cache.save(row, cached, key)
            else:
                logger.info("%s fold %d: reusing finished fit in %s", row, j, cache.path(row, j))
            res.folds.append(cached)
            bar.update(1)
        return res

    results: list[VariantResult] = []
    notes: list[str] = []
    try:
        if spec.is_regression:
            results += [baseline(v) for v in chosen if v in baseline_rows]
            nets = [network(v, ROW_LABELS[v], DEFAULT_HIP_LOSS, {"fusion": v}, None) for v in net_rows]
            results += nets
            beta = hip_loss_beta(bundle, ov)
            for v in loss_rows:
                results.append(network(v, ROW_LABELS[v], ALT_HIP_LOSS, smooth_l1_overrides(v, beta), None))
            if n_alt:
                ranked = sorted(nets, key=lambda r: summarise_variant(task, r, n_boot=1)[0]["mse_pooled"])
                ranked = [r for r in ranked if f"{r.name}_smoothl1" not in loss_rows]  # not twice
                for best in ranked[:n_alt]:
                    alt = smooth_l1_overrides(f"{best.name}_smoothl1", beta)
                    results.append(
                        network(f"{best.name}_smoothl1", f"{ROW_LABELS[best.name]}, Smooth L1", ALT_HIP_LOSS, alt, None)
                    )
                notes.append(
                    f"Loss ablation: the two networks with the lowest pooled out-of-fold MSE "
                    f"({', '.join(r.name for r in ranked[:n_alt])}) retrained with plain Smooth L1 (beta {beta:g}) "
                    f"instead of the bundle's Weighted Smooth L1."
                )
        else:
            knee_loss = "BCEWithLogits" if n_classes <= 2 else "CrossEntropy"
            results += [baseline(v) for v in chosen if v in baseline_rows]
            for v in net_rows:
                extra = {} if v == "hybrid" else {"network_def": densenet_def(bundle)}
                results.append(network(v, ROW_LABELS[v], knee_loss, extra, knee_probability))
    finally:
        bar.close()

    notes += _run_notes(spec.is_regression, splits, bundle, ov, cohort, synthetic)
    if roi_size_mm is not None:
        notes.append(roi_note(roi_size_mm, roi_landmarks_csv))
    pooled_mse = {r.name: summarise_variant(task, r, n_boot=1)[0].get("mse_pooled", math.nan) for r in results}
    comparisons, comparison_paths = write_comparisons(
        task, results, out, synthetic, n_boot=n_boot, seed=seed, pooled_mse=pooled_mse if spec.is_regression else None
    )
    flags = trivial_flags(task, comparisons)
    row_info = {r.name: {"flag": flags.get(r.name, "")} for r in results}
    for r in results:
        if r.kind == "network":
            row_info[r.name]["params"] = param_count(bundle, datalist, {**ov, **row_overrides(r.name, bundle)})
    if TRIVIAL in {r.name for r in results}:
        notes.append(
            "Trivial image baseline: scikit-learn on 4×4 block means/SDs and percentiles of the normalised image"
            + (" plus the clinical fields" if spec.uses_clinical else "")
            + "; a network row that does not beat it (paired test, comparisons.md) is flagged."
        )
    paths = write_ablation_table(
        task,
        results,
        out,
        synthetic=synthetic,
        oracle_r2=oracle_r2 if spec.is_regression else None,
        n_boot=n_boot,
        seed=seed,
        notes=notes,
        extra={"datalist": str(datalist), "bundle": str(bundle), "folds": splits, "overrides": ov},
        row_info=row_info,
    )
    paths.update(comparison_paths)
    clinical_screening = clinical_screening_rows([split(j) for j in range(k)], seed) if spec.uses_clinical else []
    paths.update(write_operating_points(task, results, out, synthetic, clinical_screening))
    paths.update(write_subgroups(task, results, records, out, synthetic))
    if test_eval:
        model_dirs = {r: cache.path(r, TEST_FIT_FOLD) / "models" for r in scored_rows(results)}
        paths.update(
            score_test_split(
                task,
                bundle,
                datalist,
                model_dirs,
                paths["predictions"],
                row_ov,
                out,
                synthetic,
                quiet,
                seed,
                n_boot,
                splits[TEST_FIT_FOLD],
            )
        )
    rows = json.loads(paths["json"].read_text(encoding="utf-8"))["rows"]
    logger.info("CV table written to %s", paths["markdown"])
    if repeats > 1:  # the same CV with other fold seeds (monai_bone.cv.repeats)
        every = [rows]
        for r in range(1, repeats):
            copy = repeat_datalist(datalist, out / f"repeat{r}" / "datalist.json", task, seed + r)
            every.append(run_cv(task, copy, out / f"repeat{r}", **{**again, "folds": k, "test_eval": False}).rows)
        paths.update(write_repeat_summary(task, every, out, synthetic))
    return CVResult(task, out, paths, rows, synthetic, oracle_r2 if spec.is_regression else None, notes)


def _bundle_overrides(
    seed: int, settings: Mapping[str, int | None], device: str | None, overrides: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The bundle config overrides of every fit: seed, the given settings (ints), the device, then ``overrides``."""
    ov: dict[str, Any] = {"seed": seed}
    for key, value in settings.items():
        if value is not None:
            ov[key] = int(value)
    if device is not None:
        ov["device"] = f"$torch.device({str(device)!r})"
    ov.update(overrides or {})
    return ov


def _run_notes(
    regression: bool,
    splits: Sequence[Sequence[int]],
    bundle: Path,
    ov: Mapping[str, Any],
    cohort: Mapping[str, Any] | None,
    synthetic: bool,
) -> list[str]:
    """The table notes that say how the run was made (folds, bundle, overrides, OST, ceilings, SYNTHETIC)."""
    notes = [
        f"{len(splits)}-fold CV over the datalist's patient-disjoint folds {splits}; bundle {bundle.name}; "
        f"overrides {json.dumps(ov, default=str)}.",
        "Networks: out-of-fold predictions of the final-epoch network (validation runs once, after the last epoch, so "
        "no model selection sees the held-out fold).",
    ]
    if regression:
        notes.append(
            "OST = 0.2 × (weight kg − age years), age at the radiograph (else at DXA), mapped to BMD by a line "
            "fitted on the training folds; records without weight or age get the training mean BMD."
        )
        if cohort and cohort.get("clinical_r2") is not None:
            ceiling = float(cohort["clinical_r2"])
            notes.append(f"Synthetic clinical-only ceiling (R² of the clinical part of the formula): {ceiling:.3f}.")
    if synthetic:
        notes.append(SYNTHETIC_NOTE + ".")
    return notes


def _training_records(datalist: Path, info: Mapping[str, Any], task: str, target: str) -> list[dict[str, Any]]:
    """The datalist's training-split records with a ``target`` value and a fold (``ValueError`` naming the file)."""
    if info.get("task") not in (None, task):
        raise ValueError(f"{datalist}: datalist is for task {info.get('task')!r}, not {task!r}")
    # the locked test split (monai_bone.data.splits) never enters a CV fit
    records = [r for r in training_split(load_records(datalist)) if has_finite(r, target)]
    if not records:
        raise ValueError(f"{datalist}: no record has a '{target}' value; index with the ground truth CSV")
    if any(not has_finite(r, "fold") for r in records):
        raise ValueError(f"{datalist}: records without 'fold'; re-index with `monai-bone index --folds K`")
    return records
