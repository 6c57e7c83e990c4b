"""A non-editable install works away from the source tree: build sdist + wheel (``twine check``), install the wheel
into a fresh folder, and from an unrelated directory run ``monai-bone demo`` at tiny settings (hip), copy a bundle out
of the package and run its ``inference.json`` with ``python -m monai.bundle run``.

The wheel is installed with ``pip install --no-deps --target SITE`` and run with ``PYTHONPATH=SITE`` on this
interpreter, so its dependencies (torch, MONAI, ...) come from the test environment while ``monai_bone`` and its
bundles come from the wheel only (the test checks where they are imported from). Builds from a copy of the tracked
sources, so local ``bundles/*/models`` or caches cannot leak into the wheel.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
SOURCES = ("monai_bone", "bundles", "pyproject.toml", "setup.py", "MANIFEST.in", "README.md")


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 600) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def _copy_sources(dest: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "models", "eval", "runs", "mlruns", "shipped", "*.egg-info")
    for name in SOURCES:
        src = REPO / name
        shutil.copytree(src, dest / name, ignore=ignore) if src.is_dir() else shutil.copy2(src, dest / name)
    return dest


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    pytest.importorskip("build")
    tmp = tmp_path_factory.mktemp("wheel")
    src = _copy_sources(tmp / "src")
    dist = tmp / "dist"
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(src)], cwd=tmp)
    wheels, sdists = list(dist.glob("*.whl")), list(dist.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1
    if shutil.which("twine") or _has("twine"):
        out = _run([sys.executable, "-m", "twine", "check", "--strict", *map(str, wheels + sdists)], cwd=tmp)
        assert out.count("PASSED") == 2, out
    site = tmp / "site"
    _run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", str(site), str(wheels[0])], tmp
    )
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": str(site),
        "OMP_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
        "CUDA_VISIBLE_DEVICES": "",
    }
    return {"wheel": wheels[0], "site": site, "cwd": elsewhere, "env": env}


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def test_wheel_ships_bundles_without_weights(installed: dict[str, Path]) -> None:
    names = zipfile.ZipFile(installed["wheel"]).namelist()
    for bundle in ("hip_bmd_xattn", "knee_osteoporosis_hybrid_attention"):
        for rel in (
            "configs/train.json",
            "configs/inference.json",
            "configs/metadata.json",
            "docs/README.md",
            "LICENSE",
        ):
            assert f"monai_bone/bundle/shipped/{bundle}/{rel}" in names
    assert not [n for n in names if n.endswith((".pt", ".ts", ".onnx"))]
    for rel in ("configs/train.json", "configs/metadata.json"):  # byte-identical to the source of truth
        packed = zipfile.ZipFile(installed["wheel"]).read(f"monai_bone/bundle/shipped/hip_bmd_xattn/{rel}")
        assert packed == (REPO / "bundles" / "hip_bmd_xattn" / rel).read_bytes()


def test_demo_and_bundle_run_from_the_installed_package(installed: dict[str, Path]) -> None:
    cwd, env, site = installed["cwd"], installed["env"], installed["site"]
    code = "import monai_bone, monai_bone.bundle as b; print(monai_bone.__file__, b.packaged_bundle_dir('hip'))"
    where, found = _run([sys.executable, "-c", code], cwd, env).split()
    assert Path(where).is_relative_to(site), where  # the wheel's copy, not the source tree
    assert Path(found) == site / "monai_bone" / "bundle" / "shipped" / "hip_bmd_xattn"

    demo = ["--quick", "--task", "hip", "--n-hip", "10", "--n-infer", "2", "--no-progress", "--out", "demo"]
    _run([sys.executable, "-m", "monai_bone", "demo", *demo], cwd, env)
    assert "SYNTHETIC" in (cwd / "demo" / "report.md").read_text()
    assert (cwd / "demo" / "hip" / "inference" / "predictions.csv").is_file()
    trained = cwd / "demo" / "bundles" / "hip_bmd_xattn"
    meta = json.loads((trained / "configs" / "metadata.json").read_text())
    assert meta["network_data_format"]["inputs"]["image"]["spatial_shape"] == [64, 64]  # consistent with its configs

    _run([sys.executable, "-m", "monai_bone", "bundle", "copy", "hip", "hip_copy"], cwd, env)
    copy = cwd / "hip_copy"
    assert (copy / "configs" / "inference.json").read_bytes() == (
        REPO / "bundles" / "hip_bmd_xattn" / "configs" / "inference.json"
    ).read_bytes()
    for name in ("model.pt", "clinical_stats.json"):  # the weights the demo trained
        shutil.copy2(trained / "models" / name, copy / "models" / name)
    cohort = cwd / "demo" / "data" / "hip"
    dicoms = cohort / "dicom"
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", "configs/inference.json"]
    cmd += ["--meta_file", "configs/metadata.json", "--bundle_root", str(copy), "--input", str(dicoms)]
    cmd += ["--clinical_csv", str(cohort / "clinical.csv"), "--output_dir", str(cwd / "infer"), "--spatial_size", "64"]
    cmd += ["--num_workers", "0", "--logging_file", "configs/logging.conf"]
    _run(cmd, copy, env)
    rows = [r for r in (cwd / "infer" / "predictions.csv").read_text().splitlines() if r and not r.startswith("#")]
    assert len(rows) >= 3  # header + one row per DICOM of the cohort
