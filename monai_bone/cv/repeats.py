"""Repeated cross-validation: the same CV with ``R`` fold seeds, and the spread of every row's pooled metrics.

A single K-fold split is one draw: rows can swap places under another split. :func:`repeat_datalist` writes a copy of
the datalist whose *training-split* records get new patient-disjoint, stratified folds from another seed (the locked
test split is copied unchanged, never folded); :func:`write_repeat_summary` tabulates each row's pooled metrics over
the repeats (``repeats.csv``: one line per row and repeat, and ``repeats.md``: mean ± SD and range over repeats).
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from monai_bone.constants import SYNTHETIC_NOTE
from monai_bone.data.fold_assign import assign_folds, bmd_strata
from monai_bone.data.folds import DATALIST_KEY
from monai_bone.data.splits import is_test
from monai_bone.tasks import get_task
from monai_bone.utils.io import atomic_write_csv, atomic_write_json, atomic_write_text

__all__ = ["repeat_datalist", "write_repeat_summary"]


def repeat_datalist(datalist: Path, out: Path, task: str, seed: int) -> Path:
    """A copy of ``datalist`` at ``out`` with the training records re-folded with ``seed`` (absolute image paths)."""
    doc = json.loads(Path(datalist).read_text(encoding="utf-8"))
    base = Path(datalist).parent
    records = doc[DATALIST_KEY]
    for r in records:
        r["image"] = str((base / r["image"]).resolve())
    train = [r for r in records if not is_test(r)]
    groups = [str(r.get("patient_id") or r["image"]) for r in train]
    k = int(doc.get("num_folds") or len({r["fold"] for r in train}))
    spec = get_task(task)
    if spec.is_regression:
        strata = bmd_strata([r.get(spec.label_key) for r in train], max(1, min(5, len(set(groups)) // k)))
    else:
        strata = [int(r[spec.label_key]) if r.get(spec.label_key) is not None else -1 for r in train]
    for r, fold in zip(train, assign_folds(groups, strata, k, seed)):
        r["fold"] = fold
    doc["seed"] = int(seed)
    doc["source"] = str((base / str(doc.get("source", "."))).resolve()) if doc.get("source") else doc.get("source")
    return atomic_write_json(out, doc)


def write_repeat_summary(
    task: str, repeats: Sequence[Sequence[Mapping[str, Any]]], out_dir: Path, synthetic: bool
) -> dict[str, Path]:
    """``repeats.csv`` (row × repeat pooled metrics) and ``repeats.md`` (mean ± SD, min–max over repeats)."""
    regression = get_task(task).is_regression
    keys = ("mse", "mae", "r2", "auc") if regression else ("auc", "accuracy", "sensitivity", "specificity")
    lines = [
        {"variant": row["variant"], "repeat": i, **{k: row.get(f"{k}_pooled") for k in keys}}
        for i, rows in enumerate(repeats)
        for row in rows
    ]
    md = io.StringIO()
    md.write(f"# Repeated CV ({len(repeats)} fold seeds){' — SYNTHETIC DATA' if synthetic else ''}\n\n")
    md.write("Pooled out-of-fold metric per repeat: mean ± SD over repeats [min, max].\n\n")
    md.write("| Variant | " + " | ".join(keys) + " |\n|" + "---|" * (1 + len(keys)) + "\n")
    for name in dict.fromkeys(line["variant"] for line in lines):
        cells = []
        for k in keys:
            v = np.array([float(x[k]) for x in lines if x["variant"] == name and x[k] is not None], dtype=float)
            v = v[np.isfinite(v)]
            sd = float(v.std(ddof=1)) if v.size > 1 else math.nan
            cells.append(f"{v.mean():.4f} ± {sd:.4f} [{v.min():.4f}, {v.max():.4f}]" if v.size else "n/a")
        md.write(f"| {name} | " + " | ".join(cells) + " |\n")
    comment = SYNTHETIC_NOTE if synthetic else None
    return {
        "repeats_csv": atomic_write_csv(out_dir / "repeats.csv", lines, ["variant", "repeat", *keys], comment=comment),
        "repeats_md": atomic_write_text(out_dir / "repeats.md", md.getvalue()),
    }
