"""DICOMweb index source against a real Orthanc (child process on 127.0.0.1), plus URL/paging unit tests.

The Orthanc tests skip only when the ``Orthanc`` binary or its DICOMweb plugin is not installed, and fail instead under
``CI=true`` (``.ci/run`` installs both).
Design choice checked here: objects of other modalities (the CT) are filtered out by the QIDO-RS search, never
retrieved, and therefore not in ``rejects.csv``; the folder index of the same files lists the CT as ``not_xray``.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import sys
from collections import Counter
from pathlib import Path

import pydicom
import pytest
import requests
from pydicom.data import get_testdata_file
from pydicom.uid import RLELossless, generate_uid

from monai_bone.cli import main
from monai_bone.data.dicom_records import RejectError
from monai_bone.data.sources import open_source
from monai_bone.data.sources.dicomweb import DicomwebError, DicomwebSource, is_dicomweb_url, split_dicomweb_url
from monai_bone.data.sources.dicomweb_cache import CACHE_MANIFEST
from monai_bone.data.sources.dicomweb_http import search_all as _search_all
from monai_bone.data.sources.dicomweb_instances import RemoteInstance
from monai_bone.synthetic.synth import synthesize

sys.path.insert(0, str(Path(__file__).parent))
from orthanc_server import OrthancServer, find_dicomweb_plugin, find_orthanc, port_is_free  # noqa: E402

HIP_ARGS = ["--task", "hip", "--folds", "2", "--no-progress"]
PRIVATE_NAME, PRIVATE_BIRTH = "Privacy^Test^Person", "19410203"


# -- unit tests (no server) ------------------------------------------------------------------------------------------
def test_url_parsing_and_credentials():
    assert is_dicomweb_url("http://127.0.0.1:8042/dicom-web") and is_dicomweb_url("DICOMweb+https://h/x")
    assert not is_dicomweb_url("cohort/dicom") and not is_dicomweb_url("C:/data") and not is_dicomweb_url("ftp://h/x")
    assert split_dicomweb_url("http://h:8042/dicom-web/") == ("http://h:8042/dicom-web", None)
    assert split_dicomweb_url("dicomweb+https://u%40x:p%3Aw@h/dw") == ("https://h/dw", ("u@x", "p:w"))
    with pytest.raises(ValueError, match="no host"):
        split_dicomweb_url("http:///dicom-web")
    with pytest.raises(ValueError, match="invalid port") as info:
        split_dicomweb_url("http://user:secret@h:99999/dw")
    assert "secret" not in str(info.value)


def test_open_source_dispatches_urls_without_network(tmp_path):
    src = open_source("https://user:secret@pacs.example.org/dicom-web", cache=tmp_path / "cache", progress=False)
    assert isinstance(src, DicomwebSource) and src.kind == "dicomweb"
    assert src.url == "https://pacs.example.org/dicom-web" and "secret" not in repr(src)
    assert src.cache == tmp_path / "cache" and src.cache.is_dir() and src.summary.requests == 0
    with pytest.raises(ValueError, match="folders only"):
        open_source("http://pacs.example.org/dicom-web", kind="dicom", cache=tmp_path / "c")
    with pytest.raises(ValueError, match="needs a URL"):
        open_source(tmp_path, kind="dicomweb")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="not a folder"):
        DicomwebSource("http://h/dw", tmp_path / "file")


def test_cache_paths_cannot_escape():
    good = RemoteInstance("1.2.3", "1.2.3.4", "1.2.3.4.5", "DX")
    assert good.valid and good.relpath == "1.2.3/1.2.3.4/1.2.3.4.5.dcm"
    evil = RemoteInstance("..", "../../etc", "passwd", "DX")
    assert not evil.valid and evil.relpath.startswith("_invalid_uid/") and ".." not in evil.relpath


def test_search_all_pages_and_stops_on_servers_ignoring_offset():
    data = [{"0020000D": {"vr": "UI", "Value": [f"1.{i}"]}} for i in range(5)]
    calls = []

    def paged(offset=0, **kwargs):
        calls.append(offset)
        return data[offset : offset + 2]

    assert _search_all(paged) == data and calls == [0, 2, 4, 5]

    def ignores_offset(offset=0, **kwargs):
        calls.append(offset)
        return data[:2]

    calls.clear()
    assert _search_all(ignores_offset) == data[:2] and len(calls) == 2
    with pytest.raises(ValueError, match="not a JSON array of DICOM data sets"):
        _search_all(lambda **kwargs: ["orthanc-id-1", "orthanc-id-2"])


# -- Orthanc ---------------------------------------------------------------------------------------------------------
def _multiframe_copy(src: Path, dst: Path) -> Path:
    """A DX with two frames (unsupported by the loader), a new SOP UID, and a patient name/birth date to look for."""
    ds = pydicom.dcmread(src)
    ds.NumberOfFrames = 2
    ds.PixelData = ds.PixelData * 2
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PatientName, ds.PatientBirthDate = PRIVATE_NAME, PRIVATE_BIRTH
    ds.save_as(dst, enforce_file_format=True)
    return dst


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """A local archive folder (synthetic hip + knee DX, one RLE-compressed, a multi-frame DX, a real CR, a CT) and an
    Orthanc holding the same files."""
    if find_orthanc() is None or find_dicomweb_plugin() is None:
        reason = "Orthanc / its DICOMweb plugin is not installed (apt-get install orthanc orthanc-dicomweb)"
        if os.environ.get("CI") == "true":  # .ci/run installs them: a skip there would hide a broken install step
            pytest.fail(reason)
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("dicomweb")
    synthesize("hip", 6, root / "hip", size=64, progress=False)
    synthesize("knee", 4, root / "knee", size=64, progress=False)
    folder = root / "archive"
    shutil.copytree(root / "hip" / "dicom", folder / "hip")
    shutil.copytree(root / "knee" / "dicom", folder / "knee")
    knee_files = sorted((folder / "knee").rglob("*.dcm"))
    rle = pydicom.dcmread(knee_files[0])
    rle.compress(RLELossless)
    rle.save_as(knee_files[0], enforce_file_format=True)
    _multiframe_copy(knee_files[1], folder / "knee" / "multiframe.dcm")
    ct = pydicom.dcmread(get_testdata_file("CT_small.dcm"))  # a CT series inside a hip DX study
    hip = pydicom.dcmread(sorted((folder / "hip").rglob("*.dcm"))[0], stop_before_pixels=True)
    ct.StudyInstanceUID, ct.PatientID = hip.StudyInstanceUID, hip.PatientID
    ct.save_as(folder / "ct.dcm", enforce_file_format=True)
    cr = Path(get_testdata_file("CT_small.dcm")).parent / "dicomdirtests" / "77654033" / "CR1" / "6154"
    shutil.copy(cr, folder / "cr.dcm")
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    with OrthancServer(workdir=root / "orthanc") as server:
        for path in files:
            assert server.upload(path)["Status"] == "Success", path
        yield {"root": root, "folder": folder, "server": server, "files": files, "rle_sop": str(rle.SOPInstanceUID)}
    assert port_is_free(server.port), "Orthanc's port is still bound after teardown"


def _index(source, out: Path, root: Path, *extra: str) -> dict:
    clinical = ["--clinical", str(root / "hip" / "clinical.csv"), "--clinical", str(root / "hip" / "ground_truth.csv")]
    assert main(["index", str(source), "--out", str(out), *clinical, *HIP_ARGS, *extra]) == 0
    return json.loads(out.read_text())


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as fp:
        return list(csv.DictReader(line for line in fp if not line.startswith("#")))


def test_dicomweb_index_matches_folder_index(archive, tmp_path, caplog):
    root, server = archive["root"], archive["server"]
    caplog.set_level(logging.DEBUG)
    local = _index(archive["folder"], tmp_path / "local" / "datalist.json", root)
    remote = _index(server.dicomweb_url, tmp_path / "remote" / "datalist.json", root)

    # same top-level keys and values except where the data came from
    assert remote["source"] == server.dicomweb_url and remote["source_kind"] == "dicomweb"
    own = ("source", "source_kind", "training", "run_id")  # run_id: each index run has its own
    assert {k: v for k, v in remote.items() if k not in own} == {k: v for k, v in local.items() if k not in own}
    # same records (folds included), modulo the image paths
    strip = {r["sop_instance_uid"]: {k: v for k, v in r.items() if k != "image"} for r in local["training"]}
    by_sop = {r["sop_instance_uid"]: {k: v for k, v in r.items() if k != "image"} for r in remote["training"]}
    assert len(by_sop) == len(remote["training"]) == 6 and by_sop == strip
    cache = tmp_path / "remote" / "dicomweb_cache"
    for record in remote["training"]:
        expected = f"dicomweb_cache/{record['study_instance_uid']}/"
        assert record["image"].startswith(expected) and record["image"].endswith(f"/{record['sop_instance_uid']}.dcm")
        assert (tmp_path / "remote" / record["image"]).is_file()

    # same rejects (knee: no clinical row; multi-frame: unsupported_image), except the CT, which QIDO filtered out
    local_rejects, remote_rejects = (
        _rows(tmp_path / "local" / "rejects.csv"),
        _rows(tmp_path / "remote" / "rejects.csv"),
    )
    local_reasons = Counter((r["reason"], r["detail"]) for r in local_rejects)
    remote_reasons = Counter((r["reason"], r["detail"]) for r in remote_rejects)
    ct = [r for r in local_rejects if r["path"].endswith("ct.dcm")]
    assert len(ct) == 1 and ct[0]["reason"] == "not_xray"
    assert remote_reasons == local_reasons - Counter({(ct[0]["reason"], ct[0]["detail"]): 1})
    assert Counter(r["reason"] for r in remote_rejects) == {
        "wrong_body_part": 5,
        "unsupported_image": 1,
    }  # knee and C-spine DX: not hip
    assert all(r["path"].startswith("dicomweb_cache/") for r in remote_rejects)

    def warnings_of(name):
        return Counter(tuple(v for k, v in r.items() if k != "path") for r in _rows(tmp_path / name / "warnings.csv"))

    assert warnings_of("remote") == warnings_of("local")

    # the cache holds exactly the DX/CR instances (the CR too), byte-identical, in their stored transfer syntax
    cached = sorted(p for p in cache.rglob("*.dcm"))
    uploaded = {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID: p for p in archive["files"]}
    ct_sop = pydicom.dcmread(archive["folder"] / "ct.dcm", stop_before_pixels=True).SOPInstanceUID
    assert {p.stem for p in cached} == set(uploaded) - {ct_sop} and len(cached) == len(archive["files"]) - 1
    for path in cached:
        assert path.read_bytes() == uploaded[path.stem].read_bytes(), path
    rle_file = next(p for p in cached if p.stem == archive["rle_sop"])
    assert pydicom.dcmread(rle_file).file_meta.TransferSyntaxUID == RLELossless
    manifest = json.loads((cache / CACHE_MANIFEST).read_text())["instances"]
    assert {Path(k).stem: v for k, v in manifest.items()} == {p.stem: p.stat().st_size for p in cached}

    # no patient name / birth date in outputs or logs
    text = caplog.text + "".join((tmp_path / "remote" / n).read_text() for n in ("datalist.json", "rejects.csv"))
    text += (tmp_path / "remote" / "warnings.csv").read_text()
    assert PRIVATE_NAME not in text and PRIVATE_NAME.replace("^", " ") not in text and PRIVATE_BIRTH not in text

    # second run: everything comes from the cache (no retrieval, files untouched), same datalist
    mtimes = {p: p.stat().st_mtime_ns for p in cached}
    again = _index(server.dicomweb_url, tmp_path / "remote" / "datalist.json", root)
    assert again.pop("run_id") != remote["run_id"]  # a new run, the same datalist
    assert again == {k: v for k, v in remote.items() if k != "run_id"}
    assert {p: p.stat().st_mtime_ns for p in cache.rglob("*.dcm")} == mtimes
    assert f"downloaded 0 (0.0 MB), from cache {len(cached)}, failed 0" in caplog.text


def test_cache_reuse_and_refetch_counts(archive, tmp_path):
    url = archive["server"].dicomweb_url
    n = len(archive["files"]) - 1  # every DX/CR instance (not the CT)
    session, sent = requests.Session(), []
    session.hooks["response"].append(lambda r, *a, **k: sent.append(r.url.split("/dicom-web", 1)[1]))
    first = DicomwebSource(url, tmp_path / "cache", progress=False, session=session)
    files = first.files()
    assert len(files) == n and first.summary.downloaded == n and first.summary.cached == 0
    # QIDO-RS filters on the server: studies by ModalitiesInStudy, series by Modality; only DX/CR retrieved (WADO-RS)
    study_searches = [u for u in sent if u.startswith("/studies?")]
    series_searches = [u for u in sent if u.split("?")[0].endswith("/series")]
    retrievals = [u for u in sent if "/instances/" in u]
    assert sorted(study_searches)[0].startswith("/studies?ModalitiesInStudy=CR") and len(study_searches) >= 2
    assert series_searches and all("Modality=DX" in u or "Modality=CR" in u for u in series_searches)
    assert len(retrievals) == n and len(sent) == first.summary.requests
    assert first.summary.instances == n and first.summary.studies == first.summary.series == n - 1  # 2 in one series
    n_requests = first.summary.requests
    files[0].write_bytes(files[0].read_bytes()[:-10])  # a damaged cache entry (size differs from the manifest)
    second = DicomwebSource(url, tmp_path / "cache", progress=False)
    assert second.files() == files
    assert second.summary.downloaded == 1 and second.summary.cached == n - 1
    assert second.summary.requests == n_requests - (n - 1)  # the searches are repeated, n - 1 retrievals are not
    assert second.read(files[0]).sop_instance_uid == files[0].stem
    cr = DicomwebSource(url, tmp_path / "cache", modalities=("CR",), progress=False)
    assert len(cr.files()) == 1 and cr.summary.cached == 1 and cr.read(cr.files()[0]).modality == "CR"


def test_failed_retrievals_become_rejects(archive, tmp_path):
    class WithMissing(DicomwebSource):
        def search(self):
            found = super().search()
            real = found[0]
            missing = RemoteInstance(real.study_instance_uid, real.series_instance_uid, "1.2.3.999", "DX")
            return [*found, missing, RemoteInstance("x/../..", "1", "2", "DX")]

    src = WithMissing(archive["server"].dicomweb_url, tmp_path / "cache", progress=False)
    files = src.files()
    n = len(archive["files"]) - 1
    assert len(files) == n + 2 and src.summary.failed == 2 and src.summary.downloaded == n
    with pytest.raises(RejectError) as info:
        src.read(files[-2])
    assert info.value.reason == "unreadable" and "HTTP 404" in info.value.detail and "1.2.3.999" in info.value.detail
    with pytest.raises(RejectError, match="malformed UID"):
        src.read(files[-1])
    assert files[-1].relative_to(src.cache).parts[0] == "_invalid_uid" and not files[-1].exists()


def test_unreachable_and_wrong_urls_give_clear_errors(archive, tmp_path, caplog, capsys):
    server = archive["server"]
    dead = f"http://127.0.0.1:{_closed_port()}/dicom-web"
    cases = {
        dead: ("cannot reach DICOMweb server", "Connection refused"),
        f"{server.url}/not-dicomweb": ("HTTP 404", "DICOMweb root"),
        server.url: ("not a JSON array of DICOM data sets", "DICOMweb root"),  # Orthanc's own REST API
    }
    for url, needles in cases.items():
        caplog.clear()
        rc = main(["index", url, "--out", str(tmp_path / "out" / "datalist.json"), "--no-progress"])
        assert rc == 1
        message = caplog.text
        assert url in message and all(n in message for n in needles), message
        assert "Traceback" not in message and "Traceback" not in capsys.readouterr().err
        assert not (tmp_path / "out" / "datalist.json").exists()
    with pytest.raises(DicomwebError, match="Connection refused"):
        DicomwebSource(dead, tmp_path / "c", progress=False, max_attempts=1).files()


def _closed_port() -> int:
    from orthanc_server import free_port

    return free_port()  # nothing listens there once the probe socket is closed


def test_orthanc_helper_is_loopback_only(archive):
    config = archive["server"].config
    assert config["RemoteAccessAllowed"] is False and config["DicomServerEnabled"] is False
    assert config["AuthenticationEnabled"] is False and config["Plugins"] == [find_dicomweb_plugin()]
    assert "dicom-web" in archive["server"].get_json("/plugins")
