"""The locked test split after a CV: each network row scored once by the bundle's ``evaluate.json``.

The model is the row's fold-:data:`TEST_FIT_FOLD` fit (trained on the other folds of the training split, validated
once after its last epoch, so nothing was selected on the test split). The operating-point thresholds (Youden, 90 %
sensitivity) of its report are chosen on the row's pooled out-of-fold predictions (``oof_predictions.csv``,
``threshold_variant`` = the row): training-split records only, each predicted by a fit that did not train on it.
No test record enters a fit, a threshold or a selection; the report says ``selected_on_split: false``.

The baselines (OST, clinical ridge, trivial image statistics; knee: the trivial logistic) are fitted on the same
training folds as the fold-0 fit and scored on the same test studies; each network row is compared with each baseline,
paired by study (:func:`~monai_bone.cv.split_paired.paired_vs_baselines`: patient bootstrap of R², DeLong for AUC).

Outputs: ``<out>/test/<row>/`` (the bundle report: ``metrics.json``, ``report.md``, ``predictions.csv``, plots),
``<out>/test_split.csv`` / ``.md`` (one line per row and baseline, then the paired lines) and
``<out>/test_split_paired.csv``.
"""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from monai_bone.bundle import bundle_workflow, no_checkpoint_overrides, quiet_engines
from monai_bone.constants import SYNTHETIC_NOTE
from monai_bone.tasks import get_task
from monai_bone.utils.io import atomic_write_csv, atomic_write_text
from monai_bone.utils.numbers import format_number

from .split_baselines import baseline_predictions, score_baselines
from .split_paired import paired_lines, paired_vs_baselines

__all__ = [
    "TEST_FIT_FOLD",
    "evaluate_test_split",
    "keep_model_overrides",
    "score_test_split",
    "scored_rows",
    "write_test_summary",
]

logger = logging.getLogger(__name__)

#: The CV fold whose fit is kept and scored on the locked test split.
TEST_FIT_FOLD: int = 0


def keep_model_overrides(bundle: str | os.PathLike) -> dict[str, Any]:
    """Overrides keeping only the final ``models/model.pt`` of a CV fit (no per-epoch training state)."""
    return no_checkpoint_overrides(bundle, keep_best=True)


def evaluate_test_split(
    bundle: str | os.PathLike,
    datalist: str | os.PathLike,
    row: str,
    model_dir: str | os.PathLike,
    threshold_predictions: str | os.PathLike,
    out_dir: str | os.PathLike,
    overrides: Mapping[str, Any],
    quiet: bool = True,
) -> dict[str, Any]:
    """Score the locked test split with a kept CV fit through the bundle's ``evaluate.json``.

    Args:
        bundle: bundle folder.
        datalist: the CV's datalist (with a locked test split).
        row: the CV row (``threshold_variant``: its rows of ``threshold_predictions`` choose the thresholds).
        model_dir: the fit's ``models`` folder (``model.pt``, clinical statistics, ROI localiser).
        threshold_predictions: the CV's ``oof_predictions.csv``.
        out_dir: report folder.
        overrides: the row's bundle overrides (settings, fusion, network, loss).
        quiet: mute engine logs.

    Returns:
        The report's ``metrics.json``.

    Raises:
        FileNotFoundError: the fit kept no ``model.pt``.
    """
    model = Path(model_dir) / "model.pt"
    if not model.is_file():
        raise FileNotFoundError(f"{model}: the CV fit kept no model to score the test split with")
    out = Path(out_dir)
    params = {
        **overrides,
        "datalist": str(Path(datalist).resolve()),
        "ckpt_dir": str(Path(model_dir).resolve()),
        "output_dir": str(out.resolve()),
        # nothing of this run goes into the bundle folder (its default log/cache location)
        "log_dir": str((out / "runs").resolve()),
        "cache_dir": str((out / "cache").resolve()),
        "eval_part": "test",
        "threshold_predictions": str(Path(threshold_predictions).resolve()),
        "threshold_variant": row,
    }
    with quiet_engines(quiet):
        wf = bundle_workflow(bundle, ("train.json", "evaluate.json"), "train", **params)
        try:
            wf.initialize()
            wf.run()
        finally:
            wf.finalize()
    return json.loads((out / "metrics.json").read_text(encoding="utf-8"))


def _headline(task: str) -> tuple[str, ...]:
    return ("mse", "mae", "r2") if get_task(task).is_regression else ("accuracy", "sensitivity", "specificity", "auc")


