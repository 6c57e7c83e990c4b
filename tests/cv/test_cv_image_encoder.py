"""`monai-bone cv --set image_encoder=rad-dino`: the fusion rows train through the bundle with the DINOv2 encoder
(tiny random configuration, `pretrained: null`; synthetic hip cohort, 12 studies less the locked test split, 2 folds,
1 epoch, 56 px)."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import pytest

pytest.importorskip("transformers")

TINY = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "image_size": 56}


def test_cv_rows_with_the_rad_dino_encoder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from monai_bone.cli import cv as cv_cli
    from monai_bone.data.datalist import build_datalist
    from monai_bone.networks import RadDinoEncoder
    from monai_bone.synthetic.synth import synthesize

    calls = []
    forward = RadDinoEncoder.forward
    monkeypatch.setattr(RadDinoEncoder, "forward", lambda self, x: calls.append(x.shape) or forward(self, x))

    synthesize("hip", 12, tmp_path / "hip", seed=3, size=64, progress=False)
    clinical = [tmp_path / "hip" / "clinical.csv", tmp_path / "hip" / "ground_truth.csv"]
    build_datalist(tmp_path / "hip" / "dicom", tmp_path / "dl.json", clinical=clinical, task="hip", folds=2,
                   progress=False)  # fmt: skip
    parser = argparse.ArgumentParser()
    cv_cli.add_parser(parser.add_subparsers())
    argv = ["cv", "--task", "hip", "--data", str(tmp_path / "dl.json"), "--out", str(tmp_path / "cv")]
    argv += ["--epochs", "1", "--size", "56", "--batch-size", "6", "--num-workers", "0", "--n-boot", "20"]
    argv += ["--variants", "image,xattn", "--no-progress", "--set", "image_encoder=rad-dino"]
    argv += ["--set", "pretrained=null", "--set", f"image_encoder_config={json.dumps(TINY)}"]
    args = parser.parse_args(argv)
    assert cv_cli.run(args) == 0
    table = tmp_path / "cv" / "ablation.csv"
    lines = table.read_text().splitlines()
    rows = {r["variant"]: r for r in csv.DictReader(lines[1:])}
    n_train = sum(r["split"] == "train" for r in json.loads((tmp_path / "dl.json").read_text())["training"])
    assert n_train < 12  # the default locked test split never enters the CV
    assert {"image", "xattn"} <= set(rows) and all(rows[v]["n_pooled"] == str(n_train) for v in ("image", "xattn"))
    assert calls and all(tuple(s[1:]) == (1, 56, 56) for s in calls)  # the DINOv2 encoder saw every training batch
