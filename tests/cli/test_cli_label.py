"""``monai-bone label serve``: argument errors before anything starts; a real foreground server stopped by Ctrl-C."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from monai_bone.cli import main
from monai_bone.cli.label import parse_override

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "label"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from _label_test_utils import require_monailabel, served  # noqa: E402,F401  (fixture shared with tests/label)
from orthanc_server import free_port, port_is_free  # noqa: E402


def test_parse_override() -> None:
    assert parse_override("hip.spatial_size=128") == ("hip", "spatial_size", 128)
    assert parse_override('knee.labels=["a","b"]') == ("knee", "labels", ["a", "b"])
    assert parse_override("hip.device=cuda:1") == ("hip", "device", "cuda:1")
    for bad in ("spatial_size=1", "elbow.x=1", "hip.x"):
        with pytest.raises(ValueError, match="TASK.ID=VALUE"):
            parse_override(bad)


def test_serve_refuses_bad_arguments_before_starting(tmp_path, caplog) -> None:
    require_monailabel()
    studies = tmp_path / "studies"
    studies.mkdir()
    port = free_port()
    args = ["label", "serve", "--studies", str(studies), "--port", str(port), "--workdir", str(tmp_path / "w")]
    assert main([*args, "--override", "nonsense"]) == 1
    assert main([*args, "--models", "elbow"]) == 1
    assert main([*args, "--hip-bundle", str(tmp_path / "missing")]) == 1
    empty_bundle = tmp_path / "untrained"
    (empty_bundle / "configs").mkdir(parents=True)
    (empty_bundle / "configs" / "inference.json").write_text("{}")
    assert main([*args, "--models", "hip", "--hip-bundle", str(empty_bundle)]) == 1
    assert main([*args, "--max-upload-mb", "0"]) == 1
    text = caplog.text
    assert "upload cap must be a positive number of MB" in text
    assert "TASK.ID=VALUE" in text and "unknown model 'elbow'" in text and "hip bundle not found" in text
    assert "models/model.pt not found; serve a trained bundle" in text
    assert port_is_free(port)


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                state = (proc / "status").read_text()
            except OSError:
                continue
            if text in cmdline and "\nState:\tZ" not in state:
                found.append(int(proc.name))
    return found


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_serve_runs_in_the_foreground_until_stopped(served, tmp_path, stop_signal) -> None:  # noqa: F811
    require_monailabel()
    port = free_port()
    script = Path(sys.executable).parent / "monai-bone"  # the console script a user runs
    cmd = [str(script)] if script.is_file() else [sys.executable, "-m", "monai_bone"]
    cmd += ["label", "serve", "--studies", str(served["archive"])]
    cmd += ["--port", str(port), "--workdir", str(tmp_path / "work"), "--device", "cpu", "--no-progress"]
    cmd += ["--hip-bundle", str(served["bundles"]["hip"]), "--knee-bundle", str(served["bundles"]["knee"])]
    cmd += ["--override", "hip.spatial_size=64", "--override", "knee.spatial_size=64", "--max-upload-mb", "0.5"]
    log = open(tmp_path / "cli.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        info = None
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/info/", timeout=5) as r:
                    info = json.load(r)
                    break
            except OSError:
                time.sleep(0.5)
        assert info is not None, (tmp_path / "cli.log").read_text()[-3000:]
        assert set(info["models"]) == {"hip_bmd_xattn", "knee_osteoporosis_hybrid_attention"}
        url = f"http://127.0.0.1:{port}/datastore/?image=big"
        big = urllib.request.Request(url, data=b"\0" * 600_000, method="PUT")
        with pytest.raises(urllib.error.HTTPError) as err:  # the --max-upload-mb cap reached the server
            urllib.request.urlopen(big, timeout=60)
        assert err.value.code == 413 and json.load(err.value)["reason"] == "upload_too_large"
        proc.send_signal(stop_signal)  # Ctrl-C or a service manager's SIGTERM reaches the CLI only
        assert proc.wait(timeout=60) is not None
    finally:
        if proc.poll() is None:
            import os

            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
    deadline = time.monotonic() + 20
    while not port_is_free(port) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert port_is_free(port)
    assert _processes_mentioning(str(tmp_path / "work")) == []  # the MONAI Label child stopped with its CLI
    assert (tmp_path / "work" / "app" / "main.py").is_file()
    assert (tmp_path / "work" / "index" / "rejects.csv").is_file()
