"""The end-to-end demo behind ``monai-bone demo``: synthetic cohorts → index → bundle training → evaluation → inference.

Everything runs through the same pieces a user runs by hand: :func:`monai_bone.synthetic.synth.synthesize`,
:func:`monai_bone.data.datalist.build_datalist`, and each bundle's ``train.json`` / ``evaluate.json`` /
``inference.json`` through ``monai.bundle.ConfigWorkflow`` with small overrides (image size, epochs, batch size).
The bundles' own defaults stay paper-faithful; the demo only overrides them on the command line.

:func:`run_demo` is a short list of named steps: :func:`demo_settings` (resolve and check), then per task
:func:`run_task` (:func:`synthesise_cohort`, :func:`index_cohort`, :func:`trained_copy` + :func:`train_overrides` and
training, evaluation, :func:`inference_inputs` and inference, :func:`task_entry`), then :func:`write_report`.

Output folder::

    DIR/report.md                 summary (SYNTHETIC), settings, timings, links
    DIR/summary.json              the same numbers, machine-readable
    DIR/hip/evaluation/           metrics.json, predictions.csv, plots (bundle evaluate.json)
    DIR/hip/inference/            predictions.csv / .json for a few DICOM files (bundle inference.json)
    DIR/knee/evaluation/, DIR/knee/inference/
    DIR/data/{hip,knee}/          the synthetic cohorts and their datalists
    DIR/bundles/<bundle>/         trained copies of the bundles (models/model.pt; the source bundles are not touched)
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monai_bone.bundle import default_bundle_dir
from monai_bone.bundle.metadata import pin_settings, sync_metadata
from monai_bone.constants import SYNTHETIC_NOTE
from monai_bone.cv.split_baselines import baseline_predictions, score_baselines
from monai_bone.cv.split_paired import paired_vs_baselines
from monai_bone.data.datalist import build_datalist
from monai_bone.data.folds import fold_records, load_records, split_folds
from monai_bone.synthetic.synth import synthesize
from monai_bone.tasks import get_task, task_names
from monai_bone.utils.io import atomic_write_json, atomic_write_text
from monai_bone.utils.jsonsafe import json_safe

from .report import report_markdown
from .roi_summary import roi_summary
from .settings import DEMO_DEFAULTS, QUICK_SETTINGS
from .steps import Steps, copy_bundle, evaluate_bundle, infer_bundle, prepare_out_dir, train_bundle

__all__ = [
    "DemoResult",
    "demo_settings",
    "index_cohort",
    "inference_inputs",
    "run_demo",
    "run_task",
    "synthesise_cohort",
    "task_entry",
    "train_overrides",
    "trained_copy",
    "write_report",
]

logger = logging.getLogger(__name__)


@dataclass
class DemoResult:
    """What :func:`run_demo` produced.

    Args:
        out_dir: the report folder.
        report: path of ``report.md``.
        summary: the ``summary.json`` content.
    """

    out_dir: Path
    report: Path
    summary: dict[str, Any] = field(default_factory=dict)


def demo_settings(
    quick: bool, given: Mapping[str, Any], tasks: Sequence[str] | None, seed: int, device: str | None, num_workers: int
) -> dict[str, Any]:
    """The demo's resolved and checked settings: :data:`QUICK_SETTINGS` or :data:`DEMO_DEFAULTS`, then ``given``.

    Args:
        quick: start from :data:`QUICK_SETTINGS`.
        given: explicit values (``None``: keep the base value) of ``n_hip``, ``n_knee``, ``epochs``, ``size``,
            ``synth_size``, ``batch_size``, ``folds``, ``n_infer``.
        tasks: the tasks to run (default: every task of :mod:`monai_bone.tasks`).
        seed: cohort and training seed.
        device: torch device or ``None``.
        num_workers: data loader workers.

    Raises:
        ValueError: a count below 1, fewer than 2 folds, an unknown task or a cohort too small for the folds.
    """
    base = dict(QUICK_SETTINGS if quick else DEMO_DEFAULTS)
    s = {**base, **{k: v for k, v in given.items() if v is not None}}
    for key in ("n_hip", "n_knee", "epochs", "size", "batch_size", "n_infer"):
        if int(s[key]) < 1:
            raise ValueError(f"{key} must be >= 1, got {s[key]}")
    if int(s["folds"]) < 2:
        raise ValueError(f"folds must be >= 2 (fold 0 validates), got {s['folds']}")
    tasks = tuple(tasks) if tasks else task_names()
    for task in tasks:
        get_task(task)  # ValueError for an unknown task
        if int(s[f"n_{task}"]) < int(s["folds"]) + 1:
            raise ValueError(f"n_{task} = {s[f'n_{task}']} is too small for {s['folds']} folds")
    s["synth_size"] = max(64, int(s["synth_size"]))
    s.update({"seed": seed, "num_workers": num_workers, "device": device, "tasks": list(tasks)})
    return s


def synthesise_cohort(task: str, s: Mapping[str, Any], data: Path) -> dict[str, Any]:
    """The task's synthetic cohort as DICOM files (inference then runs on a plain folder of them, as at a site)."""
    # n_classes=2: the knee bundle is binary (normal vs osteoporosis) like the paper; synth's knee default is 3
    n = int(s[f"n_{task}"])
    return synthesize(task, n, data, seed=s["seed"], size=s["synth_size"], fmt="dicom", n_classes=2, progress=False)


