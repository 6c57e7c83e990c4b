"""Ablation table of a cross-validation run: per-fold metrics, mean ± sd over folds, pooled bootstrap 95 % CI.

Every variant (baseline or network) contributes out-of-fold predictions: for each fold, the predictions of the model
trained without that fold on the studies of that fold. From them this module computes

- the metrics of each fold (``fold_metrics.csv``) and their mean ± sample SD over folds,
- the metric of the pooled out-of-fold predictions with a patient-level percentile bootstrap 95 % CI
  (:func:`monai_bone.metrics.bootstrap_ci` with ``groups``: patients resampled with replacement, all their studies
  kept), shown in its own column next to the per-fold mean ± SD,
- what the numbers are: ``split`` (training folds, out-of-fold), ``n_studies``, ``n_patients`` and
  ``selected_on_split`` (False: CV fits validate once after the last epoch, nothing is chosen on the held-out fold),

and writes ``ablation.csv`` (machine-readable, one row per variant), ``ablation.md`` (the table a reader sees),
``ablation.png`` (the headline metric per variant, with the synthetic oracle ceiling when known) and
``oof_predictions.csv``. Synthetic runs are labelled SYNTHETIC in every file. Paper numbers appear only in a separate,
clearly labelled "paper reported" section, never as a result of this run.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from monai_bone.constants import SCREENING_THRESHOLD, SYNTHETIC_NOTE
from monai_bone.metrics import bootstrap_ci, classification_table, regression_metrics, screening_metrics
from monai_bone.tasks import TaskSpec, get_task, task_names
from monai_bone.utils.io import atomic_write_bytes, atomic_write_csv, atomic_write_json, atomic_write_text
from monai_bone.utils.jsonsafe import json_safe
from monai_bone.utils.numbers import format_number

__all__ = [
    "HIP_METRICS",
    "KNEE_METRICS",
    "PAPER_REPORTED",
    "format_number",
    "FoldPrediction",
    "VariantResult",
    "fold_metric_values",
    "summarise_variant",
    "write_ablation_table",
]

#: Hip columns: (key, label, lower-is-better). Regression vs DXA BMD plus screening at the 0.899 g/cm^2 threshold.
HIP_METRICS: tuple[tuple[str, str, bool], ...] = (
    ("mse", "MSE (g/cm²)²", True),
    ("mae", "MAE g/cm²", True),
    ("r2", "R²", False),
    ("auc", "ROC-AUC", False),
    ("precision", "Precision", False),
    ("recall", "Recall", False),
    ("f1", "F1", False),
)
#: Knee columns: the paper's Table I set (Table II definitions) plus ROC-AUC.
KNEE_METRICS: tuple[tuple[str, str, bool], ...] = (
    ("sensitivity", "Sensitivity", False),
    ("specificity", "Specificity", False),
    ("precision", "Precision", False),
    ("fpr", "FPR", True),
    ("accuracy", "Accuracy", False),
    ("f1", "F1", False),
    ("loss", "Loss (BCE)", True),
    ("auc", "ROC-AUC", False),
)

#: Published numbers, shown only in a separate "paper reported" section (never as ours).
PAPER_REPORTED: dict[str, dict[str, Any]] = {
    "knee": {
        "source": "Hybrid attention network paper, Table I (KOP dataset, 72 test images, single split)",
        "rows": {
            "HybridAttentionNet": {
                "sensitivity": 0.8293,
                "specificity": 0.8710,
                "precision": 0.8947,
                "fpr": 0.1290,
                "accuracy": 0.8472,
                "f1": 0.8608,
                "loss": 0.5834,
            },
            "DenseNet169": {"accuracy": 0.8289},
        },
    },
    "hip": {
        "source": "XAttn-BMD paper (Hertfordshire cohort, n = 233, 10-fold CV): cross-attention vs concatenation",
        "relative": {"mse": -16.7, "mae": -6.03, "r2": 16.4},
    },
}


@dataclass
class FoldPrediction:
    """Out-of-fold predictions of one variant on one held-out fold.

    Args:
        fold: the CV fold index (0-based).
        pred: predictions, ``(N,)`` (hip: BMD g/cm²; knee: probability of osteoporosis).
        true: reference values, ``(N,)`` (hip: DXA BMD; knee: class index 0/1).
        ids: study identifiers (pseudonymous patient IDs) in the same order.
    """

    fold: int
    pred: np.ndarray
    true: np.ndarray
    ids: list[str] = field(default_factory=list)


@dataclass
class VariantResult:
    """All folds of one row of the ablation table.

    Args:
        name: short machine name (``"xattn"``, ``"ost"``, ...).
        label: human-readable row label.
        kind: ``"baseline"`` (no image; scikit-learn / formula) or ``"network"``.
        loss: training loss of networks (``"WeightedSmoothL1"``, ``"SmoothL1"``, ``"BCEWithLogits"``), ``"-"`` for
            baselines.
        folds: the fold predictions.
    """

    name: str
    label: str
    kind: str
    loss: str = "-"
    folds: list[FoldPrediction] = field(default_factory=list)


def _spec(task: str) -> TaskSpec:
    """The registered task ``task`` (``ValueError`` "task must be one of ..." otherwise)."""
    if task not in task_names():
        raise ValueError(f"task must be one of {list(task_names())}, got {task!r}")
    return get_task(task)


def _metric_fn(task: str) -> Callable[[np.ndarray, np.ndarray], dict[str, float]]:
    spec = _spec(task)
    if spec.is_regression:

        def hip(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
            reg = regression_metrics(pred, true)
            scr = screening_metrics(pred, true, threshold=spec.screening_threshold)
            out = {k: reg[k] for k in ("mse", "mae", "r2")}
            out.update({k: scr[k] for k in ("auc", "precision", "recall", "f1")})
            return out

        return hip

    def knee(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
        tab = classification_table(np.clip(pred, 0.0, 1.0), true.astype(int))
        return {k: float(tab[k]) for k, _, _ in KNEE_METRICS}

    return knee


def _metrics_of(task: str) -> tuple[tuple[str, str, bool], ...]:
    return HIP_METRICS if _spec(task).is_regression else KNEE_METRICS


def fold_metric_values(task: str, result: VariantResult) -> list[dict[str, Any]]:
    """Metrics of each fold of ``result`` (one dict per fold, with ``fold`` and ``n``)."""
    fn = _metric_fn(task)
    return [{"fold": f.fold, "n": int(len(f.true)), **fn(f.pred, f.true)} for f in result.folds]


def _nan_stats(values: Sequence[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=float)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        return math.nan, math.nan
    return float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else math.nan


def summarise_variant(
    task: str, result: VariantResult, n_boot: int = 1000, seed: int = 0
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Mean ± sd over folds and the pooled out-of-fold metric with a bootstrap CI, for each metric.

    Args:
        task: ``"hip"`` or ``"knee"``.
        result: the variant's fold predictions.
        n_boot: bootstrap resamples of the pooled predictions.
        seed: bootstrap seed (the same for every variant, so CIs are paired across rows).

    Returns:
        ``(row, per_fold)``: the ablation-table row (``{metric}_mean``, ``_sd``, ``_pooled``, ``_ci_low``,
        ``_ci_high``) and the per-fold metric dicts.

    Raises:
        ValueError: when the variant has no fold predictions.
    """
    if not result.folds:
        raise ValueError(f"variant {result.name!r} has no fold predictions")
    fn = _metric_fn(task)
    per_fold = fold_metric_values(task, result)
    pred = np.concatenate([np.asarray(f.pred, dtype=float).reshape(-1) for f in result.folds])
    true = np.concatenate([np.asarray(f.true, dtype=float).reshape(-1) for f in result.folds])
    pooled = fn(pred, true)
    row: dict[str, Any] = {
        "variant": result.name,
        "label": result.label,
        "kind": result.kind,
        "loss": result.loss,
        "n_folds": len(result.folds),
        "n_pooled": int(pred.size),
    }
    # one metric evaluation per resample, shared by all metrics: bootstrap_ci draws the same indices for the same
    # seed, and the resampled index vector identifies the resample
    cache: dict[bytes, dict[str, float]] = {}

    def resample_metrics(p: np.ndarray, t: np.ndarray, idx: np.ndarray) -> dict[str, float]:
        k = idx.tobytes()
        if k not in cache:
            try:
                cache[k] = fn(p, t)
            except ValueError:  # e.g. a resample with constant truth
                cache[k] = {}
        return cache[k]

    index = np.arange(pred.size)
    ids = [str(i) for f in result.folds for i in (f.ids if len(f.ids) == len(f.true) else [])]
    groups = ids if len(ids) == pred.size and all(ids) else None
    row.update(
        {
            "split": "train folds (out-of-fold)",
            "n_studies": int(pred.size),
            "n_patients": len(set(ids)) if groups is not None else int(pred.size),
            "selected_on_split": False,
        }
    )
    for key, _, _ in _metrics_of(task):
        mean, sd = _nan_stats([m[key] for m in per_fold])
        ci = bootstrap_ci(
            lambda p, t, i, key=key: float(resample_metrics(p, t, i).get(key, math.nan)),
            pred,
            true,
            index,
            n_boot=n_boot,
            seed=seed,
            groups=groups,
        )
        row.update(
            {
                f"{key}_mean": mean,
                f"{key}_sd": sd,
                f"{key}_pooled": float(pooled[key]),
                f"{key}_ci_low": ci["low"],
                f"{key}_ci_high": ci["high"],
            }
        )
    return row, per_fold


