"""``monai-bone cv`` sub-command: knee Table I CV (HybridAttentionNet vs DenseNet169) and argument errors."""

from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path

import pytest

from monai_bone.cli import cv as cv_cli
from monai_bone.constants import SYNTHETIC_NOTE
from monai_bone.data.datalist import build_datalist
from monai_bone.synthetic.synth import synthesize


def _args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="monai-bone")
    cv_cli.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["cv", *argv])


@pytest.fixture(scope="module")
def knee_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("kneecv")
    synthesize("knee", 12, root, seed=5, size=64, fmt="kop", n_classes=2, progress=False)  # binary bundle
    build_datalist(root, root / "datalist.json", task="knee", folds=2, progress=False)
    return root


def test_knee_cv_cli(knee_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "cv"
    argv = ["--task", "knee", "--data", str(knee_data), "--out", str(out), "--epochs", "1", "--size", "32"]
    argv += [
        "--batch-size",
        "16",
        "--num-workers",
        "0",
        "--n-boot",
        "30",
        "--no-progress",
        "--set",
        "learning_rate=1e-4",
        "--pretrained",
        "null",  # explicit random init: the bundle default (ImageNet weights) cannot be downloaded in CI
    ]
    assert cv_cli.run(_args(argv)) == 0
    printed = capsys.readouterr().out
    assert "SYNTHETIC DATA" in printed and "HybridAttentionNet" in printed and "Paper reported" not in printed
    lines = (out / "ablation.csv").read_text().splitlines()
    assert lines[0] == f"# {SYNTHETIC_NOTE}"
    rows = list(csv.DictReader(lines[1:]))
    assert [r["variant"] for r in rows] == ["image_stats", "hybrid", "densenet169"]
    n_train = sum(r["split"] == "train" for r in json.loads((knee_data / "datalist.json").read_text())["training"])
    assert n_train < 12  # the default locked test split is held out of the CV
    for r in rows:
        assert r["n_folds"] == "2" and r["n_pooled"] == str(n_train) and r["selected_on_split"] == "False"
        for key in ("sensitivity", "specificity", "fpr", "accuracy", "f1", "loss", "auc"):
            for stat in ("mean", "sd", "pooled", "ci_low", "ci_high"):
                float(r[f"{key}_{stat}"])
        assert 0.0 <= float(r["accuracy_pooled"]) <= 1.0 and math.isfinite(float(r["loss_pooled"]))
    assert [r["loss"] for r in rows] == ["-", "BCEWithLogits", "BCEWithLogits"]
    comparisons = (out / "comparisons.csv").read_text()
    assert "hybrid,densenet169,auc,DeLong" in comparisons and "hybrid,image_stats,auc,DeLong" in comparisons
    md = (out / "ablation.md").read_text()
    # the paper's numbers appear only in the clearly labelled section
    assert "| HybridAttentionNet | 0.8293 |" in md.split("## Paper reported")[1]
    assert "0.8293" not in md.split("## Paper reported")[0]
    assert (out / "ablation.png").is_file() and (out / "oof_predictions.csv").is_file()
    # the locked test split, scored once per network row, thresholds chosen on the row's out-of-fold predictions
    n_test = 12 - n_train
    for row in ("hybrid", "densenet169"):
        m = json.loads((out / "test" / row / "metrics.json").read_text())
        assert m["split"] == "test" and m["n_studies"] == n_test and m["selected_on_split"] is False
        assert m["operating_points"]["thresholds_chosen_on"] == "training folds (oof_predictions.csv)"
    assert "| hybrid | test |" in (out / "test_split.md").read_text()


def test_cv_offline_imagenet_default_is_one_clear_line(
    knee_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))  # empty weights cache
    monkeypatch.setenv("MONAI_BONE_WEIGHTS_MIRROR", "http://127.0.0.1:9/")  # nothing listens on the discard port
    monkeypatch.delenv("MONAI_BONE_WEIGHTS_REGISTRY", raising=False)
    out = tmp_path / "cv"
    argv = ["--task", "knee", "--data", str(knee_data), "--out", str(out), "--variants", "image_stats,hybrid"]
    assert cv_cli.run(_args([*argv, "--epochs", "1", "--size", "32", "--no-progress"])) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith("monai-bone: bad --pretrained:") and "--pretrained null" in line, line
    assert str(tmp_path / "torch_home") in line  # names the cache path the file belongs in
    assert not list(out.rglob("oof.json"))  # stopped before any network fit


def test_cv_cli_errors(knee_data: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="datalist not found"):
        cv_cli.run(_args(["--task", "hip", "--data", str(tmp_path), "--no-progress"]))
    with pytest.raises(ValueError, match="ID=VALUE"):
        cv_cli.run(_args(["--task", "knee", "--data", str(knee_data), "--set", "epochs", "--no-progress"]))
    with pytest.raises(ValueError, match="unknown knee variant"):
        cv_cli.run(_args(["--task", "knee", "--data", str(knee_data), "--variants", "xattn", "--no-progress"]))
    with pytest.raises(SystemExit):
        _args(["--task", "spine", "--data", "x"])
    assert cv_cli.parse_set(["a=1", "b=[1, 2]", "c=text", "d=true"]) == {"a": 1, "b": [1, 2], "c": "text", "d": True}
