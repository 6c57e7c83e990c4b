"""Work folder of ``label serve``: datastore links and ids, rejects, environment, model names, bundle checks."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from monai_bone.label.compat import install_pydicom2_uid_alias
from monai_bone.label.server import bundle_paths, parse_models, server_environment
from monai_bone.label.studies import image_id_for, prepare_studies


def test_image_ids() -> None:
    assert image_id_for("patient1/hip/IM0001.dcm") == "patient1__hip__IM0001"
    assert image_id_for(Path("a b/ä.png")) == "a_b___"
    assert image_id_for("DICOM/00000001") == "DICOM__00000001"


def test_prepare_studies_links_radiographs_and_records_rejects(served, tmp_path) -> None:
    out = prepare_studies(served["archive"], tmp_path, progress=False)
    studies = Path(out["studies"])
    links = sorted(p.name for p in studies.iterdir() if p.is_symlink())
    assert out["images"] == len(links) == 5
    hip = served["files"]["hip"][0]
    link = studies / f"{image_id_for(hip.relative_to(served['archive']))}.dcm"
    assert link.resolve() == hip.resolve()
    rejected = json.loads(Path(out["rejects"]).read_text())
    assert rejected["ct"].startswith("not_xray") and rejected["notes.txt"].startswith("not_dicom")
    # a second run replaces the links (no duplicates), never touching the archive
    before = sorted(p.name for p in served["archive"].rglob("*"))
    prepare_studies(served["archive"], tmp_path, progress=False)
    assert sorted(p.name for p in studies.iterdir() if p.is_symlink()) == links
    assert sorted(p.name for p in served["archive"].rglob("*")) == before
    url = "http://127.0.0.1:8042/dicom-web/"
    assert prepare_studies(url, tmp_path)["studies"] == url.rstrip("/")
    (tmp_path / "nothing").mkdir()
    with pytest.raises(ValueError, match="no usable images"):
        prepare_studies(tmp_path / "nothing", tmp_path / "w2", progress=False)


def test_environment_defaults_do_not_override_the_site(tmp_path) -> None:
    env = server_environment(tmp_path, {"MONAI_LABEL_DICOMWEB_SEARCH_FILTER": '{"Modality": "DX"}'})
    assert env["MONAI_LABEL_DICOMWEB_SEARCH_FILTER"] == '{"Modality": "DX"}'
    assert env["MONAI_LABEL_DICOMWEB_CONVERT_TO_NIFTI"] == "false" and env["MONAI_LABEL_TASKS_TRAIN"] == "false"
    assert json.loads(env["MONAI_LABEL_DATASTORE_FILE_EXT"]) == ["*.dcm", "*.png", "*.jpg", "*.jpeg"]
    assert server_environment(tmp_path, {})["MONAI_LABEL_DICOMWEB_SEARCH_FILTER"] == '{"Modality": "DX,CR"}'


def test_models_and_bundles(served, tmp_path) -> None:
    assert parse_models(None) == ["hip", "knee"] == parse_models("all")
    assert parse_models("knee_osteoporosis_hybrid_attention, hip") == ["knee", "hip"]
    with pytest.raises(ValueError, match="unknown model 'spine'"):
        parse_models("spine")
    assert bundle_paths(["hip"], served["bundles"]) == {"hip": Path(served["bundles"]["hip"]).resolve()}
    with pytest.raises(FileNotFoundError, match="knee bundle not found"):
        bundle_paths(["knee"], {"knee": tmp_path / "nope"})


def test_pydicom2_uid_alias() -> None:
    import pydicom

    installed = install_pydicom2_uid_alias()
    assert installed == (int(pydicom.__version__.split(".")[0]) >= 3) or not installed
    from pydicom._storage_sopclass_uids import SegmentationStorage  # what pydicom_seg imports

    assert SegmentationStorage == "1.2.840.10008.5.1.4.1.1.66.4"
    assert install_pydicom2_uid_alias() is False  # idempotent
    if os.environ.get("CI") == "true" or _has("pydicom_seg"):
        import pydicom_seg  # noqa: F401  (MONAI Label's import that pydicom 3 broke)


def _has(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def test_flat_png_folder_is_an_image_folder(tmp_path) -> None:
    from monai_bone.synthetic.synth import synthesize

    synthesize("knee", 2, tmp_path / "kop", size=64, seed=2, fmt="kop", progress=False, preset="simple")  # PNGs
    flat = tmp_path / "flat"
    flat.mkdir()
    for png in (tmp_path / "kop").rglob("*.png"):
        (flat / png.name).write_bytes(png.read_bytes())
    out = prepare_studies(flat, tmp_path / "work", progress=False)
    links = sorted(p.name for p in Path(out["studies"]).iterdir() if p.is_symlink())
    assert out["images"] == 2 and all(name.endswith(".png") for name in links)


def test_server_children_die_with_their_parent() -> None:
    """A test run killed by a timeout must not leave a server holding its port: the child gets SIGTERM."""
    import subprocess
    import sys
    import time

    script = (
        "import subprocess, sys, time\n"
        "from monai_bone.label.process import die_with_parent\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'], preexec_fn=die_with_parent)\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    parent.kill()  # SIGKILL: no cleanup code runs in the parent
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.1)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in state and "\nState:\tX" not in state


def test_command_line_carries_conf_and_extra_arguments(served, tmp_path) -> None:
    from monai_bone.label.server import LabelServer

    server = LabelServer(
        served["archive"],
        tmp_path / "w",
        port=18123,
        models=["knee"],
        bundles=served["bundles"],
        overrides={"knee": {"spatial_size": 96}},
        extra_args=["--ssl_keyfile", "k.pem"],
    )
    cmd = server.command()
    assert cmd[1:4] == ["-m", "monai_bone.label", "start_server"] and cmd[-2:] == ["--ssl_keyfile", "k.pem"]
    conf = {cmd[i + 1]: cmd[i + 2] for i, a in enumerate(cmd) if a == "--conf"}
    assert conf["models"] == "knee" and json.loads(conf["knee_overrides"]) == {"spatial_size": 96}
    assert conf["knee_bundle"] == str(Path(served["bundles"]["knee"]).resolve()) and "hip_bundle" not in conf
    assert (tmp_path / "w" / "app" / "main.py").read_text().count("BoneLabelApp") == 1
    assert cmd[cmd.index("--uvicorn_app") + 1] == "monai_bone.label.asgi:app"  # the request guard
    assert conf["max_upload_mb"] == "100" and conf["uploads"] == str((tmp_path / "w" / "uploads").resolve())
    assert server.environment()["TMPDIR"] == str((tmp_path / "w" / "tmp").resolve())
    assert (tmp_path / "w" / "tmp").is_dir()
    with pytest.raises(ValueError, match="positive"):
        LabelServer(served["archive"], tmp_path / "w2", max_upload_mb=0)