def write_test_summary(
    task: str,
    metrics: Mapping[str, Mapping[str, Any]],
    out_dir: Path,
    synthetic: bool,
    baselines: Mapping[str, Any] | None = None,
    paired: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
) -> dict[str, Path]:
    """``test_split.csv`` / ``test_split.md``: one line per row scored on the locked test split, then one per baseline
    (``baselines``: :func:`~.split_baselines.score_baselines`), then the paired lines of each row (``paired``: row →
    :func:`~.split_paired.paired_vs_baselines` rows, also written to ``test_split_paired.csv``)."""
    keys = _headline(task)
    rows: list[dict[str, Any]] = []
    for row, m in metrics.items():
        ops = m.get("operating_points") or {}
        rows.append(
            {
                "variant": row,
                "model": f"CV fold {TEST_FIT_FOLD} fit",
                "split": m.get("split"),
                "n_studies": m.get("n_studies"),
                "n_patients": m.get("n_patients"),
                "selected_on_split": m.get("selected_on_split"),
                **{k: m.get(k) for k in keys},
                "thresholds_chosen_on": ops.get("thresholds_chosen_on"),
                "report": f"test/{row}/metrics.json",
            }
        )
    rows += _baseline_rows(baselines, keys)
    columns = list(rows[0]) if rows else ["variant"]
    md = io.StringIO()
    md.write(f"# Locked test split ({task}){' — SYNTHETIC DATA' if synthetic else ''}\n\n")
    md.write(
        f"Each network row's CV fold-{TEST_FIT_FOLD} fit (trained on the other training folds; nothing selected on "
        "the test split) scored once by the bundle's evaluate.json. Operating-point thresholds are chosen on the "
        "row's out-of-fold predictions of the training split (oof_predictions.csv), never on test records.\n\n"
    )
    md.write("| variant | split | n studies | n patients | " + " | ".join(keys) + " | thresholds chosen on |\n")
    md.write("|" + "---|" * (5 + len(keys)) + "\n")
    for r in rows:
        cells = " | ".join(format_number(r[k], ".3f") for k in keys)
        md.write(
            f"| {r['variant']} | {r['split']} | {r['n_studies']} | {r['n_patients']} | {cells} | "
            f"{r['thresholds_chosen_on']} |\n"
        )
    flat = [dict(r, row=row) for row, rs in (paired or {}).items() for r in rs]
    if flat:
        md.write("\nPaired on the same test studies (each network row vs each baseline fitted on the same folds):\n\n")
        for row, rs in (paired or {}).items():
            md.writelines(f"- {line}\n" for line in paired_lines(task, rs, "test", subject=row))
    if synthetic:
        md.write(f"\n{SYNTHETIC_NOTE}.\n")
    comment = SYNTHETIC_NOTE if synthetic else None
    out = {
        "test_split_csv": atomic_write_csv(out_dir / "test_split.csv", rows, columns, comment=comment),
        "test_split_md": atomic_write_text(out_dir / "test_split.md", md.getvalue()),
    }
    if flat:
        out["test_split_paired_csv"] = atomic_write_csv(
            out_dir / "test_split_paired.csv", flat, list(flat[0]), comment=comment
        )
    return out


def _baseline_rows(baselines: Mapping[str, Any] | None, keys: Sequence[str]) -> list[dict[str, Any]]:
    """Summary rows of the baselines scored on the test split (fitted on the fold-0 fit's training folds)."""
    if not baselines:
        return []
    return [
        {
            "variant": name,
            "model": f"baseline, fitted on the CV fold-{TEST_FIT_FOLD} training folds",
            "split": baselines.get("split"),
            "n_studies": baselines.get("n_studies"),
            "n_patients": baselines.get("n_patients"),
            "selected_on_split": False,
            **{k: m.get(k) for k in keys},
            "thresholds_chosen_on": "-",
            "report": "-",
        }
        for name, m in baselines.get("rows", {}).items()
    ]


def scored_rows(results: Sequence[Any]) -> list[str]:
    """The rows scored on the test split: the network rows (baselines have no bundle model)."""
    return [r.name for r in results if r.kind == "network"]


def score_test_split(
    task: str,
    bundle: Path,
    datalist: Path,
    model_dirs: Mapping[str, Path],
    oof_csv: Path,
    row_overrides: Mapping[str, Mapping[str, Any]],
    out_dir: Path,
    synthetic: bool,
    quiet: bool = True,
    seed: int = 0,
    n_boot: int = 1000,
    val_folds: Sequence[int] = (TEST_FIT_FOLD,),
) -> dict[str, Path]:
    """Score every row of ``model_dirs`` and the baselines on the locked test split and write the summary.

    Args:
        task: the task.
        bundle: bundle folder.
        datalist: the CV's datalist.
        model_dirs: row → the kept fit's ``models`` folder.
        oof_csv: the CV's ``oof_predictions.csv`` (the thresholds' training-split predictions).
        row_overrides: row → its bundle overrides.
        out_dir: the CV output folder (reports under ``test/<row>/``).
        synthetic: label the summary SYNTHETIC.
        quiet: mute engine logs.
        seed: random state of the baselines and of the paired bootstrap.
        n_boot: paired bootstrap resamples.
        val_folds: the datalist folds the kept fit held out (its CV fold's group); the baselines train on the others.

    Returns:
        Written paths: ``test_<row>`` (each ``metrics.json``), ``test_split_csv``, ``test_split_md``,
        ``test_split_paired_csv``.
    """
    paths: dict[str, Path] = {}
    metrics: dict[str, dict[str, Any]] = {}
    for row, model_dir in model_dirs.items():
        logger.info("%s: scoring the locked test split with the CV fold-%d fit", row, TEST_FIT_FOLD)
        report = out_dir / "test" / row
        metrics[row] = evaluate_test_split(bundle, datalist, row, model_dir, oof_csv, report, row_overrides[row], quiet)
        paths[f"test_{row}"] = report / "metrics.json"
    if metrics:
        held_out = list(val_folds)
        fitted = baseline_predictions(task, datalist, held_out, seed)
        baselines = score_baselines(task, datalist, held_out, seed, fitted)
        paired = {
            row: paired_vs_baselines(task, datalist, out_dir / "test" / row / "predictions.csv", held_out,
                                     seed, n_boot, fitted)
            for row in metrics
        }  # fmt: skip
        paths.update(write_test_summary(task, metrics, out_dir, synthetic, baselines, paired))
    return paths
