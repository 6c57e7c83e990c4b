"""``monai-bone watch`` against a real Orthanc with DICOMweb: SR per DX study, CT skipped, idempotent reruns, a new
study picked up, Orthanc stopped mid-run (clear error, state intact, the next run finishes), no names in logs/state."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest
from _results_test_utils import OVERRIDES, make_bundles, run_inference, synth_dicom
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from monai_bone.results import read_sr_values
from monai_bone.results.pacs import PacsClient
from monai_bone.results.state import WatchState
from monai_bone.results.watch import WatchConfig, Watcher

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from orthanc_server import OrthancServer, find_dicomweb_plugin, find_orthanc  # noqa: E402

NAME, BIRTH = "Tester^Privata", "19390517"
pytestmark = pytest.mark.skipif(
    (find_orthanc() is None or find_dicomweb_plugin() is None) and os.environ.get("CI") != "true",
    reason="Orthanc + DICOMweb plugin not installed (apt-get install orthanc orthanc-dicomweb)",
)


def _copies(files: list[Path], out: Path, **changes) -> list[Path]:
    """Copies with fresh UIDs, a patient name / birth date and ``changes`` (the inputs stay untouched)."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for f in files:
        ds = pydicom.dcmread(f)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.PatientName, ds.PatientBirthDate = NAME, BIRTH
        for key, val in changes.items():
            setattr(ds, key, val)
        path = out / f"{ds.SOPInstanceUID}.dcm"
        ds.save_as(path, enforce_file_format=True)
        written.append(path)
    return written


def _cli_args(url: str, env: dict, bundles: dict) -> list[str]:
    args = ["watch", url, "--once", "--hip-bundle", str(bundles["hip"]), "--knee-bundle", str(bundles["knee"])]
    args += ["--state", env["state"], "--workdir", env["work"]]
    for task in ("hip", "knee"):
        args += [f"--override={task}.{k}={v}" for k, v in OVERRIDES.items()]
    return args


def _srs(client: PacsClient, study: str) -> list[dict]:
    return [s for s in client.series(study) if s["modality"] == "SR"]


def _sr_values(client: PacsClient, study: str) -> dict:
    (sr_series,) = _srs(client, study)
    (sop,) = client.instances(study, sr_series["series"])
    import io

    return read_sr_values(pydicom.dcmread(io.BytesIO(client.retrieve(study, sr_series["series"], sop))))


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("watch")
    hip_src = synth_dicom(root, "hip", 4, seed=11)
    knee_src = synth_dicom(root, "knee", 3, seed=12)
    bundles = make_bundles(root, hip_src)
    hip, knee = sorted(hip_src.rglob("*.dcm")), sorted(knee_src.rglob("*.dcm"))
    batches = {
        "first": _copies(hip[:2], root / "up1" / "hip") + _copies(knee[:1], root / "up1" / "knee"),
        "later": _copies(knee[1:2], root / "up2" / "knee"),
        "last": _copies(hip[2:3], root / "up3" / "hip") + _copies(knee[2:3], root / "up3" / "knee"),
    }
    # a chest DX (skipped: body part) and a hip DX whose pixel data do not fit its Rows (one error entry)
    env_odd = {
        "chest": _copies(hip[3:4], root / "odd" / "chest", BodyPartExamined="CHEST")[0],
        "broken": _copies(hip[3:4], root / "odd" / "broken", Rows=4096)[0],
    }
    ct = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ct.PatientName, ct.PatientBirthDate = NAME, BIRTH
    ct.save_as(root / "ct.dcm", enforce_file_format=True)
    expected = {}
    for up in ("up1", "up2", "up3"):
        for task in ("hip", "knee"):
            if (root / up / task).is_dir():
                rows = run_inference(bundles[task], root / up / task, root / f"ref_{up}_{task}")["predictions"]
                expected.update({Path(r["image"]).stem: (task, r) for r in rows})
    return {
        "root": root,
        "bundles": bundles,
        "batches": batches,
        "ct": root / "ct.dcm",
        **env_odd,
        "expected": expected,
        "state": str(root / "state.json"),
        "work": str(root / "work"),
    }


def _counts(env: dict) -> dict:
    counts = WatchState(env["state"]).counts()
    return {k: counts.get(k, 0) for k in ("done", "skipped", "error")}


def _study_of(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID)


def _check_values(client: PacsClient, files: list[Path], expected: dict) -> None:
    for f in files:
        task, row = expected[f.stem]
        values = _sr_values(client, _study_of(f))
        if task == "hip":
            assert values["BMD-FN-EST"] == pytest.approx(float(row["bmd"]), abs=1e-4)
            assert values["WHO-CAT"].lower() == row["who_class"]
        else:
            assert values["KNEE-PROB"] == pytest.approx(float(row["probability"]), abs=1e-4)
            assert values["KNEE-CLS"].lower() == row["class_name"]


