"""``monai-bone export`` / ``import``: arguments, round trip, a tampered archive refused with the file named."""

from __future__ import annotations

import argparse
import json
import zipfile
from pathlib import Path

import pytest
import torch

from monai_bone.bundle import MANIFEST_NAME, BundleIntegrityError
from monai_bone.cli import bundle_import, export


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="monai-bone")
    sub = parser.add_subparsers(dest="command")
    export.add_parser(sub)
    bundle_import.add_parser(sub)
    return parser


def _bundle(root: Path) -> Path:
    (root / "configs").mkdir(parents=True)
    (root / "models").mkdir()
    (root / "configs" / "metadata.json").write_text(json.dumps({"name": "tiny", "version": "1.0.0"}))
    net = {"network_def": {"_target_": "torch.nn.Linear", "in_features": 3, "out_features": 2}}
    (root / "configs" / "inference.json").write_text(json.dumps(net))
    (root / "LICENSE").write_text("Apache-2.0\n")
    torch.save(torch.nn.Linear(3, 2).state_dict(), root / "models" / "model.pt")
    return root


def _run(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    return args.func(args)


def test_export_import_cli(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path / "b")
    archive = tmp_path / "b.zip"
    assert _run(["export", str(bundle), "--out", str(archive)]) == 0
    with zipfile.ZipFile(archive) as zf:
        assert {f"b/{n}" for n in ("models/model.pt", "models/model.ts", MANIFEST_NAME, "sha256sums")} <= set(
            zf.namelist()
        )
    with pytest.raises(ValueError, match="already exists"):
        _run(["export", str(bundle), "--out", str(archive)])
    assert _run(["export", str(bundle), "--out", str(archive), "--overwrite"]) == 0
    assert _run(["import", str(archive), "--out", str(tmp_path / "u")]) == 0
    assert (tmp_path / "u" / "models" / "model.pt").read_bytes() == (bundle / "models" / "model.pt").read_bytes()
    with pytest.raises(ValueError, match="not empty"):
        _run(["import", str(archive), "--out", str(tmp_path / "u")])


def test_export_training_checkpoint_packs_network_only(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path / "b")
    net = torch.nn.Linear(3, 2)
    ckpt = tmp_path / "checkpoint_epoch=3.pt"
    torch.save({"network": net.state_dict(), "optimizer": {"state": {}, "param_groups": []}}, ckpt)
    with pytest.raises(BundleIntegrityError, match="--key-in-ckpt"):
        _run(["export", str(bundle), "--out", str(tmp_path / "x.zip"), "--ckpt", str(ckpt)])
    with pytest.raises(BundleIntegrityError, match="no 'model' in the checkpoint"):
        _run(["export", str(bundle), "--out", str(tmp_path / "x.zip"), "--ckpt", str(ckpt), "--key-in-ckpt", "model"])
    argv = ["export", str(bundle), "--out", str(tmp_path / "x.zip"), "--ckpt", str(ckpt), "--key-in-ckpt", "network"]
    assert _run(argv) == 0
    _run(["import", str(tmp_path / "x.zip"), "--out", str(tmp_path / "u")])
    packed = torch.load(tmp_path / "u" / "models" / "model.pt", weights_only=True)
    assert set(packed) == {"weight", "bias"} and torch.equal(packed["weight"], net.weight.detach())


def test_import_cli_refuses_tampered(tmp_path: Path) -> None:
    archive = tmp_path / "b.zip"
    _run(["export", str(_bundle(tmp_path / "b")), "--out", str(archive)])
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            dst.writestr(info.filename, data.replace(b"Apache", b"Apacho") if info.filename == "b/LICENSE" else data)
    with pytest.raises(BundleIntegrityError, match=r"LICENSE fails its sha256 check"):
        _run(["import", str(bad), "--out", str(tmp_path / "u")])
    assert not (tmp_path / "u").exists()


def test_cli_arguments_required() -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["export", "somewhere"])  # --out is required
    with pytest.raises(SystemExit):
        _parser().parse_args(["import", "x.zip"])
