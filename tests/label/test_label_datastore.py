"""The archive datastore and the request checks without a server: ids, file types, JSON fields, restart."""

from __future__ import annotations

import hashlib

import pytest
from _label_test_utils import require_monailabel

require_monailabel()

from monai_bone.label.datastore import ArchiveDatastore, check_upload_id, upload_suffix  # noqa: E402
from monai_bone.label.http import RequestRefused, json_object_field  # noqa: E402


@pytest.mark.parametrize("bad", ["../x", "..", "a/b", "a\\b", "/abs", ".hidden", "-x", "a..b", "x" * 129, "é"])
def test_upload_ids_are_checked(bad) -> None:
    with pytest.raises(RequestRefused) as err:
        check_upload_id(bad)
    assert err.value.status_code == 400 and err.value.reason == "malformed_id"


def test_upload_ids_pass_or_are_generated() -> None:
    assert check_upload_id("IM-0001_a.b") == "IM-0001_a.b"
    made = {check_upload_id(None), check_upload_id("")}
    assert len(made) == 2 and all(m.startswith("upload-") and len(m) == 19 for m in made)


@pytest.mark.parametrize(
    "text, problem",
    [("{bad", "not valid JSON"), ("null", "got null"), ("5", "got int"), ("[1]", "got list"), ('"s"', "got str")]
    + [('{"a": ' * 17 + "1" + "}" * 17, "nested too deeply"), ("[" * 5000 + "]" * 5000, "nested too deeply")],
)
def test_json_fields_must_be_shallow_objects(text, problem) -> None:
    with pytest.raises(RequestRefused, match=problem) as err:
        json_object_field("params", text)
    assert err.value.status_code == 400 and err.value.reason == "malformed_params"


def test_json_fields_accepted() -> None:
    assert json_object_field("params", "") == {}
    assert json_object_field("params", '{"clinical": {"age_bmd": 70}}') == {"clinical": {"age_bmd": 70}}


def test_upload_type_comes_from_the_content(tmp_path) -> None:
    cases = {b"\0" * 128 + b"DICM" + b"\0" * 8: ".dcm", b"\x89PNG\r\n\x1a\n..": ".png", b"\xff\xd8\xff\xe0..": ".jpg"}
    for i, (content, suffix) in enumerate(cases.items()):
        (tmp_path / f"f{i}.txt").write_bytes(content)
        assert upload_suffix(tmp_path / f"f{i}.txt") == suffix
    (tmp_path / "empty.dcm").write_bytes(b"")
    (tmp_path / "t.dcm").write_bytes(b"hello")
    with pytest.raises(RequestRefused, match="empty"):
        upload_suffix(tmp_path / "empty.dcm")
    with pytest.raises(RequestRefused) as err:
        upload_suffix(tmp_path / "t.dcm")
    assert err.value.status_code == 415


def _store(studies, uploads) -> ArchiveDatastore:
    return ArchiveDatastore(str(studies), uploads_path=uploads, extensions=["*.dcm", "*.png", "*.jpg"])


def test_archive_is_read_only_and_uploads_survive_a_restart(tmp_path) -> None:
    archive, studies, uploads = tmp_path / "archive", tmp_path / "work" / "studies", tmp_path / "work" / "uploads"
    archive.mkdir()
    original = b"\0" * 128 + b"DICM" + b"original"
    (archive / "a.dcm").write_bytes(original)
    studies.mkdir(parents=True)
    (studies / "a.dcm").symlink_to(archive / "a.dcm")
    store = _store(studies, uploads)
    upload = tmp_path / "tmp_upload"
    upload.write_bytes(b"\0" * 128 + b"DICM" + b"uploaded")
    for call, status in ((lambda: store.add_image("a", str(upload), {}), 409), (lambda: store.remove_image("a"), 403)):
        with pytest.raises(RequestRefused) as err:
            call()
        assert err.value.status_code == status and err.value.reason == "archive_read_only"
    assert (archive / "a.dcm").read_bytes() == original
    assert store.add_image("u1", str(upload), {"user": "x", "secret": "dropped"}) == "u1"
    assert store.is_upload("u1") and not store.is_upload("a")
    assert store.get_image_info("u1")["upload"] is True and "secret" not in store.get_image_info("u1")
    for link in studies.iterdir():  # what label serve does at the next start: links rebuilt from the index
        if link.is_symlink():
            link.unlink()
    (studies / "a.dcm").symlink_to(archive / "a.dcm")
    again = _store(studies, uploads)
    assert sorted(again.list_images()) == ["a", "u1"]
    assert hashlib.sha256((uploads / "u1.dcm").read_bytes()).digest() == hashlib.sha256(upload.read_bytes()).digest()
    again.remove_image("u1")
    assert sorted(again.list_images()) == ["a"] and not (uploads / "u1.dcm").exists()
    assert (archive / "a.dcm").read_bytes() == original


def test_form_scan_keeps_fields_and_counts_files() -> None:
    from requests import Request

    from monai_bone.label.form_scan import MalformedFormError, scan_form

    files = {"file": ("x.dcm", b"\1" * 300_000), "empty": ("e.dcm", b"")}
    req = Request("POST", "http://h/", data={"params": '{"a": 1}', "other": "ü"}, files=files).prepare()
    body = req.body
    chunks = [body[i : i + 7001] for i in range(0, len(body), 7001)]
    form = scan_form(req.headers["Content-Type"], chunks)
    assert form.fields == {"params": ['{"a": 1}'], "other": ["ü"]}
    assert form.files == {"file": [300_000], "empty": [0]}
    encoded = Request("POST", "http://h/", data={"params": "null"}).prepare()
    assert scan_form(encoded.headers["Content-Type"], [encoded.body.encode()]).fields == {"params": ["null"]}
    for content_type, data in [
        ("multipart/form-data", body),
        ("multipart/form-data; boundary=zzz", b"garbage"),
        (req.headers["Content-Type"], body.replace(b"Content-Disposition: form-data; ", b"X: ", 1)),
    ]:
        with pytest.raises(MalformedFormError):
            scan_form(content_type, [data])
    with pytest.raises(MalformedFormError, match="larger than"):
        scan_form(req.headers["Content-Type"], [body], max_field_bytes=4)