def _fmt(v: float, digits: int = 3) -> str:
    return format_number(v, f".{digits}f")


def _cell(row: Mapping[str, Any], key: str, digits: int) -> str:
    """Two cells: pooled out-of-fold value [patient bootstrap 95 % CI], and per-fold mean ± SD."""
    mean, sd = row[f"{key}_mean"], row[f"{key}_sd"]
    lo, hi = row[f"{key}_ci_low"], row[f"{key}_ci_high"]
    sd_txt = f" ± {_fmt(sd, digits)}" if math.isfinite(sd) else ""
    pooled = f"{_fmt(row[f'{key}_pooled'], digits)} [{_fmt(lo, digits)}, {_fmt(hi, digits)}]"
    return f"{pooled} | {_fmt(mean, digits)}{sd_txt}"


def _digits(task: str, key: str) -> int:
    return 4 if _spec(task).is_regression and key in ("mse", "mae") else 3


def _markdown(
    task: str,
    rows: Sequence[Mapping[str, Any]],
    synthetic: bool,
    oracle_r2: float | None,
    n_folds: int,
    n_boot: int,
    notes: Sequence[str],
) -> str:
    metrics = _metrics_of(task)
    tag = " — SYNTHETIC DATA" if synthetic else ""
    regression = _spec(task).is_regression
    title = "Hip BMD ablation" if regression else "Knee osteoporosis classification (Table I set)"
    out = io.StringIO()
    out.write(f"# {title}, {n_folds}-fold cross-validation{tag}\n\n")
    if synthetic:
        out.write(f"> **{SYNTHETIC_NOTE}.** These numbers describe the synthetic generator, not patients.\n\n")
    out.write(
        "Split: training folds, out-of-fold predictions (the locked test split is never read); no model was selected "
        "on the held-out folds (selected_on_split: false). For each metric: the pooled out-of-fold value [95 % CI, "
        f"patient-level percentile bootstrap, {n_boot} resamples], then the per-fold mean ± SD.\n"
    )
    if regression:
        out.write(f"Screening metrics: BMD < {SCREENING_THRESHOLD} g/cm² (T = −1) is positive.\n")
    if oracle_r2 is not None and math.isfinite(oracle_r2):
        out.write(f"\n**Synthetic oracle R² (ceiling, from cohort.json): {oracle_r2:.3f}** — no model can exceed it.\n")
    heads = [h for _, lbl, _ in metrics for h in (f"{lbl} pooled [95 % CI]", f"{lbl} folds mean ± SD")]
    flagged = any(r.get("flag") for r in rows)
    extra_heads = ["n studies / patients", "Params"] + (["Flag"] if flagged else [])
    out.write("\n| Variant | Kind | Loss | " + " | ".join([*heads, *extra_heads]) + " |\n")
    out.write("|" + "---|" * (3 + len(heads) + len(extra_heads)) + "\n")
    for r in rows:
        cells = [_cell(r, k, _digits(task, k)) for k, _, _ in metrics]
        params = r.get("params")
        cells += [f"{r.get('n_studies', r['n_pooled'])} / {r.get('n_patients', '?')}", f"{params:,}" if params else "-"]
        if flagged:
            cells.append(f"**{r['flag']}**" if r.get("flag") else "")
        out.write(f"| {r['label']} | {r['kind']} | {r['loss']} | " + " | ".join(cells) + " |\n")

    out.write(
        f"\n## Paper reported (not reproduced by this run{'; real cohort vs synthetic here' if synthetic else ''})\n\n"
    )
    paper = PAPER_REPORTED[task]
    out.write(f"Source: {paper['source']}.\n\n")
    if not regression:
        keys = [k for k, _, _ in KNEE_METRICS if k != "auc"]
        out.write("| Model (paper reported) | " + " | ".join(keys) + " |\n|" + "---|" * (1 + len(keys)) + "\n")
        for name, vals in paper["rows"].items():
            out.write(f"| {name} | " + " | ".join(_fmt(vals.get(k, math.nan), 4) for k in keys) + " |\n")
    else:
        by_name = {r["variant"]: r for r in rows}
        xa, cc = by_name.get("xattn"), by_name.get("concat")
        out.write("| Relative change, cross-attention vs concatenation | MSE | MAE | R² |\n|---|---|---|---|\n")
        p = paper["relative"]
        out.write(f"| paper reported | {p['mse']:+.1f} % | {p['mae']:+.2f} % | {p['r2']:+.1f} % |\n")
        if xa and cc:
            rel = {
                k: 100.0 * (xa[f"{k}_pooled"] - cc[f"{k}_pooled"]) / abs(cc[f"{k}_pooled"])
                if cc[f"{k}_pooled"]
                else math.nan
                for k in ("mse", "mae", "r2")
            }
            lab = "this run (pooled OOF" + (", SYNTHETIC)" if synthetic else ")")
            out.write(f"| {lab} | {rel['mse']:+.1f} % | {rel['mae']:+.2f} % | {rel['r2']:+.1f} % |\n")
    if notes:
        out.write("\n## Notes\n\n" + "".join(f"- {n}\n" for n in notes))
    return out.getvalue()