def index_cohort(task: str, s: Mapping[str, Any], data: Path) -> Path:
    """Index the cohort with its clinical CSV and ground truth into ``data/datalist.json`` (locked test split)."""
    datalist = data / "datalist.json"
    clinical = [data / "clinical.csv", data / "ground_truth.csv"]
    build_datalist(
        data / "dicom", datalist, clinical=clinical, task=task, folds=int(s["folds"]), seed=s["seed"], progress=False
    )
    return datalist


def train_overrides(task: str, s: Mapping[str, Any], datalist: Path, data: Path) -> dict[str, Any]:
    """The bundle overrides of every demo run of ``task`` (training, evaluation, inference)."""
    roi_mm = s.get(f"roi_{task}_mm")
    ov: dict[str, Any] = {
        "datalist": str(datalist),
        "val_fold": 0,
        "seed": s["seed"],
        "epochs": int(s["epochs"]),
        "spatial_size": int(s["size"]),
        "batch_size": int(s["batch_size"]),
        "learning_rate": float(s["learning_rate"]),
        "num_workers": int(s["num_workers"]),
        "cache": "memory",
        # random initialisation, explicitly: the bundles default to ImageNet weights (the papers' choice),
        # a download the demo must not need
        "pretrained": None,
        "roi_size_mm": roi_mm,
        # the synthetic landmarks of the training records fit the ROI localiser (models/localiser.pt)
        "roi_landmarks_csv": str(data / "realism.csv") if roi_mm else None,
    }
    if s["device"] is not None:
        ov["device"] = f"$torch.device({str(s['device'])!r})"
    return ov


def trained_copy(task: str, s: Mapping[str, Any], source: Path, out: Path) -> Path:
    """A copy of the task's bundle in ``out/bundles/`` pinned to the demo's input size (the source is untouched)."""
    bundle = copy_bundle(source, out / "bundles" / source.name)
    pin_settings(bundle, {"spatial_size": int(s["size"]), "pretrained": None, "roi_size_mm": s.get(f"roi_{task}_mm")})
    sync_metadata(bundle)  # metadata.json describes the pinned input size, not the source bundle's
    return bundle


def inference_inputs(datalist: Path, n_infer: int, dest: Path) -> Path:
    """Copy the first ``n_infer`` validation-fold images into ``dest`` (a plain folder, as a site would have)."""
    _, val = split_folds(load_records(datalist), 0, source=str(datalist))
    dest.mkdir(parents=True)
    for rec in val[:n_infer]:
        shutil.copy2(rec["image"], dest / Path(rec["image"]).name)
    return dest


def task_entry(
    task: str,
    s: Mapping[str, Any],
    bundle: Path,
    datalist: Path,
    out: Path,
    metrics: dict[str, Any],
    rows: list[dict],
    cohort: Mapping[str, Any],
) -> dict[str, Any]:
    """The task's ``summary.json`` entry: model metrics, inference rows, baselines on the same split, ROI summary."""
    spec = get_task(task)
    entry: dict[str, Any] = {
        "bundle": bundle.name,
        "n_train": len(fold_records(datalist, 0, "train")),
        "metrics": metrics,
        "inference": rows,
    }
    if spec.uses_clinical:
        entry["fusion"] = "xattn"
    if spec.is_regression:
        entry["oracle_r2"] = cohort.get("oracle_r2")
    fitted = baseline_predictions(task, datalist, 0, s["seed"])
    entry["baselines"] = score_baselines(task, datalist, 0, s["seed"], fitted=fitted)
    predictions = out / task / "evaluation" / "predictions.csv"
    if predictions.is_file():
        entry["paired"] = paired_vs_baselines(task, datalist, predictions, 0, s["seed"], int(s["n_boot"]), fitted)
    roi_mm = s.get(f"roi_{task}_mm")
    if roi_mm:
        entry["roi"] = roi_summary(bundle, datalist, datalist.parent / "realism.csv", out / task, float(roi_mm))
    return entry


