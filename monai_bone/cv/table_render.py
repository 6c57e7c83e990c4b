"""The human-readable parts of the ablation table: ``ablation.md`` (with the separate "paper reported" section) and
``ablation.png`` (the headline metric per variant, with the synthetic oracle ceiling when known).

Paper numbers (:data:`PAPER_REPORTED`) appear only in their own, clearly labelled section, never as a result of the run.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from monai_bone.constants import SCREENING_THRESHOLD, SYNTHETIC_NOTE
from monai_bone.utils.io import atomic_write_bytes
from monai_bone.utils.numbers import format_number

from .variant_summary import KNEE_METRICS, metrics_of, task_spec

__all__ = ["PAPER_REPORTED", "ablation_markdown", "ablation_plot"]

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
    return 4 if task_spec(task).is_regression and key in ("mse", "mae") else 3


def ablation_markdown(
    task: str,
    rows: Sequence[Mapping[str, Any]],
    synthetic: bool,
    oracle_r2: float | None,
    n_folds: int,
    n_boot: int,
    notes: Sequence[str],
) -> str:
    metrics = metrics_of(task)
    tag = " — SYNTHETIC DATA" if synthetic else ""
    regression = task_spec(task).is_regression
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


def ablation_plot(
    task: str, rows: Sequence[Mapping[str, Any]], synthetic: bool, oracle_r2: float | None, path: Path
) -> Path:
    # matplotlib is costly to import and only this figure needs it
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    regression = task_spec(task).is_regression
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
