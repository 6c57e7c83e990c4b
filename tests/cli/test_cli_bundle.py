"""``monai-bone bundle path|copy``: the shipped bundles are found and copied out without weights."""

from __future__ import annotations

from pathlib import Path

import pytest

from monai_bone.bundle.packaged import packaged_bundle_dir
from monai_bone.cli import main

REPO = Path(__file__).resolve().parents[2]


def test_bundle_path_and_copy(tmp_path: Path, capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture) -> None:
    assert main(["bundle", "path", "hip"]) == 0
    assert Path(capsys.readouterr().out.strip()) == packaged_bundle_dir("hip")
    dest = tmp_path / "knee_copy"
    assert main(["bundle", "copy", "knee", str(dest)]) == 0
    src = REPO / "bundles" / "knee_osteoporosis_hybrid_attention"
    for rel in ("configs/train.json", "configs/inference.json", "configs/metadata.json", "docs/README.md", "LICENSE"):
        assert (dest / rel).read_bytes() == (src / rel).read_bytes()
    assert (dest / "models").is_dir() and not any((dest / "models").iterdir())
    assert main(["bundle", "copy", "knee", str(dest)]) == 1  # never copies over an existing bundle
    assert "exists and is not empty" in caplog.text
    with pytest.raises(SystemExit):
        main(["bundle", "copy", "spine", str(tmp_path / "x")])
