"""Ablation table writer: per-fold and pooled statistics, every output labelled synthetic, paper numbers apart."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from monai_bone.constants import SYNTHETIC_NOTE
from monai_bone.cv import FoldPrediction, VariantResult, summarise_variant, write_ablation_table


def _variant(name: str, noise: float, folds: int = 3, n: int = 12, seed: int = 0) -> VariantResult:
    rng = np.random.default_rng(seed)
    res = VariantResult(name, name.upper(), "network", "WeightedSmoothL1")
    for f in range(folds):
        true = rng.normal(0.85, 0.12, n)
        res.folds.append(
            FoldPrediction(f, true + rng.normal(0, noise, n), true, [f"SYN-H-{f}{i:03d}" for i in range(n)])
        )
    return res


def _rows(path: Path) -> list[dict]:
    lines = path.read_text().splitlines()
    assert lines[0] == f"# {SYNTHETIC_NOTE}"
    return list(csv.DictReader(lines[1:]))


def test_summary_matches_folds() -> None:
    res = _variant("xattn", 0.05)
    row, per_fold = summarise_variant("hip", res, n_boot=50)
    mse = [np.mean((f.pred - f.true) ** 2) for f in res.folds]
    assert row["mse_mean"] == pytest.approx(np.mean(mse))
    assert row["mse_sd"] == pytest.approx(np.std(mse, ddof=1))
    pooled = np.mean(np.concatenate([(f.pred - f.true) ** 2 for f in res.folds]))
    assert row["mse_pooled"] == pytest.approx(pooled)
    assert row["mse_ci_low"] <= row["mse_pooled"] <= row["mse_ci_high"]
    assert [m["fold"] for m in per_fold] == [0, 1, 2] and row["n_pooled"] == 36


def test_hip_table_files(tmp_path: Path) -> None:
    results = [_variant("concat", 0.10, seed=1), _variant("xattn", 0.03, seed=1)]
    paths = write_ablation_table("hip", results, tmp_path, synthetic=True, oracle_r2=0.71, n_boot=50)
    rows = _rows(paths["csv"])
    assert [r["variant"] for r in rows] == ["concat", "xattn"]
    for r in rows:
        for key in ("mse", "mae", "r2", "auc", "f1"):
            for stat in ("mean", "sd", "pooled", "ci_low", "ci_high"):
                float(r[f"{key}_{stat}"])  # numeric
    assert float(rows[1]["r2_pooled"]) > float(rows[0]["r2_pooled"])
    md = paths["markdown"].read_text()
    assert "SYNTHETIC DATA" in md and "oracle R² (ceiling, from cohort.json): 0.710" in md
    assert "| XATTN | network | WeightedSmoothL1 |" in md
    assert "## Paper reported (not reproduced by this run" in md and "this run (pooled OOF, SYNTHETIC)" in md
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(_rows(paths["predictions"])) == 72 and len(_rows(paths["folds"])) == 6
    summary = json.loads(paths["json"].read_text())
    assert summary["synthetic"] is True and summary["note"] == SYNTHETIC_NOTE and len(summary["rows"]) == 2


def test_knee_table_and_real_data_label(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    res = VariantResult("hybrid", "HybridAttentionNet", "network", "BCE")
    for f in range(2):
        y = np.array([0, 1] * 8)
        res.folds.append(FoldPrediction(f, np.clip(0.3 + 0.4 * y + rng.normal(0, 0.1, 16), 0, 1), y))
    paths = write_ablation_table("knee", [res], tmp_path, synthetic=False, n_boot=50)
    first = paths["csv"].read_text().splitlines()[0]
    assert first.startswith("variant,") and "SYNTHETIC" not in paths["markdown"].read_text().split("## Paper")[0]
    row = next(csv.DictReader(paths["csv"].open()))
    assert float(row["accuracy_pooled"]) > 0.9 and float(row["loss_mean"]) > 0
    md = paths["markdown"].read_text()
    assert "| HybridAttentionNet | 0.8293 |" in md.split("## Paper reported")[1]  # only in the paper section


def test_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="task must be"):
        write_ablation_table("spine", [_variant("a", 0.1)], tmp_path, synthetic=True)
    with pytest.raises(ValueError, match="no variants"):
        write_ablation_table("hip", [], tmp_path, synthetic=True)
    with pytest.raises(ValueError, match="no fold predictions"):
        write_ablation_table("hip", [VariantResult("a", "A", "network")], tmp_path, synthetic=True)
