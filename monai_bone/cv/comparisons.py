"""Paired comparisons between rows of a CV table: ``comparisons.csv`` / ``comparisons.md``.

Two models scored on the same out-of-fold studies are compared *paired*: the difference (and relative change, as the
XAttn-BMD paper states its gains) in MSE, MAE and R² with a paired patient-level bootstrap CI and p-value
(:func:`monai_bone.metrics.paired_bootstrap`), and ΔAUC with DeLong's test (:func:`monai_bone.metrics.delong_test`;
hip: screening AUC for BMD < 0.899 g/cm², knee: osteoporosis vs rest).

Pairs (:func:`default_pairs`): hip -- xattn vs concat, every network vs the best clinical baseline (lowest pooled MSE
among OST and the clinical-only models) and vs the trivial image baseline; knee -- hybrid vs densenet169, every
network vs the trivial image baseline. A network row that does not beat the trivial image baseline is flagged
(:func:`trivial_flags`).
"""

from __future__ import annotations

import io
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from monai_bone.constants import SCREENING_THRESHOLD, SYNTHETIC_NOTE
from monai_bone.metrics import delong_test, paired_bootstrap, screening_positive
from monai_bone.tasks import get_task
from monai_bone.utils.io import atomic_write_csv, atomic_write_text
from monai_bone.utils.numbers import format_number

from .table_render import PAPER_REPORTED
from .variant_summary import VariantResult

__all__ = [
    "COMPARISON_COLUMNS",
    "TRIVIAL",
    "align_predictions",
    "compare_pair",
    "default_pairs",
    "trivial_flags",
    "write_comparisons",
]

#: Name of the trivial image-statistics row.
TRIVIAL: str = "image_stats"
_CLINICAL = ("ost", "clinical_ridge", "clinical_gbm")

COMPARISON_COLUMNS: tuple[str, ...] = (
    "a",
    "b",
    "metric",
    "test",
    "value_a",
    "value_b",
    "diff",
    "diff_low",
    "diff_high",
    "rel_pct",
    "rel_low",
    "rel_high",
    "p_value",
    "n_studies",
    "n_patients",
    "synthetic",
)


def _pooled(res: VariantResult) -> tuple[list[tuple[int, str, int]], np.ndarray, np.ndarray]:
    keys, seen = [], Counter()
    for f in res.folds:
        ids = list(f.ids) if len(f.ids) == len(f.true) else [str(i) for i in range(len(f.true))]
        for i in ids:
            keys.append((int(f.fold), str(i), seen[(f.fold, i)]))
            seen[(f.fold, i)] += 1
    pred = np.concatenate([np.asarray(f.pred, dtype=float).reshape(-1) for f in res.folds])
    true = np.concatenate([np.asarray(f.true, dtype=float).reshape(-1) for f in res.folds])
    return keys, pred, true


def align_predictions(a: VariantResult, b: VariantResult) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Out-of-fold predictions of two rows on their common studies: ``(pred_a, pred_b, true, patient_ids)``.

    Studies are matched by (CV fold, patient id, occurrence), so a study dropped by one row only is left out.

    Raises:
        ValueError: when the rows share no study or disagree on a study's reference value.
    """
    ka, pa, ta = _pooled(a)
    kb, pb, tb = _pooled(b)
    where_b = {k: i for i, k in enumerate(kb)}
    ia = [i for i, k in enumerate(ka) if k in where_b]
    ib = [where_b[ka[i]] for i in ia]
    if not ia:
        raise ValueError(f"rows {a.name!r} and {b.name!r} share no out-of-fold study")
    if not np.allclose(ta[ia], tb[ib], atol=1e-6):
        raise ValueError(f"rows {a.name!r} and {b.name!r} disagree on reference values: not the same studies")
    return pa[ia], pb[ib], ta[ia], [ka[i][1] for i in ia]


def default_pairs(task: str, names: Sequence[str], pooled_mse: Mapping[str, float] | None = None) -> list[tuple]:
    """The comparisons of a table with rows ``names``: ``[(a, b), ...]`` (``a`` is the model under test)."""
    pairs: list[tuple[str, str]] = []
    nets = [n for n in names if n not in (*_CLINICAL, TRIVIAL)]
    if get_task(task).is_regression:
        if "xattn" in names and "concat" in names:
            pairs.append(("xattn", "concat"))
        clinical = [n for n in names if n in _CLINICAL]
        if clinical:
            mse = pooled_mse or {}
            best = min(clinical, key=lambda n: mse.get(n, math.inf))
            pairs += [(n, best) for n in nets]
    elif "hybrid" in names and "densenet169" in names:
        pairs.append(("hybrid", "densenet169"))
    if TRIVIAL in names:
        pairs += [(n, TRIVIAL) for n in nets]
    return list(dict.fromkeys(pairs))


def _mse(p: np.ndarray, t: np.ndarray) -> float:
    return float(np.mean((p - t) ** 2))


def _mae(p: np.ndarray, t: np.ndarray) -> float:
    return float(np.mean(np.abs(p - t)))


def _r2(p: np.ndarray, t: np.ndarray) -> float:
    ss = float(np.sum((t - t.mean()) ** 2))
    return 1.0 - float(np.sum((p - t) ** 2)) / ss if ss > 0 else math.nan


def _accuracy(p: np.ndarray, t: np.ndarray) -> float:
    return float(np.mean((p >= 0.5) == (t >= 0.5)))


def _brier(p: np.ndarray, t: np.ndarray) -> float:
    return float(np.mean((np.clip(p, 0, 1) - t) ** 2))


def compare_pair(
    task: str, a: VariantResult, b: VariantResult, n_boot: int = 1000, seed: int = 0
) -> list[dict[str, Any]]:
    """Paired comparison rows of ``a`` vs ``b`` (see the module docstring)."""
    pa, pb, t, ids = align_predictions(a, b)
    base = {"a": a.name, "b": b.name, "n_studies": int(t.size), "n_patients": len(set(ids))}
    out = []
    regression = get_task(task).is_regression
    classification = (("accuracy", _accuracy), ("brier", _brier))
    metrics = (("mse", _mse), ("mae", _mae), ("r2", _r2)) if regression else classification
    for name, fn in metrics:
        r = paired_bootstrap(fn, pa, pb, t, groups=ids, n_boot=n_boot, seed=seed)
        out.append(
            {
                **base,
                "metric": name,
                "test": "paired patient bootstrap",
                "value_a": r["a"],
                "value_b": r["b"],
                "diff": r["diff"],
                "diff_low": r["diff_low"],
                "diff_high": r["diff_high"],
                "rel_pct": r["rel"],
                "rel_low": r["rel_low"],
                "rel_high": r["rel_high"],
                "p_value": r["p_value"],
            }
        )
    y, sa, sb = (screening_positive(t, SCREENING_THRESHOLD), -pa, -pb) if regression else (t >= 0.5, pa, pb)
    try:
        d = delong_test(y.astype(float), sa, sb)
        auc = {"value_a": d["auc_a"], "value_b": d["auc_b"], "diff": d["diff"], "p_value": d["p_value"]}
        auc.update({"diff_low": d["diff_low"], "diff_high": d["diff_high"]})
    except ValueError:  # one class only among the common studies
        auc = {"value_a": math.nan, "value_b": math.nan, "diff": math.nan, "p_value": math.nan}
    rel = {"rel_pct": math.nan, "rel_low": math.nan, "rel_high": math.nan}
    out.append({**base, "metric": "auc", "test": "DeLong", **rel, **auc})
    return out


def trivial_flags(task: str, comparisons: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Flag per network row compared with the trivial image baseline (``""`` when it beats it with p < 0.05)."""
    key, better = ("mse", -1.0) if get_task(task).is_regression else ("auc", 1.0)
    flags = {}
    for c in comparisons:
        if c["b"] != TRIVIAL or c["metric"] != key:
            continue
        diff, p = c["diff"], c["p_value"]
        if not math.isfinite(diff) or better * diff <= 0:
            flags[c["a"]] = "DOES NOT BEAT the trivial image baseline"
        elif not math.isfinite(p) or p >= 0.05:
            flags[c["a"]] = "not significantly better than the trivial image baseline"
        else:
            flags[c["a"]] = ""
    return flags


