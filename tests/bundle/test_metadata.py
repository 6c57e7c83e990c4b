"""Bundle metadata other sites can act on: pins that install on Python 3.10-3.13, metadata in step with configs."""

from __future__ import annotations

import glob
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from monai_bone.bundle.metadata import SUPPORTED_PYTHONS, requirement_lines, sync_metadata
from monai_bone.bundle.packaged import BUNDLE_NAMES, copy_packaged_bundle

REPO = Path(__file__).resolve().parents[2]


def _meta(task: str) -> dict:
    return json.loads((REPO / "bundles" / BUNDLE_NAMES[task] / "configs" / "metadata.json").read_text())


def test_requirement_lines_are_exact_pins() -> None:
    lines = requirement_lines(_meta("hip"))
    assert lines[:3] == ["monai==1.6.1", "torch==2.13.0", "numpy==2.2.6"]
    assert "pydicom==3.0.1" in lines and all("==" in line for line in lines)
    assert requirement_lines({"required_packages_version": {"x": ">=1.2"}}) == ["x>=1.2"]
    assert _meta("hip")["required_packages_version"] == _meta("knee")["required_packages_version"]


def _python310() -> str | None:
    for candidate in [shutil.which("python3.10"), *sorted(glob.glob("/root/.pyenv/versions/3.10*/bin/python3.10"))]:
        if candidate and subprocess.run([candidate, "-c", "pass"], capture_output=True).returncode == 0:
            return candidate
    return None


@pytest.mark.slow
def test_pins_install_on_every_supported_python(tmp_path: Path) -> None:
    """Resolve the bundle requirements against the package index: a real Python 3.10 venv (dependencies included)
    when a 3.10 interpreter is installed, and every supported version's wheel tags (``--python-version``).

    ``monai-bone`` itself is left out: it is installed from its wheel or source (README, "Sharing a bundle")."""
    req = tmp_path / "requirements.txt"
    req.write_text("\n".join(requirement_lines(_meta("hip"), skip=("monai-bone",))) + "\n")
    pip = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--only-binary=:all:"]
    for version in SUPPORTED_PYTHONS:
        cmd = [*pip, "--no-deps", "--python-version", version, "--target", str(tmp_path / version), "-r", str(req)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"Python {version}: {proc.stderr[-2000:]}"
    py310 = _python310()
    if py310 is None:
        pytest.skip("no Python 3.10 interpreter here; the pins were checked against the index's 3.10 wheel tags")
    subprocess.run([py310, "-m", "venv", str(tmp_path / "v310")], check=True, timeout=300)
    cmd = [str(tmp_path / "v310" / "bin" / "python"), "-m", "pip", "install", "--dry-run", "--only-binary=:all:"]
    proc = subprocess.run([*cmd, "-r", str(req)], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Would install" in proc.stdout and "torch-2.13.0" in proc.stdout and "monai-1.6.1" in proc.stdout


def test_sync_metadata_follows_the_configs(tmp_path: Path) -> None:
    bundle = copy_packaged_bundle("hip", tmp_path / "hip")
    assert sync_metadata(bundle) == {}  # the shipped bundle is consistent
    inference = bundle / "configs" / "inference.json"
    config = json.loads(inference.read_text())
    config["spatial_size"] = 96
    config["clinical_fields"] = ["age_xray", "weight", "sex"]
    inference.write_text(json.dumps(config))
    changed = sync_metadata(bundle)
    meta = json.loads((bundle / "configs" / "metadata.json").read_text())
    fmt = meta["network_data_format"]["inputs"]
    assert fmt["image"]["spatial_shape"] == [96, 96] and "image.spatial_shape" in changed
    assert fmt["clinical"]["num_channels"] == 3
    assert fmt["clinical"]["channel_def"] == {"0": "age_xray (years)", "1": "weight (kg)", "2": "sex (F=0, M=1)"}
    assert sync_metadata(bundle) == {}
    knee = copy_packaged_bundle("knee", tmp_path / "knee")
    config = json.loads((knee / "configs" / "inference.json").read_text())
    config["num_classes"] = 3
    (knee / "configs" / "inference.json").write_text(json.dumps(config))
    assert sync_metadata(knee) == {"pred.num_channels": 3}
