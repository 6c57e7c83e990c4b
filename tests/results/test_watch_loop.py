"""The watch loop without a server: exponential backoff while the server is down, a clean stop on SIGTERM, and no
credentials in the logs."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from monai_bone.label.process import free_port
from monai_bone.results.pacs import PacsClient, load_credentials
from monai_bone.results.state import WatchState
from monai_bone.results.watch import WatchConfig, Watcher, qido_since


def _bundle(root: Path) -> Path:
    """A folder with the two files ``resolve_bundle`` checks (no inference runs: the server is down)."""
    (root / "configs").mkdir(parents=True)
    (root / "models").mkdir()
    (root / "configs" / "inference.json").write_text("{}")
    (root / "models" / "model.pt").write_bytes(b"")
    return root


def test_backoff_while_server_down(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="monai_bone.results.watch")
    url = f"http://127.0.0.1:{free_port()}/dicom-web"
    config = WatchConfig(bundles={"knee": tmp_path}, workdir=tmp_path / "w", interval=0.05, max_backoff=0.1)
    watcher = Watcher(PacsClient(url), WatchState(tmp_path / "state.json"), config)
    thread = threading.Thread(target=watcher.run)
    thread.start()
    time.sleep(1.5)
    watcher.stop_event.set()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert caplog.text.count("cannot reach DICOMweb server") >= 2 and "retrying in" in caplog.text
    assert watcher.run(once=True) == 1


def test_sigterm_stops_cleanly_and_credentials_stay_secret(tmp_path):
    secret = "pa55-Wörd-secret"
    creds = tmp_path / "creds.txt"
    creds.write_text(f"watcher:{secret}\n")
    assert load_credentials(creds) == ("watcher", secret)
    url = f"http://127.0.0.1:{free_port()}/dicom-web"
    cmd = [sys.executable, "-m", "monai_bone", "watch", url, "--knee-bundle", str(_bundle(tmp_path / "b"))]
    cmd += ["--credentials-file", str(creds), "--state", str(tmp_path / "s.json"), "--workdir", str(tmp_path / "w")]
    cmd += ["--interval", "0.1", "--max-backoff", "0.2"]
    env = {**os.environ, "MONAI_BONE_DICOMWEB_PASSWORD": secret}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.monotonic() + 120
    lines: list[str] = []
    assert proc.stdout is not None
    while time.monotonic() < deadline:  # wait for the first failed poll (the process is up and looping)
        line = proc.stdout.readline()
        lines.append(line)
        if "cannot reach DICOMweb server" in line or not line:
            break
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    log = "".join(lines) + out
    assert proc.returncode == 0, log[-3000:]
    assert "cannot reach DICOMweb server" in log and "stopped; state kept in" in log
    assert secret not in log and "watcher:" not in log


def test_qido_date_window():
    assert qido_since(None, 2) is None and qido_since(None, 2, "20240101") == "20240101"
    assert qido_since("2026-03-02T10:00:00Z", 2) == "20260228"
    assert qido_since("2026-03-02T10:00:00Z", 2, "20260301") == "20260301"
    assert qido_since("2026-03-02T10:00:00Z", -1, "20200101") == "20200101"