def _plot(task: str, rows: Sequence[Mapping[str, Any]], synthetic: bool, oracle_r2: float | None, path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    regression = _spec(task).is_regression
    key, label = ("r2", "R² (vs DXA BMD)") if regression else ("accuracy", "Accuracy")
    fig = Figure(figsize=(max(5.5, 0.9 * len(rows) + 2), 4.6), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(rows))
    mean = np.array([r[f"{key}_mean"] for r in rows], dtype=float)
    sd = np.nan_to_num(np.array([r[f"{key}_sd"] for r in rows], dtype=float))
    pooled = np.array([r[f"{key}_pooled"] for r in rows], dtype=float)
    lo = np.array([r[f"{key}_ci_low"] for r in rows], dtype=float)
    hi = np.array([r[f"{key}_ci_high"] for r in rows], dtype=float)
    colours = ["#999999" if r["kind"] == "baseline" else "#3b75af" for r in rows]
    ax.bar(x, np.nan_to_num(mean), yerr=sd, color=colours, capsize=3, label="mean ± SD over folds")
    ax.errorbar(
        x + 0.25,
        pooled,
        yerr=[np.nan_to_num(pooled - lo), np.nan_to_num(hi - pooled)],
        fmt="o",
        color="black",
        ms=3,
        capsize=2,
        label="pooled OOF, bootstrap 95 % CI",
    )
    if oracle_r2 is not None and regression and math.isfinite(oracle_r2):
        ax.axhline(oracle_r2, color="firebrick", ls="--", lw=1, label=f"synthetic oracle R² {oracle_r2:.3f}")
    ax.axhline(0.0, color="black", lw=0.5)
    ax.set_xticks(x)
    names = [f"{r['variant']} ({r['loss']})" if r["loss"] != "-" else r["variant"] for r in rows]
    ax.set_xticklabels(names, fontsize=7, rotation=30, ha="right")
    ax.set_ylabel(label)
    ax.legend(fontsize=7, loc="best")
    title = f"{task.capitalize()} CV ablation: {label}"
    ax.set_title(
        f"SYNTHETIC - {title}" if synthetic else title, fontsize=10, color="firebrick" if synthetic else "black"
    )
    if synthetic:
        fig.text(0.5, 0.005, SYNTHETIC_NOTE, ha="center", va="bottom", fontsize=7, color="firebrick")
    fig.tight_layout(rect=(0, 0.03 if synthetic else 0, 1, 1))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return atomic_write_bytes(path, buf.getvalue())


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
    _spec(task)
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
    metric_keys = [k for k, _, _ in _metrics_of(task)]
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
            out / "ablation.md", _markdown(task, rows, synthetic, oracle_r2, n_folds, n_boot, notes)
        ),
        "png": _plot(task, rows, synthetic, oracle_r2, out / "ablation.png"),
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