def _f(v: Any, digits: int = 4) -> str:
    return format_number(v, f".{digits}g")


def _markdown(task: str, rows: Sequence[Mapping[str, Any]], synthetic: bool, n_boot: int) -> str:
    out = io.StringIO()
    out.write(f"# Paired comparisons ({task}){' — SYNTHETIC DATA' if synthetic else ''}\n\n")
    if synthetic:
        out.write(f"> **{SYNTHETIC_NOTE}.**\n\n")
    out.write(
        "Pooled out-of-fold predictions of both models on the same studies (split: training folds, out-of-fold; "
        "no model was selected on them). Δ = A − B with a paired patient-level bootstrap 95 % CI and two-sided "
        f"p-value ({n_boot} resamples); ΔAUC with DeLong's test (normal-approximation 95 % CI).\n\n"
    )
    out.write("| A | B | metric | test | A | B | Δ [95 % CI] | relative % [95 % CI] | p | n studies / patients |\n")
    out.write("|---|---|---|---|---|---|---|---|---|---|\n")
    for r in rows:
        ci = f"{_f(r['diff'])} [{_f(r.get('diff_low'))}, {_f(r.get('diff_high'))}]"
        rel = f"{_f(r['rel_pct'], 3)} [{_f(r['rel_low'], 3)}, {_f(r['rel_high'], 3)}]"
        out.write(
            f"| {r['a']} | {r['b']} | {r['metric']} | {r['test']} | {_f(r['value_a'])} | {_f(r['value_b'])} | {ci} | "
            f"{rel} | {_f(r['p_value'], 3)} | {r['n_studies']} / {r['n_patients']} |\n"
        )
    if task in PAPER_REPORTED and "relative" in PAPER_REPORTED[task]:  # the hip paper's xattn-vs-concat claim
        p = PAPER_REPORTED[task]
        out.write(
            f"\nPaper reported (not ours; {p['source']}): cross-attention vs concatenation "
            f"MSE {p['relative']['mse']:+.1f} %, MAE {p['relative']['mae']:+.2f} %, R² {p['relative']['r2']:+.1f} %.\n"
        )
    return out.getvalue()


def write_comparisons(
    task: str,
    results: Sequence[VariantResult],
    out_dir: str | Path,
    synthetic: bool,
    n_boot: int = 1000,
    seed: int = 0,
    pooled_mse: Mapping[str, float] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Path]]:
    """Run :func:`default_pairs` and write ``comparisons.csv`` and ``comparisons.md``; returns the rows and paths."""
    by_name = {r.name: r for r in results}
    rows: list[dict[str, Any]] = []
    for a, b in default_pairs(task, list(by_name), pooled_mse):
        rows += [{**r, "synthetic": synthetic} for r in compare_pair(task, by_name[a], by_name[b], n_boot, seed)]
    out = Path(out_dir)
    paths = {
        "comparisons_csv": atomic_write_csv(
            out / "comparisons.csv", rows, COMPARISON_COLUMNS, comment=SYNTHETIC_NOTE if synthetic else None
        ),
        "comparisons_md": atomic_write_text(out / "comparisons.md", _markdown(task, rows, synthetic, n_boot)),
    }
    return rows, paths
