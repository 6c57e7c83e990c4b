"""Ablation table of a cross-validation run: per-fold metrics, mean ± sd over folds, pooled bootstrap 95 % CI.

Every variant (baseline or network) contributes out-of-fold predictions: for each fold, the predictions of the model
trained without that fold on the studies of that fold. From them this module computes

- the metrics of each fold (``fold_metrics.csv``) and their mean ± sample SD over folds,
- the metric of the pooled out-of-fold predictions with a patient-level percentile bootstrap 95 % CI
  (:func:`monai_bone.metrics.bootstrap_ci` with ``groups``: patients resampled with replacement, all their studies
  kept), shown in its own column next to the per-fold mean ± SD,
- what the numbers are: ``split`` (training folds, out-of-fold), ``n_studies``, ``n_patients`` and
  ``selected_on_split`` (False: CV fits validate once after the last epoch, nothing is chosen on the held-out fold),

(:mod:`.variant_summary`) and writes ``ablation.csv`` (machine-readable, one row per variant), ``ablation.md``
(the table a reader sees), ``ablation.png`` (the headline metric per variant, with the synthetic oracle ceiling when
known) and ``oof_predictions.csv``. Synthetic runs are labelled SYNTHETIC in every file. Paper numbers appear only in a
separate, clearly labelled "paper reported" section, never as a result of this run (:mod:`.table_render`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from monai_bone.constants import SYNTHETIC_NOTE
from monai_bone.utils.io import atomic_write_csv, atomic_write_json, atomic_write_text
from monai_bone.utils.jsonsafe import json_safe

from .table_render import ablation_markdown, ablation_plot
from .variant_summary import VariantResult, metrics_of, summarise_variant, task_spec

__all__ = ["write_ablation_table"]


def write_ablation_table(
    task: str,
    results: Sequence[VariantResult],
    out_dir: str | os.PathLike,
    synthetic: bool,
    oracle_r2: float | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    notes: Sequence[str] = (),
    extra: Mapping[str, Any] | None = None,
    row_info: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Path]:
    """Write the ablation table of a CV run (CSV, Markdown, PNG, per-fold metrics, pooled predictions, JSON).

    Args:
        task: ``"hip"`` or ``"knee"``.
        results: one :class:`VariantResult` per table row, in display order.
        out_dir: output folder (created).
        synthetic: label every output as synthetic.
        oracle_r2: the synthetic generator's oracle R² (hip ceiling), when known.
        n_boot: bootstrap resamples for the pooled CI.
        seed: bootstrap seed.
        notes: extra lines for the Markdown "Notes" section (settings, deviations).
        extra: extra fields for ``ablation.json`` (run settings).
        row_info: per variant name, extra row fields (``flag``: the trivial-baseline flag, ``params``: parameter
            count).

    Returns:
        Paths by name: ``csv``, ``markdown``, ``png``, ``folds``, ``predictions``, ``json``.

    Raises:
        ValueError: for an unknown task, no results, or a variant without fold predictions.
    """
    task_spec(task)
    if not results:
        raise ValueError("no variants to tabulate")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    comment = SYNTHETIC_NOTE if synthetic else None
    rows, fold_rows, pred_rows = [], [], []
    for res in results:
        row, per_fold = summarise_variant(task, res, n_boot=n_boot, seed=seed)
        row["synthetic"] = synthetic
        row.update((row_info or {}).get(res.name, {}))
        rows.append(row)
        fold_rows += [{"variant": res.name, "loss": res.loss, **m} for m in per_fold]
        for f in res.folds:
            ids = f.ids or [""] * len(f.true)
            pred_rows += [
                {"variant": res.name, "loss": res.loss, "fold": f.fold, "id": i, "true": float(t), "pred": float(p)}
                for i, t, p in zip(ids, np.reshape(f.true, -1), np.reshape(f.pred, -1))
            ]
    n_folds = max(r["n_folds"] for r in rows)
    metric_keys = [k for k, _, _ in metrics_of(task)]
    stat_cols = [f"{k}_{s}" for k in metric_keys for s in ("mean", "sd", "pooled", "ci_low", "ci_high")]
    paths = {
        "csv": atomic_write_csv(
            out / "ablation.csv",
            rows,
            [
                "variant",
                "label",
                "kind",
                "loss",
                "n_folds",
                "n_pooled",
                "split",
                "n_studies",
                "n_patients",
                "selected_on_split",
                *stat_cols,
                "params",
                "flag",
                "synthetic",
            ],
            comment=comment,
        ),
        "folds": atomic_write_csv(
            out / "fold_metrics.csv", fold_rows, ["variant", "loss", "fold", "n", *metric_keys], comment=comment
        ),
        "predictions": atomic_write_csv(
            out / "oof_predictions.csv",
            pred_rows,
            ["variant", "loss", "fold", "id", "true", "pred"],
            comment=comment,
        ),
        "markdown": atomic_write_text(
            out / "ablation.md", ablation_markdown(task, rows, synthetic, oracle_r2, n_folds, n_boot, notes)
        ),
        "png": ablation_plot(task, rows, synthetic, oracle_r2, out / "ablation.png"),
    }
    summary = {
        "task": task,
        "synthetic": synthetic,
        **({"note": SYNTHETIC_NOTE} if synthetic else {}),
        "oracle_r2": oracle_r2,
        "n_boot": n_boot,
        "rows": json_safe(rows),
        **(dict(extra) if extra else {}),
    }
    paths["json"] = atomic_write_json(out / "ablation.json", summary)
    return paths
