"""Smoke test of benchmarks/accuracy.py (--smoke: tiny cohorts, 2 folds, 1 epoch through the real CV runner).

The numbers of such a run mean nothing; the checks are about the report: every row and field, goals computed from
the rows, the oracle taken from the generator, the mode recorded and the caveat printed.
"""

from __future__ import annotations

import json
import math

import pytest
from _bench_test_utils import check_environment, load

HIP_VARIANTS = {"xattn", "concat", "image", "clinical", "clinical_ridge", "clinical_gbm", "ost"}
HIP_KEYS = ("r2", "mse", "mae", "auc", "precision", "recall", "f1")
KNEE_KEYS = ("auc", "sensitivity", "specificity", "precision", "fpr", "accuracy", "f1", "loss")


def _check_row(row: dict, keys: tuple[str, ...], n: int) -> None:
    assert {"variant", "label", "kind", "loss_fn", "n"} <= set(row) and row["n"] == n
    for k in keys:
        assert k in row and f"{k}_fold_mean" in row and len(row[f"{k}_ci"]) == 2
        assert row[k] is None or math.isfinite(row[k])


def _n_train(datalist) -> int:
    """Studies the CV pools: the training split (the default locked test split never enters the CV)."""
    n = sum(r["split"] == "train" for r in json.loads(datalist.read_text())["training"])
    assert 0 < n < len(json.loads(datalist.read_text())["training"])
    return n


def test_smoke_run_writes_a_complete_report(tmp_path, capsys):
    bench = load("accuracy")
    work = tmp_path / "work"
    report = bench.main(["--smoke", "--out", str(tmp_path / "out"), "--workdir", str(work)])
    saved = json.loads((tmp_path / "out" / "accuracy.json").read_text())
    assert saved == json.loads(json.dumps(report))
    top = {"benchmark", "command", "synthetic", "note", "hip", "knee", "environment", "settings", "meets_goal"}
    assert set(saved) == top
    assert saved["command"] == f"python benchmarks/accuracy.py --smoke --out {tmp_path / 'out'} --workdir {work}"
    assert saved["synthetic"] is True and "SYNTHETIC" in saved["note"]
    check_environment(saved["environment"], "smoke")
    assert saved["settings"]["folds"] == 2 and saved["settings"]["epochs"] == 1

    hip = saved["hip"]
    cohort = json.loads((work / "hip_n12_s64" / "cohort.json").read_text())
    assert hip["oracle_r2"] == cohort["oracle_r2"] and hip["clinical_r2"] == cohort["clinical_r2"]
    assert {r["variant"] for r in hip["rows"]} == HIP_VARIANTS
    for row in hip["rows"]:
        _check_row(row, HIP_KEYS, _n_train(work / "hip_n12_s64" / "datalist.json"))
        assert row["mse"] > 0 and row["r2"] is not None
    by = {r["variant"]: r for r in hip["rows"]}
    g = hip["goals"]
    assert g["xattn_r2"] == by["xattn"]["r2"] and g["goal_oracle_fraction"] == 0.9
    assert math.isclose(g["xattn_r2_over_oracle"], by["xattn"]["r2"] / cohort["oracle_r2"], abs_tol=1e-4)
    assert g["meets_oracle_goal"] == (g["xattn_r2_over_oracle"] >= 0.9)
    assert g["meets_mse_goal"] == (by["xattn"]["mse"] < by["concat"]["mse"])
    assert saved["meets_goal"] == (g["meets_oracle_goal"] and g["meets_mse_goal"])
    assert (work / "cv_hip" / "ablation.md").is_file() and hip["ablation_md"].endswith("ablation.md")

    knee = saved["knee"]
    assert [r["variant"] for r in knee["rows"]] == ["hybrid"]
    _check_row(knee["rows"][0], KNEE_KEYS, _n_train(work / "knee_n10_s64" / "datalist.json"))
    assert "Table I" in knee["paper_reported"]["source"]

    markdown = (tmp_path / "out" / "accuracy.md").read_text()
    assert markdown in capsys.readouterr().out
    assert "Mode **smoke**" in markdown and "NOT the accuracy result" in markdown and "Cross-attention" in markdown


@pytest.mark.parametrize("bad", [["--folds", "1"], ["--hip-n", "5"], ["--tasks", "spine"], ["--knee-variants", "vgg"]])
def test_bad_arguments_exit_with_usage_error(tmp_path, bad, capsys):
    bench = load("accuracy")
    with pytest.raises(SystemExit) as err:
        bench.parse_args(["--out", str(tmp_path), "--smoke", *bad])
    assert err.value.code == 2 and "error" in capsys.readouterr().err


def test_full_preset_is_the_published_setting():
    args = load("accuracy").parse_args(["--out", "x"])
    assert (args.mode, args.hip_n, args.folds, args.knee_variants) == ("full", 1000, 5, ["hybrid", "densenet169"])
