"""A real MONAI Label server (child process on 127.0.0.1) with the monai-bone app, over a local folder and over a
real Orthanc DICOMweb server: /info/, predictions equal to the bundles' inference.json, 4xx answers, clean teardown.

Needs the ``label`` extra (skips without it, fails in CI) and, for the DICOMweb part, Orthanc with its DICOMweb plugin
(``.ci/run`` installs both).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pydicom
import pytest
from _label_test_utils import label_server, require_monailabel

from monai_bone.bundle import BUNDLE_NAMES
from monai_bone.label.process import port_is_free
from monai_bone.label.server import LabelServer
from monai_bone.label.studies import image_id_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from orthanc_server import OrthancServer, find_dicomweb_plugin, find_orthanc  # noqa: E402

HIP, KNEE = BUNDLE_NAMES["hip"], BUNDLE_NAMES["knee"]


def _infer(server: LabelServer, model: str, image: str, params: dict | None = None, files=None):
    import requests

    data = {"params": json.dumps(params)} if params else None
    return requests.post(
        f"{server.url}/infer/{model}", params={"image": image, "output": "json"}, data=data, files=files, timeout=120
    )


def _check_hip(got: dict, ref: dict) -> None:
    assert abs(got["bmd"] - ref["bmd"]) <= 1e-5 and abs(got["t_score"] - ref["t_score"]) <= 1e-5
    assert got["who_class"] == ref["who_class"]


def _check_knee(got: dict, ref: dict) -> None:
    assert got["class_name"] == ref["class_name"]
    assert got["prediction"][0]["label"] == ref["class_name"]
    for item in got["prediction"]:
        assert abs(item["score"] - ref[f"prob_{item['label']}"]) <= 1e-5


@pytest.fixture(scope="module")
def local_server(served, tmp_path_factory):
    require_monailabel()
    server = label_server(served, served["archive"], tmp_path_factory.mktemp("label_local"))
    with server:
        yield server
    assert port_is_free(server.port), "MONAI Label's port is still bound after teardown"


def test_info_lists_both_models(local_server) -> None:
    import requests

    info = requests.get(f"{local_server.url}/info/", timeout=30).json()
    assert set(info["models"]) == {HIP, KNEE}
    assert info["models"][KNEE]["type"] == "classification"
    assert info["models"][HIP]["monai_bone"]["task"] == "hip"
    assert info["datastore"]["total"] == 5  # 3 hip + 2 knee radiographs; the CT and the text file are not listed


def test_local_predictions_equal_bundle_inference(served, local_server) -> None:
    archive = served["archive"]
    for f in served["files"]["hip"]:
        r = _infer(local_server, HIP, image_id_for(f.relative_to(archive)))
        assert r.status_code == 200, r.text
        _check_hip(r.json(), served["expected"]["hip"][f.name])
    for f in served["files"]["knee"]:
        r = _infer(local_server, KNEE, image_id_for(f.relative_to(archive)))
        assert r.status_code == 200, r.text
        _check_knee(r.json(), served["expected"]["knee"][f.name])


def test_hip_request_params_and_missing_fields(served, local_server) -> None:
    f = served["files"]["hip"][0]
    image = image_id_for(f.relative_to(served["archive"]))
    r = _infer(local_server, HIP, image, {"age_bmd": 70, "clinical": {"smoking": "never", "alcohol": 1}})
    assert r.status_code == 200, r.text
    got = r.json()
    assert set(got["missing_fields"]) == {"activity", "diet_score"}
    assert got["clinical_source"]["age_bmd"] == "request" and got["clinical_source"]["sex"] == "dicom"
    assert set(got["field_attention"]) >= {"age_bmd", "smoking"}
    assert got["synthetic"] is True


def test_bad_requests_get_4xx_and_the_server_keeps_answering(served, local_server) -> None:
    import requests

    archive, hip_id = served["archive"], image_id_for(served["files"]["hip"][0].relative_to(served["archive"]))
    text = served["files"]["text"]
    cases = [
        (_infer(local_server, "no_such_model", hip_id), 404, "unknown model"),
        (_infer(local_server, HIP, "no_such_image"), 404, "unknown image id"),
        (_infer(local_server, HIP, image_id_for(served["files"]["ct"].relative_to(archive))), 422, "not_xray"),
        (_infer(local_server, HIP, "../../etc/passwd"), 400, "malformed image id"),
        (_infer(local_server, HIP, str(served["files"]["hip"][0])), 403, "datastore id"),
        (_infer(local_server, HIP, hip_id, {"weight": "heavy"}), 400, "'weight'"),
        (_infer(local_server, KNEE, "", files={"file": ("notes.txt", text.read_bytes())}), 415, "not a DICOM file"),
    ]
    for response, status, text_part in cases:
        assert response.status_code == status, (status, response.text)
        assert text_part in response.json()["detail"]
    assert requests.get(f"{local_server.url}/info/", timeout=30).status_code == 200
    assert _infer(local_server, HIP, hip_id).status_code == 200


def test_uploaded_dicom_file_is_predicted(served, local_server) -> None:
    f = served["files"]["knee"][0]
    r = _infer(local_server, KNEE, "", files={"file": ("study.dcm", f.read_bytes())})
    assert r.status_code == 200, r.text
    _check_knee(r.json(), served["expected"]["knee"][f.name])


def test_orthanc_backed_predictions(served, tmp_path_factory) -> None:
    require_monailabel()
    if find_orthanc() is None or find_dicomweb_plugin() is None:
        reason = "Orthanc / its DICOMweb plugin is not installed (apt-get install orthanc orthanc-dicomweb)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    work = tmp_path_factory.mktemp("label_dicomweb")
    uploads = served["files"]["hip"] + served["files"]["knee"] + [served["files"]["ct"]]
    with OrthancServer(workdir=work / "orthanc") as orthanc:
        for f in uploads:
            assert orthanc.upload(f)["Status"] == "Success", f
        series = {f.name: str(pydicom.dcmread(f, stop_before_pixels=True).SeriesInstanceUID) for f in uploads}
        server = label_server(served, orthanc.dicomweb_url, work / "label")
        with server:
            import requests

            info = requests.get(f"{server.url}/info/", timeout=30).json()
            assert set(info["models"]) == {HIP, KNEE}
            assert info["datastore"]["total"] == 5  # the DX series; the CT is filtered out by the search
            for f in served["files"]["hip"]:
                r = _infer(server, HIP, series[f.name])
                assert r.status_code == 200, r.text
                _check_hip(r.json(), served["expected"]["hip"][f.name])
            for f in served["files"]["knee"]:
                r = _infer(server, KNEE, series[f.name])
                assert r.status_code == 200, r.text
                _check_knee(r.json(), served["expected"]["knee"][f.name])
            ct = _infer(server, HIP, series["ct.dcm"])
            assert ct.status_code == 422 and "not_xray" in ct.json()["detail"]
            unknown = _infer(server, HIP, "1.2.3.4.5.6.7.8.9")
            assert unknown.status_code == 404, unknown.text
            hip_series = series[served["files"]["hip"][0].name]  # the PACS is read-only to the server
            upload = {"file": ("s.dcm", served["files"]["knee"][0].read_bytes())}
            put = requests.put(f"{server.url}/datastore/", params={"image": hip_series}, files=upload, timeout=60)
            delete = requests.delete(f"{server.url}/datastore/", params={"id": hip_series}, timeout=60)
            for r in (put, delete):
                assert r.status_code == 403 and r.json()["reason"] == "archive_read_only", r.text
            assert len(orthanc.get_json("/instances")) == len(uploads)
            assert requests.get(f"{server.url}/info/", timeout=30).status_code == 200
        assert port_is_free(server.port)
    assert port_is_free(orthanc.port)
