"""Naming and locating the shipped bundles (:mod:`monai_bone.bundle.packaged`) from the task registry."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from monai_bone.bundle import BUNDLE_NAMES, bundle_name, default_bundle_dir, packaged_bundle_dir
from monai_bone.tasks import REGISTRY, TaskSpec, get_task

REPO = Path(__file__).resolve().parents[2]


def test_names_come_from_the_registry() -> None:
    assert dict(BUNDLE_NAMES) == {t: s.bundle_name for t, s in REGISTRY.items()}
    assert BUNDLE_NAMES["hip"] == "hip_bmd_xattn" and "spine" not in BUNDLE_NAMES
    assert bundle_name("knee") == bundle_name("knee_osteoporosis_hybrid_attention") == get_task("knee").bundle_name
    with pytest.raises(ValueError, match="task must be one of"):
        bundle_name("spine")


def test_a_registered_task_is_seen_and_located(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = TaskSpec(name="spine", label_kind="regression", label_key="bmd", bundle_name="spine_x", body_parts=())
    monkeypatch.setitem(REGISTRY, "spine", spec)  # as register_task would, undone after the test
    assert BUNDLE_NAMES["spine"] == "spine_x" and "spine" in list(BUNDLE_NAMES)
    with pytest.raises(FileNotFoundError, match="bundle spine_x not found"):
        default_bundle_dir("spine")


def test_default_bundle_dir_takes_task_names_only() -> None:
    for task, name in BUNDLE_NAMES.items():
        assert default_bundle_dir(task) == packaged_bundle_dir(name)
        assert (default_bundle_dir(task) / "configs" / "inference.json").is_file()
    with pytest.raises(ValueError, match="task must be one of"):
        default_bundle_dir("hip_bmd_xattn")


def test_package_import_leaves_the_torch_modules_unloaded() -> None:
    code = (
        "import sys, monai_bone.bundle as b; "
        "lazy = ('workflow', 'export', 'importing'); "
        "print([m for m in lazy if f'monai_bone.bundle.{m}' in sys.modules]); "
        "b.import_bundle; print('monai_bone.bundle.importing' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True).stdout
    assert out.split("\n")[:2] == ["[]", "True"]
