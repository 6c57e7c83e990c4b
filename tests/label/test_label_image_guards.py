"""A real MONAI Label server refuses images a model was not made for: 422 with the guard's reason for a knee DX sent to
the hip model (and a hip DX to the knee model), a lateral hip view and a blank image -- stored or uploaded -- while
good studies still get predictions. Untrained bundle copies, SYNTHETIC images."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from _label_test_utils import SERVE_OVERRIDES, require_monailabel

from monai_bone.bundle import BUNDLE_NAMES, default_bundle_dir, untrained_copy
from monai_bone.data.folds import load_records
from monai_bone.label.server import LabelServer
from monai_bone.label.studies import image_id_for
from monai_bone.synthetic.dicom_writer import write_dx
from monai_bone.synthetic.phantom import render_phantom
from monai_bone.synthetic.synth import synthesize

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from orthanc_server import free_port  # noqa: E402

HIP, KNEE = BUNDLE_NAMES["hip"], BUNDLE_NAMES["knee"]


def _archive(root):
    synthesize("hip", 2, root / "hip", size=64, seed=8, progress=False)
    archive = root / "archive"
    shutil.copytree(root / "hip" / "dicom", archive / "hip")
    knee = render_phantom("knee", 0.8, 26.0, size=64, seed=3, bits_stored=12).pixels
    hip = render_phantom("hip", 0.8, 26.0, size=64, seed=4, bits_stored=12).pixels
    files = {
        "knee": write_dx(archive / "odd" / "knee.dcm", knee, patient_id="G-KNEE", body_part="KNEE", uid_seed="gk"),
        "lateral": write_dx(
            archive / "odd" / "lateral.dcm",
            hip,
            patient_id="G-LAT",
            body_part="HIP",
            uid_seed="gl",
            extra={"ViewPosition": "LL"},
        ),  # fmt: skip
        "blank": write_dx(archive / "odd" / "blank.dcm", np.full((64, 64), 700), patient_id="G-BL", body_part="HIP"),
        "hip": sorted((archive / "hip").rglob("*.dcm"))[0],
    }
    return archive, files


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    require_monailabel()
    from monai_bone.data.datalist import build_datalist

    root = tmp_path_factory.mktemp("label_guards")
    archive, files = _archive(root)
    index = root / "hip_index" / "datalist.json"
    build_datalist(root / "hip" / "dicom", index, clinical=[root / "hip" / "clinical.csv"], folds=1, progress=False)
    bundles = {
        "hip": untrained_copy(default_bundle_dir("hip"), root / "bundles" / HIP, load_records(index), seed=0),
        "knee": untrained_copy(default_bundle_dir("knee"), root / "bundles" / KNEE, seed=0),
    }
    srv = LabelServer(
        archive,
        root / "work",
        port=free_port(),
        bundles=bundles,
        overrides={"hip": SERVE_OVERRIDES, "knee": SERVE_OVERRIDES},
        device="cpu",
    )
    with srv:
        yield srv, archive, files


def _infer(srv, model, image, files=None):
    import requests

    return requests.post(
        f"{srv.url}/infer/{model}", params={"image": image, "output": "json"}, files=files, timeout=120
    )


def test_wrong_images_get_422_with_the_reason(server):
    import requests

    srv, archive, files = server

    def image(name):
        return image_id_for(files[name].relative_to(archive))

    cases = [
        (HIP, "knee", "wrong_body_part", "KNEE"),
        (HIP, "lateral", "wrong_view", "LL"),
        (HIP, "blank", "blank_image", "grey levels"),
        (KNEE, "hip", "wrong_body_part", "HIP"),
    ]
    for model, name, reason, detail in cases:
        r = _infer(srv, model, image(name))
        assert r.status_code == 422, (model, name, r.status_code, r.text)
        body = r.json()
        assert reason in body["detail"] and detail in body["detail"] and files[name].name in body["detail"], body
        assert "bmd" not in body and "prediction" not in body
    # uploaded with the request: the same answer
    r = _infer(srv, HIP, "", files={"file": ("study.dcm", files["knee"].read_bytes())})
    assert r.status_code == 422 and "wrong_body_part" in r.json()["detail"], r.text
    # the right images still get predictions, and the server keeps answering
    ok = _infer(srv, HIP, image("hip"))
    assert ok.status_code == 200 and np.isfinite(ok.json()["bmd"]), ok.text
    assert _infer(srv, KNEE, image("knee")).status_code == 200
    assert requests.get(f"{srv.url}/info/", timeout=30).status_code == 200