def run_task(task: str, s: Mapping[str, Any], source: Path, out: Path, steps: Steps, quiet: bool) -> dict[str, Any]:
    """One task through the demo's steps: synthesise, index, train, evaluate, infer; returns its summary entry."""
    data = out / "data" / task
    steps.start(f"synthesise {task}")
    cohort = synthesise_cohort(task, s, data)
    steps.done()

    steps.start(f"index {task}")
    datalist = index_cohort(task, s, data)
    steps.done()

    steps.start(f"train {task}")
    bundle = trained_copy(task, s, source, out)
    ov = train_overrides(task, s, datalist, data)
    train_bundle(bundle, task, ov, steps, quiet)
    steps.done()

    steps.start(f"evaluate {task}")
    metrics = evaluate_bundle(bundle, {**ov, "n_bootstrap": int(s["n_boot"])}, out / task / "evaluation", quiet)
    steps.done()

    steps.start(f"infer {task}")
    infer_src = inference_inputs(datalist, int(s["n_infer"]), out / task / "inference" / "input")
    clinical_csv = data / "clinical.csv" if get_task(task).uses_clinical else None
    rows = infer_bundle(bundle, ov, infer_src, out / task / "inference", clinical_csv, quiet)
    steps.done()
    return task_entry(task, s, bundle, datalist, out, metrics, rows, cohort)


def write_report(summary: dict[str, Any], out: Path, steps: Steps) -> Path:
    """``report.md`` and ``summary.json`` (with the step timings so far); returns the report path."""
    steps.start("report")
    summary["timings"] = dict(steps.times)
    summary["wall_s"] = round(sum(steps.times.values()), 1)
    report = atomic_write_text(out / "report.md", report_markdown(summary, out))
    atomic_write_json(out / "summary.json", json_safe(summary))
    steps.done()
    return report


def run_demo(
    out_dir: str | os.PathLike,
    n_hip: int | None = None,
    n_knee: int | None = None,
    epochs: int | None = None,
    size: int | None = None,
    synth_size: int | None = None,
    batch_size: int | None = None,
    folds: int | None = None,
    n_infer: int | None = None,
    quick: bool = False,
    tasks: Sequence[str] | None = None,
    seed: int = 0,
    device: str | None = None,
    num_workers: int = 0,
    overwrite: bool = False,
    progress: bool = True,
    quiet: bool = True,
) -> DemoResult:
    """Run the demo pipeline and write the report folder.

    Args:
        out_dir: report folder (created; an earlier demo there is replaced only with ``overwrite``).
        n_hip: hip cohort size.
        n_knee: knee cohort size.
        epochs: training epochs per bundle.
        size: network input size in pixels (bundle ``spatial_size``).
        synth_size: side of the generated radiographs in pixels (>= 64).
        batch_size: training batch size.
        folds: index folds (fold 0 validates).
        n_infer: files per task for the inference step.
        quick: start from :data:`QUICK_SETTINGS` instead of :data:`DEMO_DEFAULTS` (explicit values still win).
        tasks: which tasks' bundles to run (default: every task of :mod:`monai_bone.tasks`).
        seed: cohort and training seed.
        device: torch device (default: the bundles' choice, CUDA when available).
        num_workers: data loader workers.
        overwrite: replace an earlier demo in ``out_dir``.
        progress: show progress bars.
        quiet: mute per-iteration engine logs.

    Returns:
        The :class:`DemoResult`.

    Raises:
        ValueError: bad settings or an unusable ``out_dir``.
        FileNotFoundError: a bundle is missing.
    """
    given = {"n_hip": n_hip, "n_knee": n_knee, "epochs": epochs, "size": size, "synth_size": synth_size}
    given.update({"batch_size": batch_size, "folds": folds, "n_infer": n_infer})
    s = demo_settings(quick, given, tasks, seed, device, num_workers)
    tasks = tuple(s["tasks"])

    out = Path(out_dir).resolve()
    sources = {t: default_bundle_dir(t) for t in tasks}
    prepare_out_dir(out, overwrite)
    names = [f"{step} {t}" for t in tasks for step in ("synthesise", "index", "train", "evaluate", "infer")]
    steps = Steps([*names, "report"], progress)
    summary: dict[str, Any] = {"synthetic": True, "note": SYNTHETIC_NOTE, "settings": s}
    try:
        for task in tasks:
            summary[task] = run_task(task, s, sources[task], out, steps, quiet)
        report = write_report(summary, out, steps)
    finally:
        wall = steps.close()
    summary["wall_s"] = wall
    logger.info("demo finished in %.0f s; report: %s", wall, out / "report.md")
    return DemoResult(out, report, summary)
