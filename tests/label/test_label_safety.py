"""The archive is read-only to a real MONAI Label server (``label serve`` over a local folder), and hostile or
malformed requests get JSON 4xx answers: uploads over or deletions of archive images, traversal ids (raw and
URL-encoded), an oversize body (small cap here), malformed ``params``, empty images. After every case the archive's
files are byte-identical (sha256), nothing was written outside the server's work folder, and ``/info/`` answers.

Needs the ``label`` extra (skips without it, fails in CI). One server for the module.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest
from _label_test_utils import label_server, require_monailabel

from monai_bone.bundle import BUNDLE_NAMES
from monai_bone.label.process import port_is_free
from monai_bone.label.studies import image_id_for

HIP, KNEE = BUNDLE_NAMES["hip"], BUNDLE_NAMES["knee"]
CAP_MB = 0.25  # a small cap keeps the oversize case small


def _sha256_tree(root: Path) -> dict[str, str]:
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def _listing(root: Path, skip: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` except those under ``skip``: path -> (size, mtime)."""
    out = {}
    for p in root.rglob("*"):
        if skip == p or skip in p.parents or not p.is_file():
            continue
        st = p.stat()
        out[str(p)] = (st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture(scope="module")
def guarded(served, tmp_path_factory):
    """A server over the test archive with a 0.25 MB upload cap, and the state to compare against."""
    require_monailabel()
    import requests

    work = tmp_path_factory.mktemp("label_safety")
    base = tmp_path_factory.getbasetemp()
    server = label_server(served, served["archive"], work, max_upload_mb=CAP_MB)
    before = {"archive": _sha256_tree(served["archive"]), "outside": _listing(base, work)}
    with server:
        ctx = {"server": server, "url": server.url, "work": work, "base": base, "before": before, "http": requests}
        ctx["tmp"] = set((work / "tmp").iterdir())
        ctx["hip_id"] = image_id_for(served["files"]["hip"][0].relative_to(served["archive"]))
        ctx["knee_id"] = image_id_for(served["files"]["knee"][0].relative_to(served["archive"]))
        yield ctx
    assert port_is_free(server.port)


def _untouched(ctx: dict, served: dict) -> None:
    """The archive byte-identical, nothing new or changed outside the work folder, no request file left in the
    server's temporary folder (MONAI Label deletes it after the answer), /info/ answering."""
    assert _sha256_tree(served["archive"]) == ctx["before"]["archive"]
    assert _listing(ctx["base"], ctx["work"]) == ctx["before"]["outside"]
    assert ctx["http"].get(f"{ctx['url']}/info/", timeout=30).status_code == 200
    deadline = time.monotonic() + 10
    while set((ctx["work"] / "tmp").iterdir()) != ctx["tmp"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert set((ctx["work"] / "tmp").iterdir()) == ctx["tmp"]  # (MONAI Label's log config, written at start-up)


def _refused(response, status: int, reason: str) -> dict:
    assert response.status_code == status, (status, response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json"), response.text
    body = response.json()
    assert isinstance(body["detail"], str) and body["detail"], body
    assert body.get("reason") == reason, body
    return body


def _put_image(ctx: dict, image: str | None, content: bytes, filename: str = "study.dcm", route: str = "/datastore/"):
    params = {"image": image} if image is not None else None
    files = {"file": (filename, content)}
    return ctx["http"].put(f"{ctx['url']}{route}", params=params, files=files, timeout=60)


def test_archive_images_cannot_be_replaced_or_deleted(served, guarded) -> None:
    http, url = guarded["http"], guarded["url"]
    dicom = served["files"]["knee"][1].read_bytes()
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
    for route in ("/datastore/", "/datastore/image"):
        body = _refused(_put_image(guarded, guarded["hip_id"], dicom, route=route), 409, "archive_read_only")
        assert "read-only" in body["detail"]
        _refused(_put_image(guarded, guarded["hip_id"], png, "x.png", route=route), 409, "archive_read_only")
        text = _put_image(guarded, guarded["hip_id"], b"20 bytes of text....", "a.txt", route)
        _refused(text, 409, "archive_read_only")
    for route in ("/datastore/", "/datastore/image"):
        _refused(http.delete(f"{url}{route}", params={"id": guarded["hip_id"]}, timeout=60), 403, "archive_read_only")
    _refused(http.delete(f"{url}/datastore/", params={"id": "no_such_image"}, timeout=60), 404, "unknown_image")
    label = {"label": ("l.nii.gz", b"\0" * 32)}
    put_label = http.put(f"{url}/datastore/label", params={"image": guarded["hip_id"], "tag": "final"}, files=label)
    _refused(put_label, 403, "no_labels")
    _refused(http.delete(f"{url}/datastore/label", params={"id": guarded["hip_id"], "tag": "final"}), 403, "no_labels")
    _refused(http.put(f"{url}/model/{HIP}", files={"file": ("m.pt", b"x")}, timeout=60), 405, "read_only")
    _refused(http.delete(f"{url}/model/{HIP}", timeout=60), 405, "read_only")
    for job in (f"/train/{HIP}", "/scoring/x", "/activelearning/random", f"/batch/infer/{HIP}"):
        _refused(http.post(f"{url}{job}", timeout=60), 405, "not_offered")
    info = http.get(f"{url}/datastore/", params={"output": "all"}, timeout=30).json()
    assert guarded["hip_id"] in info["objects"]  # still listed and inferable
    assert http.post(f"{url}/infer/{HIP}", params={"image": guarded["hip_id"], "output": "json"}).status_code == 200
    _untouched(guarded, served)


@pytest.mark.parametrize(
    "query",
    [
        "image=../../evil",
        "image=..%2F..%2Fevil",
        "image=%2e%2e%2f%2e%2e%2fevil",
        "image=/tmp/evil",
        "image=%2Ftmp%2Fevil",
        "image=sub/evil",
        "image=sub%5Cevil",
        "image=..",
        "image=.hidden",
        "image=" + "a" * 129,
    ],
)
def test_traversal_and_malformed_upload_ids_are_400(served, guarded, query) -> None:
    dicom = served["files"]["knee"][1].read_bytes()
    r = guarded["http"].put(f"{guarded['url']}/datastore/?{query}", files={"file": ("s.dcm", dicom)}, timeout=60)
    _refused(r, 400, "malformed_id")
    studies = guarded["work"] / "studies"
    for depth in range(1, 5):
        assert not (studies / ("../" * depth + "evil.dcm")).exists()
    _untouched(guarded, served)


def test_upload_is_stored_in_the_upload_area_inferred_and_deleted(served, guarded) -> None:
    http, url, work = guarded["http"], guarded["url"], guarded["work"]
    knee = served["files"]["knee"][1]
    r = _put_image(guarded, "my-upload.1", knee.read_bytes(), filename="../../../escape.dcm")
    assert r.status_code == 200, r.text
    assert r.json() == {"image": "my-upload.1"}
    stored = work / "uploads" / "my-upload.1.dcm"
    assert stored.read_bytes() == knee.read_bytes()
    assert (work / "studies" / "my-upload.1.dcm").resolve() == stored.resolve()
    r = http.post(f"{url}/infer/{KNEE}", params={"image": "my-upload.1", "output": "json"}, timeout=120)
    assert r.status_code == 200, r.text
    assert r.json()["class_name"] == served["expected"]["knee"][knee.name]["class_name"]
    # an upload may be replaced (it is not the archive's), then deleted
    assert _put_image(guarded, "my-upload.1", knee.read_bytes()).status_code == 200
    named = _put_image(guarded, None, knee.read_bytes(), filename="../../from-name.dcm")  # id from the base name
    assert named.status_code == 200 and named.json() == {"image": "from-name"}
    generated = _put_image(guarded, None, knee.read_bytes(), filename="")
    assert generated.status_code == 200 and generated.json()["image"].startswith("upload-"), generated.text
    for image_id in ("my-upload.1", "from-name", generated.json()["image"]):
        assert http.delete(f"{url}/datastore/", params={"id": image_id}, timeout=60).status_code == 200
    assert list((work / "uploads").iterdir()) == []
    assert http.get(f"{url}/datastore/", timeout=30).json()["total"] == 5
    _untouched(guarded, served)


def test_uploads_of_other_file_types_are_415(served, guarded) -> None:
    _refused(_put_image(guarded, "notes", b"just some text\n", "notes.txt"), 415, "unsupported_file")
    _untouched(guarded, served)


def test_oversize_bodies_are_413(served, guarded) -> None:
    http, url = guarded["http"], guarded["url"]
    big = b"\0" * int(CAP_MB * 1024 * 1024 + 50_000)
    body = _refused(_put_image(guarded, "big", big, "big.dcm"), 413, "upload_too_large")
    assert "0.25 MB" in body["detail"]
    r = http.post(f"{url}/infer/{HIP}", params={"output": "json"}, files={"file": ("big.dcm", big)}, timeout=60)
    _refused(r, 413, "upload_too_large")

    def chunks():  # no Content-Length: the body is counted as it arrives
        for _ in range(8):
            yield b"\0" * 64_000

    r = http.put(f"{url}/datastore/", params={"image": "chunked"}, data=chunks(), timeout=60)
    _refused(r, 413, "upload_too_large")
    assert not (guarded["work"] / "uploads" / "big.dcm").exists()
    _untouched(guarded, served)


@pytest.mark.parametrize(
    "params",
    ["{bad json", "null", "5", "[1, 2]", '"text"', '{"a": ' * 40 + "1" + "}" * 40, "[" * 20_000 + "]" * 20_000],
    ids=["bad_json", "null", "number", "list", "string", "nested_40", "nested_20000"],
)
def test_malformed_params_are_400(served, guarded, params) -> None:
    http, url = guarded["http"], guarded["url"]
    image = {"image": guarded["hip_id"], "output": "json"}
    r = http.post(f"{url}/infer/{HIP}", params=image, data={"params": params}, timeout=60)
    _refused(r, 400, "malformed_params")
    knee = served["files"]["knee"][1].read_bytes()
    r = http.put(f"{url}/datastore/", params={"image": "p"}, data={"params": params}, files={"file": ("p.dcm", knee)})
    _refused(r, 400, "malformed_params")
    r = http.put(f"{url}/datastore/image/info", params={"image": guarded["hip_id"]}, data={"info": params})
    _refused(r, 400, "malformed_params")
    _untouched(guarded, served)


def test_infer_params_cannot_replace_the_image(served, guarded) -> None:
    http, url = guarded["http"], guarded["url"]
    knee = {"file": ("k.dcm", served["files"]["knee"][0].read_bytes())}
    for params in ({"image": "/etc/passwd"}, {"image": guarded["hip_id"]}, {"model": KNEE}, {"label": "x"}):
        data = {"params": json.dumps(params)}
        r = http.post(f"{url}/infer/{HIP}", params={"image": guarded["hip_id"]}, data=data, timeout=60)
        _refused(r, 400, "malformed_params")
        _refused(http.post(f"{url}/infer/{KNEE}", data=data, files=knee, timeout=60), 400, "malformed_params")
    _untouched(guarded, served)


def test_empty_and_missing_images_are_400(served, guarded) -> None:
    http, url = guarded["http"], guarded["url"]
    empty = {"file": ("empty.dcm", b"")}
    _refused(http.post(f"{url}/infer/{KNEE}", params={"output": "json"}, files=empty, timeout=60), 400, "empty_image")
    _refused(http.post(f"{url}/infer/{KNEE}", params={"output": "json"}, timeout=60), 400, "no_image")
    _refused(http.post(f"{url}/infer/{KNEE}", params={"session_id": "x"}, timeout=60), 400, "sessions_off")
    seg = {"image": guarded["knee_id"], "output": "dicom_seg"}
    _refused(http.post(f"{url}/infer/{KNEE}", params=seg, timeout=60), 400, "unsupported_output")
    _refused(_put_image(guarded, "empty", b"", "empty.dcm"), 400, "empty_image")
    garbage = http.post(f"{url}/infer/{KNEE}", data=b"\x00garbage", headers={"content-type": "multipart/form-data"})
    _refused(garbage, 400, "malformed_request")
    _untouched(guarded, served)


def test_predictor_reasons_pass_through(served, guarded) -> None:
    ct = image_id_for(served["files"]["ct"].relative_to(served["archive"]))
    r = guarded["http"].post(f"{guarded['url']}/infer/{HIP}", params={"image": ct, "output": "json"}, timeout=60)
    _refused(r, 422, "not_xray")
    params = {"params": json.dumps({"weight": "heavy"})}
    r = guarded["http"].post(f"{guarded['url']}/infer/{HIP}", params={"image": guarded["hip_id"]}, data=params)
    assert r.status_code == 400 and "'weight'" in r.json()["detail"]
    _untouched(guarded, served)
