"""A non-editable install works away from the source tree, in a fresh virtual environment.

Builds the sdist and the wheel (``python -m build``, the wheel built from the sdist) from a copy of the tracked
sources, so local ``bundles/*/models`` or caches cannot leak in; ``twine check``s both and checks that each carries
exactly the bundles' configs, docs, licences and ``large_files.yml`` and no weights. Then installs the wheel with its
dependencies and the CPU torch (``pip install torch==2.13.0 WHEEL``, as the README's main job does) into a new venv and,
from an unrelated directory, runs ``monai-bone demo`` at tiny settings (hip), ``monai-bone cv`` on the demo's tiny
synthetic cohort, ``monai-bone bundle copy`` and the copied bundle's ``inference.json`` with
``python -m monai.bundle run``. Last, an editable install of the same sources finds the top-level ``bundles/``.

Cost, measured on a 2-core machine shared with other test runs: build + twine 2-10 s, venv + install 45 s (3 GB,
``--no-compile``; removed afterwards: 100 s), demo + cv + bundle copy + bundle run 100 s (with the first imports'
byte-compilation), editable install 25 s; 4.7 min in all.
``MONAI_BONE_WHEEL_TORCH`` overrides the torch requirement (e.g. a local wheel file).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from monai_bone.bundle import BUNDLE_FILES, BUNDLE_NAMES

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]
REPO = Path(__file__).resolve().parents[2]
SOURCES = ("monai_bone", "bundles", "configs", "pyproject.toml", "README.md")
SHIPPED = "monai_bone/bundle/shipped"


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 1200) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    cause = next((line for line in proc.stderr.splitlines() if line.startswith(("ValueError", "RuntimeError"))), "")
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{cause}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def _copy_sources(dest: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "models", "eval", "runs", "mlruns", "shipped", "*.egg-info")
    for name in SOURCES:
        src = REPO / name
        shutil.copytree(src, dest / name, ignore=ignore) if src.is_dir() else shutil.copy2(src, dest / name)
    return dest


def _expected_bundle_files() -> dict[str, bytes]:
    """``<bundle>/<path>`` -> bytes of everything a bundle holds before training (:data:`BUNDLE_FILES`)."""
    out = {}
    for name in BUNDLE_NAMES.values():
        root = REPO / "bundles" / name
        for entry in BUNDLE_FILES:
            p = root / entry
            for f in [p] if p.is_file() else sorted(p.rglob("*")) if p.is_dir() else []:
                if f.is_file() and "__pycache__" not in f.parts:
                    out[f.relative_to(REPO / "bundles").as_posix()] = f.read_bytes()
    return out


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    pytest.importorskip("build")
    tmp = tmp_path_factory.mktemp("wheel")
    src = _copy_sources(tmp / "src")
    out = tmp / "dist"
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(src)], cwd=tmp)
    wheels, sdists = list(out.glob("*.whl")), list(out.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1
    check = _run([sys.executable, "-m", "twine", "check", "--strict", *map(str, wheels + sdists)], cwd=tmp)
    assert check.count("PASSED") == 2, check
    return {"tmp": tmp, "src": src, "wheel": wheels[0], "sdist": sdists[0]}


def test_wheel_and_sdist_ship_the_bundles_without_weights(dist: dict[str, Path]) -> None:
    expected = _expected_bundle_files()
    assert any(k.endswith("/configs/inference.json") for k in expected) and len(expected) >= 2 * 9
    with zipfile.ZipFile(dist["wheel"]) as whl:
        names = whl.namelist()
        shipped = {n[len(SHIPPED) + 1 :]: whl.read(n) for n in names if n.startswith(SHIPPED + "/")}
    assert shipped == expected  # every file, byte-identical, and nothing else (no models/, eval/, runs/)
    configs = {n.removeprefix("monai_bone/cli/shipped_configs/") for n in names if "/shipped_configs/" in n}
    assert configs == {str(p.relative_to(REPO / "configs")) for p in (REPO / "configs").rglob("*.yaml")}
    with tarfile.open(dist["sdist"]) as sdist:
        members = {m.name.split("/", 1)[1]: m for m in sdist.getmembers() if m.isfile()}
        bundles = {k.removeprefix("bundles/"): m for k, m in members.items() if k.startswith("bundles/")}
        in_sdist = {k: sdist.extractfile(m).read() for k, m in bundles.items()}
    assert in_sdist == expected
    for listing in (names, list(members)):
        assert not [n for n in listing if n.endswith((".pt", ".ts", ".onnx", ".pth"))]
    assert not [n for n in members if n in ("setup.py", "MANIFEST.in")]  # pyproject.toml alone configures the build


@pytest.fixture(scope="module")
def venv(dist: dict[str, Path]) -> Iterator[dict[str, Path]]:
    tmp = dist["tmp"]
    root = tmp / "venv"
    _run([sys.executable, "-m", "venv", str(root)], cwd=tmp)
    bin_dir = root / ("Scripts" if os.name == "nt" else "bin")
    torch_req = os.environ.get("MONAI_BONE_WHEEL_TORCH", "torch==2.13.0")
    # --no-compile: no .pyc for all of torch & co. (a faster install and removal; imports compile what they use)
    pip = [str(bin_dir / "python"), "-m", "pip", "install", "--quiet", "--no-compile", "--disable-pip-version-check"]
    _run([*pip, torch_req, str(dist["wheel"])], cwd=tmp, timeout=2400)
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(
        OMP_NUM_THREADS="1", MPLBACKEND="Agg", CUDA_VISIBLE_DEVICES="", PATH=f"{bin_dir}{os.pathsep}{env['PATH']}"
    )
    yield {"bin": bin_dir, "python": bin_dir / "python", "pip": pip, "cwd": elsewhere, "env": env, **dist}
    shutil.rmtree(root, ignore_errors=True)  # ~3 GB


def test_demo_cv_and_bundle_run_from_the_installed_wheel(venv: dict[str, Path]) -> None:
    cwd, env, py, site_bin = venv["cwd"], venv["env"], str(venv["python"]), venv["bin"]
    code = "import monai_bone, monai_bone.bundle as b; print(monai_bone.__file__, b.packaged_bundle_dir('hip'))"
    where, found = map(Path, _run([py, "-c", code], cwd, env).split())
    site = where.parents[1]
    assert site.name == "site-packages" and site.is_relative_to(site_bin.parent), where  # the wheel, not the tree
    assert found == site / "monai_bone" / "bundle" / "shipped" / "hip_bmd_xattn"

    monai_bone = str(site_bin / "monai-bone")  # the console script of the wheel
    demo = ["--quick", "--task", "hip", "--n-hip", "10", "--n-infer", "2", "--no-progress", "--out", "demo"]
    _run([monai_bone, "demo", *demo], cwd, env)
    assert "SYNTHETIC" in (cwd / "demo" / "report.md").read_text()
    assert (cwd / "demo" / "hip" / "inference" / "predictions.csv").is_file()
    trained = cwd / "demo" / "bundles" / "hip_bmd_xattn"
    meta = json.loads((trained / "configs" / "metadata.json").read_text())
    assert meta["network_data_format"]["inputs"]["image"]["spatial_shape"] == [64, 64]  # consistent with its configs

    cohort = cwd / "demo" / "data" / "hip"
    # --config NAME: a config shipped in the wheel (no configs/ folder here); the flags below win over it
    cv = ["cv", "--config", "hip_ablation", "--task", "hip", "--data", str(cohort / "datalist.json"), "--out", "cv"]
    cv += ["--folds", "2"]
    # batch 16 = one batch per fit: a last batch of a single study meets a 1x1 feature map in BatchNorm at 32 px
    cv += ["--epochs", "1", "--size", "32", "--batch-size", "16", "--num-workers", "0", "--device", "cpu"]
    cv += ["--variants", "ost,image_stats,image", "--no-loss-ablation", "--n-boot", "20", "--no-progress"]
    cv += ["--set", "pretrained=null"]
    _run([monai_bone, *cv], cwd, env)
    table = cwd / "cv" / "ablation.csv"
    rows = list(csv.DictReader(r for r in table.read_text().splitlines() if not r.startswith("#")))
    assert [r["variant"] for r in rows if r.get("variant")][:3] == ["ost", "image_stats", "image"], table

    _run([monai_bone, "bundle", "copy", "hip", "hip_copy"], cwd, env)
    copy = cwd / "hip_copy"
    assert (copy / "configs" / "inference.json").read_bytes() == (
        REPO / "bundles" / "hip_bmd_xattn" / "configs" / "inference.json"
    ).read_bytes()
    for name in ("model.pt", "clinical_stats.json"):  # the weights the demo trained
        shutil.copy2(trained / "models" / name, copy / "models" / name)
    cmd = [py, "-m", "monai.bundle", "run", "--config_file", "configs/inference.json"]
    cmd += ["--meta_file", "configs/metadata.json", "--bundle_root", str(copy), "--input", str(cohort / "dicom")]
    cmd += ["--clinical_csv", str(cohort / "clinical.csv"), "--output_dir", str(cwd / "infer"), "--spatial_size", "64"]
    cmd += ["--num_workers", "0", "--logging_file", "configs/logging.conf"]
    _run(cmd, copy, env)
    rows = [r for r in (cwd / "infer" / "predictions.csv").read_text().splitlines() if r and not r.startswith("#")]
    n_dicoms = len(list((cohort / "dicom").rglob("*.dcm")))
    assert n_dicoms >= 2 and len(rows) == n_dicoms + 1  # header + one row per DICOM of the cohort


def test_editable_install_finds_the_top_level_bundles(venv: dict[str, Path]) -> None:
    src, cwd, env = venv["src"], venv["cwd"], venv["env"]
    _run([*venv["pip"], "--no-deps", "-e", str(src)], cwd, env, timeout=600)
    code = "import monai_bone, monai_bone.bundle as b; print(monai_bone.__file__, b.packaged_bundle_dir('knee'))"
    where, found = map(Path, _run([str(venv["python"]), "-c", code], cwd, env).split())
    assert where == src / "monai_bone" / "__init__.py"
    assert found == src / "bundles" / "knee_osteoporosis_hybrid_attention"
