"""Helpers of the results tests: tiny synthetic archives, untrained bundle copies, running their inference.json and
``dciodvfy``."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from monai_bone.bundle import BUNDLE_NAMES, bundle_workflow, default_bundle_dir, quiet_engines, untrained_copy
from monai_bone.synthetic.synth import synthesize

#: Small images keep two CPU cores fast.
OVERRIDES = {"spatial_size": 64, "num_workers": 0, "batch_size": 2, "device": "$torch.device('cpu')"}


def make_bundles(root: Path, hip_source: Path) -> dict[str, Path]:
    """Untrained copies of both bundles (the hip one with clinical statistics fitted on ``hip_source``)."""
    from monai_bone.data.datalist import build_datalist
    from monai_bone.data.folds import load_records

    datalist = root / "hip_index" / "datalist.json"
    clinical = [str(hip_source.parent / "clinical.csv")]
    build_datalist(str(hip_source), str(datalist), clinical=clinical, folds=1, progress=False)
    return {
        "hip": untrained_copy(
            default_bundle_dir("hip"), root / "bundles" / BUNDLE_NAMES["hip"], load_records(datalist)
        ),
        "knee": untrained_copy(default_bundle_dir("knee"), root / "bundles" / BUNDLE_NAMES["knee"]),
    }


def synth_dicom(root: Path, task: str, n: int, seed: int) -> Path:
    """``n`` synthetic DX files of ``task``; returns the folder of the DICOM files."""
    synthesize(task, n, root / f"{task}_synth", size=64, seed=seed, progress=False)
    return root / f"{task}_synth" / "dicom"


def run_inference(bundle: Path, source: Path, out: Path, **overrides) -> dict:
    """Run the bundle's inference.json; returns ``predictions.json``."""
    with quiet_engines():
        wf = bundle_workflow(
            bundle, ("inference.json",), "infer", input=str(source), output_dir=str(out), **OVERRIDES, **overrides
        )
        wf.initialize()
        wf.run()
        wf.finalize()
    return json.loads((out / "predictions.json").read_text())


def dciodvfy_errors(path: Path) -> list[str]:
    """The ``Error`` lines ``dciodvfy`` reports for a file (skips when dicom3tools is not installed, fails in CI)."""
    exe = shutil.which("dciodvfy")
    if exe is None:
        if os.environ.get("CI") == "true":
            pytest.fail("dciodvfy is not installed (apt-get install dicom3tools)")
        pytest.skip("dciodvfy is not installed (apt-get install dicom3tools)")
    proc = subprocess.run([exe, str(path)], capture_output=True, text=True, timeout=60, check=False)
    return [line for line in (proc.stdout + proc.stderr).splitlines() if re.match(r"^\s*Error", line)]
