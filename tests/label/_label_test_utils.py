"""Helpers of the serving tests: a small archive (hip + knee DX, a CT, a text file), untrained bundle copies and the
predictions the bundles' own ``inference.json`` makes on every radiograph (the reference the server must match)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from monai_bone.bundle import BUNDLE_NAMES, bundle_workflow, default_bundle_dir, quiet_engines, untrained_copy
from monai_bone.data.folds import load_records
from monai_bone.synthetic.synth import synthesize

#: Small images keep two CPU cores fast; the same overrides go to the server and to the reference runs.
OVERRIDES = {"spatial_size": 64, "num_workers": 0, "device": "$torch.device('cpu')"}
SERVE_OVERRIDES = {"spatial_size": 64}


def run_bundle_inference(bundle: Path, source: Path, out: Path) -> dict[str, dict]:
    """Run the bundle's inference.json on a folder; prediction rows by file name."""
    with quiet_engines():
        wf = bundle_workflow(bundle, ("inference.json",), "infer", input=str(source), output_dir=str(out), **OVERRIDES)
        wf.initialize()
        wf.run()
        wf.finalize()
    rows = json.loads((out / "predictions.json").read_text())["predictions"]
    return {Path(r["image"]).name: r for r in rows if not r.get("error")}


@pytest.fixture(scope="session")
def served(tmp_path_factory) -> dict:
    """Archive folder, bundles (hip, knee) and reference predictions of each bundle on each radiograph."""
    root = tmp_path_factory.mktemp("label")
    synthesize("hip", 3, root / "hip", size=96, seed=3, progress=False)
    synthesize("knee", 2, root / "knee", size=96, seed=4, progress=False)
    archive = root / "archive"
    shutil.copytree(root / "hip" / "dicom", archive / "hip")
    shutil.copytree(root / "knee" / "dicom", archive / "knee")
    ct = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ct.save_as(archive / "ct.dcm", enforce_file_format=True)
    (archive / "notes.txt").write_text("not an image\n")
    records = load_records(_hip_datalist(root))
    bundles = {
        "hip": untrained_copy(default_bundle_dir("hip"), root / "bundles" / BUNDLE_NAMES["hip"], records, seed=0),
        "knee": untrained_copy(default_bundle_dir("knee"), root / "bundles" / BUNDLE_NAMES["knee"], seed=0),
    }
    expected = {task: run_bundle_inference(b, archive, root / f"ref_{task}") for task, b in bundles.items()}
    files = {
        "hip": sorted((archive / "hip").rglob("*.dcm")),
        "knee": sorted((archive / "knee").rglob("*.dcm")),
        "ct": archive / "ct.dcm",
        "text": archive / "notes.txt",
    }
    return {"root": root, "archive": archive, "bundles": bundles, "expected": expected, "files": files}


def _hip_datalist(root: Path) -> Path:
    from monai_bone.data.datalist import build_datalist

    out = root / "hip_index" / "datalist.json"
    build_datalist(
        str(root / "hip" / "dicom"), str(out), clinical=[str(root / "hip" / "clinical.csv")], folds=1, progress=False
    )
    return out


def label_server(served: dict, studies, work: Path, **kwargs):
    """A :class:`LabelServer` over ``studies`` with the test bundles, small images, CPU and a free port."""
    from monai_bone.label.process import free_port
    from monai_bone.label.server import LabelServer

    return LabelServer(
        studies,
        work,
        port=free_port(),
        bundles=served["bundles"],
        overrides={"hip": SERVE_OVERRIDES, "knee": SERVE_OVERRIDES},
        device="cpu",
        **kwargs,
    )


def require_monailabel() -> None:
    """Skip without MONAI Label -- but fail in CI, where the test command installs the label extra."""
    import importlib.util

    if importlib.util.find_spec("monailabel") is None:
        reason = 'MONAI Label is not installed (pip install "monai-bone[label]")'
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