def test_watch_round_trip(env, caplog):
    from monai_bone.cli import main

    orthanc_dir = env["root"] / "orthanc"
    with OrthancServer(workdir=orthanc_dir) as server:
        for f in [*env["batches"]["first"], env["ct"], env["chest"], env["broken"]]:
            server.upload(f)
        client = PacsClient(server.dicomweb_url)
        # 1. first run, as a user runs it (subprocess): one SR per DX study, none for the CT
        cmd = [sys.executable, "-m", "monai_bone", *_cli_args(server.dicomweb_url, env, env["bundles"])]
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"}, check=False
        )
        log = proc.stdout + proc.stderr
        assert proc.returncode == 0, log[-4000:]
        assert "modality CT is not DX/CR" in log and "BodyPartExamined 'CHEST' is not in the body-part map" in log
        assert _srs(client, _study_of(env["chest"])) == [] and _srs(client, _study_of(env["broken"])) == []
        for f in env["batches"]["first"]:
            assert len(_srs(client, _study_of(f))) == 1
        assert _srs(client, _study_of(env["ct"])) == []
        _check_values(client, env["batches"]["first"], env["expected"])
        state_text = Path(env["state"]).read_text()
        for text in (log, state_text):
            assert NAME not in text and "Tester" not in text and BIRTH not in text
        assert _counts(env) == {"done": 3, "skipped": 2, "error": 1}
        n_instances = server.get_json("/statistics")["CountInstances"]

        # 2. second run: nothing new stored
        assert main(_cli_args(server.dicomweb_url, env, env["bundles"])) == 0
        assert server.get_json("/statistics")["CountInstances"] == n_instances
        assert _counts(env) == {"done": 3, "skipped": 2, "error": 1}

        # 3. a study added afterwards is processed by the next run
        server.upload(env["batches"]["later"][0])
        assert main([*_cli_args(server.dicomweb_url, env, env["bundles"]), "--heatmap"]) == 0
        later_study = _study_of(env["batches"]["later"][0])
        assert len(_srs(client, later_study)) == 1
        # --heatmap: the Secondary Capture is stored in the same study, and the SR measurement has an image region
        assert [s["modality"] for s in client.series(later_study)].count("OT") == 1
        assert _sr_values(client, later_study)["region"] is not None
        _check_values(client, env["batches"]["later"], env["expected"])
        assert _counts(env) == {"done": 4, "skipped": 2, "error": 1}

        # 4. Orthanc stops after the first of two new SRs is stored: clear error, state intact
        for f in env["batches"]["last"]:
            server.upload(f)

        class StopAfterFirstStore(Watcher):
            def _store(self, item, row):
                super()._store(item, row)
                if server.process is not None:
                    server.stop()

        config = WatchConfig(
            bundles=env["bundles"], workdir=Path(env["work"]), overrides={"hip": OVERRIDES, "knee": OVERRIDES}
        )
        caplog.clear()
        watcher = StopAfterFirstStore(PacsClient(server.dicomweb_url), WatchState(env["state"]), config)
        assert watcher.run(once=True) == 1
        assert "cannot reach DICOMweb server" in caplog.text and "state kept in" in caplog.text
        assert _counts(env) == {"done": 5, "skipped": 2, "error": 1}

    # 5. Orthanc back (same storage, another port): the next run finishes the rest only
    with OrthancServer(workdir=orthanc_dir) as server:
        client = PacsClient(server.dicomweb_url)
        assert main(_cli_args(server.dicomweb_url, env, env["bundles"])) == 0
        assert _counts(env) == {"done": 6, "skipped": 2, "error": 1}
        every = env["batches"]["first"] + env["batches"]["later"] + env["batches"]["last"]
        for f in every:
            assert len(_srs(client, _study_of(f))) == 1
            (series,) = _srs(client, _study_of(f))
            assert len(client.instances(_study_of(f), series["series"])) == 1
        _check_values(client, env["batches"]["last"], env["expected"])


def test_watch_refuses_credentials_in_url_and_remote(caplog):
    from monai_bone.cli import main

    assert main(["watch", "http://user:secret@127.0.0.1:1/dicom-web", "--once", "--knee-bundle", "x"]) == 1
    assert "carries credentials" in caplog.text and "secret" not in caplog.text
    assert main(["watch", "http://192.0.2.1/dicom-web", "--once", "--knee-bundle", "x"]) == 1
    assert "--allow-remote" in caplog.text
