"""``pyproject.toml`` ships every subpackage of monai_bone and the bundles (what the slow wheel test then proves).

The package list is explicit because the shipped bundles are one more package (``monai_bone.bundle.shipped``) mapped
from the top-level ``bundles/`` folder; these checks fail, naming the folder, when a new subpackage is not listed or
when the package-data globs and :data:`monai_bone.bundle.BUNDLE_FILES` disagree.
"""

from __future__ import annotations

import glob
from pathlib import Path

import pytest

from monai_bone.bundle import BUNDLE_FILES, BUNDLE_NAMES

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
REPO = Path(__file__).resolve().parents[2]
SHIPPED = "monai_bone.bundle.shipped"
CONFIGS = "monai_bone.cli.shipped_configs"  # the top-level configs/ (`--config NAME`)


def _setuptools() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_subpackage_is_listed() -> None:
    on_disk = {
        ".".join(p.parent.relative_to(REPO).parts)
        for p in (REPO / "monai_bone").rglob("__init__.py")
        if "__pycache__" not in p.parts
    }
    listed = set(_setuptools()["packages"])
    missing = sorted(on_disk - listed)
    assert not missing, f"add {missing} to [tool.setuptools] packages in pyproject.toml (wheels would lack them)"
    assert listed - on_disk == {SHIPPED, CONFIGS}, f"listed but not on disk: {sorted(listed - on_disk - {SHIPPED})}"


def test_bundles_ship_as_package_data_without_weights() -> None:
    cfg = _setuptools()
    assert cfg["package-dir"] == {SHIPPED: "bundles", CONFIGS: "configs"}
    globs = cfg["package-data"][SHIPPED]
    matched = {
        Path(f).relative_to(REPO / "bundles")
        for g in globs
        for f in glob.glob(str(REPO / "bundles" / g), recursive=True)
        if Path(f).is_file()
    }
    expected = set()
    for name in BUNDLE_NAMES.values():
        root = REPO / "bundles" / name
        assert (root / "configs" / "train.json").is_file(), root
        for entry in BUNDLE_FILES:
            p = root / entry
            files = [p] if p.is_file() else [f for f in p.rglob("*") if f.is_file()] if p.is_dir() else []
            expected |= {f.relative_to(REPO / "bundles") for f in files if "__pycache__" not in f.parts}
    assert matched == expected, f"globs {globs} ship {sorted(map(str, matched ^ expected))} differently"
    assert not [f for f in matched if f.parts[1] in ("models", "eval", "runs") or f.suffix in (".pt", ".ts")]


def test_example_configs_ship_as_package_data() -> None:
    globs = _setuptools()["package-data"][CONFIGS]
    matched = {f for g in globs for f in glob.glob(str(REPO / "configs" / g)) if Path(f).is_file()}
    expected = {str(f) for f in (REPO / "configs").rglob("*.yaml")}
    assert expected and matched == expected, f"globs {globs} ship {sorted(matched ^ expected)} differently"
