"""``monai-bone demo`` smoke test: the whole pipeline at the smallest settings writes the report folder."""

from __future__ import annotations

import argparse
import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from monai_bone.bundle import default_bundle_dir
from monai_bone.cli import demo as demo_cli
from monai_bone.constants import SYNTHETIC_NOTE
from monai_bone.demo import pipeline as demo_mod
from monai_bone.demo.steps import THRESHOLD_REFERENCE
from monai_bone.handlers import report as report_mod
from monai_bone.metrics.operating_points import choose_threshold
from monai_bone.metrics.screening import screening_positive


def _args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="monai-bone")
    demo_cli.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["demo", *argv])


def _csv_rows(path: Path) -> list[dict]:
    return list(csv.DictReader(line for line in path.read_text().splitlines() if not line.startswith("#")))


def _snapshot(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(root.rglob("*"))}


def test_demo_quick_writes_report(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # private copies of the bundles, to check that the demo never writes into the bundles it starts from
    copies = {}
    for t in ("hip", "knee"):
        src = default_bundle_dir(t)
        copies[t] = tmp_path / "src" / src.name
        shutil.copytree(src, copies[t], ignore=shutil.ignore_patterns("models", "eval", "runs", "cache"))
    monkeypatch.setattr(demo_mod, "default_bundle_dir", lambda t: copies[t])
    # every reference set the reports choose operating-point thresholds on
    chosen_on: list[tuple[np.ndarray, np.ndarray]] = []
    read = report_mod.read_reference_predictions

    def spy(*args, **kwargs):
        chosen_on.append(read(*args, **kwargs))
        return chosen_on[-1]

    monkeypatch.setattr(report_mod, "read_reference_predictions", spy)
    before = {t: _snapshot(c) for t, c in copies.items()}
    out = tmp_path / "demo"
    argv = ["--out", str(out), "--quick", "--n-hip", "8", "--n-knee", "8", "--folds", "2", "--no-progress"]
    assert demo_cli.run(_args(argv)) == 0
    printed = capsys.readouterr().out
    assert "SYNTHETIC DATA" in printed and "| hip | XAttn-BMD" in printed and "| knee | HybridAttentionNet" in printed

    report = (out / "report.md").read_text()
    assert report.startswith("# monai-bone demo report — SYNTHETIC DATA") and SYNTHETIC_NOTE in report
    summary = json.loads((out / "summary.json").read_text())
    assert summary["synthetic"] is True and summary["settings"]["epochs"] == 1 and summary["settings"]["size"] == 64
    for task in ("hip", "knee"):
        ev = out / task / "evaluation"
        metrics = json.loads((ev / "metrics.json").read_text())
        records = json.loads((out / "data" / task / "datalist.json").read_text())["training"]
        n_test = sum(r["split"] == "test" for r in records)
        # the demo scores the locked test split, which nothing was fitted or selected on
        assert metrics["synthetic"] is True and metrics["split"] == "test" and metrics["n_studies"] == n_test > 0
        assert metrics["selected_on_split"] is False and "optimistic" not in metrics
        base = summary[task]["baselines"]
        assert base["split"] == "test" and base["n_studies"] == n_test and base["selected_on_split"] is False
        assert (ev / "predictions.csv").read_text().startswith(f"# {SYNTHETIC_NOTE}")
        assert (ev / "roc.png").stat().st_size > 1000
        # operating points: thresholds chosen on the model's predictions for its training folds, then applied to
        # the test split; no validation or test record enters the choice
        ops = metrics["operating_points"]
        assert ops["thresholds_chosen_on"] == "training folds (predictions.csv)"
        reference = _csv_rows(ev / THRESHOLD_REFERENCE / "predictions.csv")
        train = {Path(r["image"]).name for r in records if r["split"] != "test" and r["fold"] != 0}
        held_out = {Path(r["image"]).name for r in records if r["split"] == "test" or r["fold"] == 0}
        assert {Path(r["image"]).name for r in reference} == train and not train & held_out
        assert json.loads((ev / THRESHOLD_REFERENCE / "metrics.json").read_text())["split"] == "train"
        true_col, pred_col = ("true_bmd", "pred_bmd") if task == "hip" else ("true_index", "prob_osteoporosis")
        ref_pred = np.array([float(r[pred_col]) for r in reference])
        assert any(len(p) == len(train) and np.allclose(np.sort(p), np.sort(ref_pred), atol=1e-5) for p, _ in chosen_on)
        if task == "hip":
            ref_true = np.array([float(r[true_col]) for r in reference])
            cut = choose_threshold(-ref_pred, screening_positive(ref_true, 0.899), "youden")
            assert ops["targets"]["low_bmd"]["youden"]["threshold_bmd"] == pytest.approx(-cut, abs=1e-5)
        inferred = json.loads((out / task / "inference" / "predictions.json").read_text())
        assert inferred["synthetic"] is True and len(inferred["predictions"]) == 2
        assert summary[task]["inference"] and f"### {task}" in report
        bundle = out / "bundles" / default_bundle_dir(task).name
        assert (bundle / "models" / "model.pt").is_file()
        assert not list((bundle / "models").glob("checkpoint_epoch=*.pt"))  # no 300 MB resume state in a demo
        for name in ("train.json", "inference.json"):  # the trained copy infers at the size it was trained at
            assert json.loads((bundle / "configs" / name).read_text())["spatial_size"] == 64
        assert json.loads((copies[task] / "configs" / "inference.json").read_text())["spatial_size"] != 64
    assert isinstance(summary["hip"]["metrics"]["mae"], float) and summary["hip"]["oracle_r2"] > 0
    assert set(summary["hip"]["baselines"]["rows"]) == {
        "OST index",
        "clinical-only ridge",
        "trivial image statistics + clinical ridge",
    }
    assert set(summary["knee"]["baselines"]["rows"]) == {"trivial image statistics logistic"}
    assert "scored split 'test', model selected on it: False" in report
    assert "hip low_bmd operating points on 'test' (thresholds: training folds (predictions.csv)): youden" in report
    assert "knee osteoporosis operating points on 'test' (thresholds: training folds (predictions.csv))" in report
    assert before == {t: _snapshot(c) for t, c in copies.items()}  # source bundles untouched

    with pytest.raises(ValueError, match="--overwrite"):
        demo_cli.run(_args(argv))


def test_demo_rejects_bad_settings(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="too small"):
        demo_cli.run(_args(["--out", str(tmp_path / "d"), "--quick", "--n-hip", "2", "--no-progress"]))
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        demo_cli.run(_args(["--out", str(tmp_path / "d"), "--epochs", "0", "--no-progress"]))
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "thesis.tex").write_text("x")
    with pytest.raises(ValueError, match="not a demo folder"):
        demo_cli.run(_args(["--out", str(tmp_path / "busy"), "--quick", "--no-progress"]))
