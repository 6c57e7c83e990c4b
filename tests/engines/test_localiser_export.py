"""A bundle trained in ROI mode exports and imports with its localiser (models/localiser.pt + its summary)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import torch

from monai_bone.bundle.export import export_bundle
from monai_bone.bundle.importing import import_bundle
from monai_bone.networks.nets.landmark import LandmarkNet
from monai_bone.transforms.localise import load_localiser


def test_localiser_travels_with_the_exported_bundle(tmp_path: Path) -> None:
    root = tmp_path / "roi"
    for d in ("configs", "models", "docs"):
        (root / d).mkdir(parents=True)
    meta = {"name": "roi", "version": "0.1.0", "network_data_format": {"inputs": {}, "outputs": {}}}
    (root / "configs" / "metadata.json").write_text(json.dumps(meta))
    net_def = {"_target_": "torch.nn.Linear", "in_features": 4, "out_features": 1}
    (root / "configs" / "inference.json").write_text(json.dumps({"bundle_root": ".", "network_def": net_def}))
    (root / "LICENSE").write_text("Apache-2.0\n")
    torch.save(torch.nn.Linear(4, 1).state_dict(), root / "models" / "model.pt")
    net = LandmarkNet(2, 1, 1, channels=(4, 4, 4, 4))
    ckpt = {"state_dict": net.state_dict(), "size": 32, "channels": [4, 4, 4, 4], "landmarks": ["roi"]}
    torch.save(ckpt, root / "models" / "localiser.pt")
    (root / "models" / "localiser.pt.json").write_text(json.dumps({"n_train": 3}))
    archive = tmp_path / "roi.zip"
    export_bundle(root, archive)
    with zipfile.ZipFile(archive) as zf:
        assert {"roi/models/localiser.pt", "roi/models/localiser.pt.json"} <= set(zf.namelist())
    out = import_bundle(archive, tmp_path / "imported")
    loaded, info = load_localiser(Path(out) / "models" / "localiser.pt")
    assert info["size"] == 32
    for key, value in net.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)
