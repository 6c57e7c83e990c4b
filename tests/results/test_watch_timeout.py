"""``monai-bone watch --nproc 2 --timeout T`` against a real Orthanc, with a bundle whose REAL torchrun ranks hang (and
ignore SIGTERM, as does a child of each): the poll ends after the timeout with every process of the run gone, the
instance gets an error entry naming the timeout, and the command exits 0 (the watch goes on). SIGTERM to the watch while
the ranks hang stops it promptly, the run killed, and leaves the instance pending for the restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _hang_bundle import TIMEOUTS, clear_ready, hanging_bundle, hanging_pids, survivors
from _results_test_utils import synth_dicom

from monai_bone.results.state import WatchState
from monai_bone.results.watch import DEFAULT_TORCHRUN_TIMEOUT

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from orthanc_server import OrthancServer, find_dicomweb_plugin, find_orthanc  # noqa: E402

pytestmark = pytest.mark.skipif(
    (find_orthanc() is None or find_dicomweb_plugin() is None) and os.environ.get("CI") != "true",
    reason="Orthanc + DICOMweb plugin not installed (apt-get install orthanc orthanc-dicomweb)",
)
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(Orthanc with one synthetic hip DX, the hanging bundle, the instance's SOP Instance UID, a folder)."""
    import pydicom

    root = tmp_path_factory.mktemp("watch_timeout")
    (dcm,) = sorted(synth_dicom(root, "hip", 1, seed=21).rglob("*.dcm"))
    with OrthancServer(workdir=root / "orthanc") as server:
        server.upload(dcm)
        sop = str(pydicom.dcmread(dcm, stop_before_pixels=True).SOPInstanceUID)
        yield server, hanging_bundle(root / "hang"), sop, root


def _cmd(url: str, bundle: Path, state: Path, work: Path, timeout: float | None) -> list[str]:
    cmd = [sys.executable, "-m", "monai_bone", "watch", url, "--once", "--hip-bundle", str(bundle), "--nproc", "2"]
    cmd += ["--backlog", "1", "--state", str(state), "--workdir", str(work)]
    return cmd + (["--timeout", f"{timeout:g}"] if timeout is not None else [])


def test_watch_timeout_stops_a_hung_torchrun(served):
    server, bundle, sop, root = served
    for timeout in TIMEOUTS:  # until the timeout struck while both ranks hung (a loaded machine starts them slowly)
        clear_ready(bundle)
        state = root / f"state_{timeout:g}.json"
        cmd = _cmd(server.dicomweb_url, bundle, state, root / "work", timeout)
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 300, env=ENV, check=False)
        log = proc.stdout + proc.stderr
        assert proc.returncode == 0, log[-3000:]
        entry = WatchState(state).instances[sop]
        assert entry["status"] == "error" and f"within {timeout:g} s (watch --timeout)" in entry["error"], entry
        pids = hanging_pids(bundle)
        assert not survivors(pids or [], str(bundle)), "a process of the timed-out run is still alive"
        if pids is not None:
            break
    assert pids is not None and len(pids) == 4, f"the ranks never hung within {TIMEOUTS[-1]} s"


def test_sigterm_during_a_hung_torchrun(served):
    server, bundle, sop, root = served
    clear_ready(bundle)
    state = root / "state_sigterm.json"
    cmd = _cmd(server.dicomweb_url, bundle, state, root / "work", None)  # the default timeout (an hour)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV)
    try:
        deadline = time.monotonic() + TIMEOUTS[-1]
        while hanging_pids(bundle) is None and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.5)
        pids = hanging_pids(bundle)
        assert pids is not None, f"the ranks never hung: {proc.poll()}"
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out[-3000:]
    assert time.monotonic() - start < 60, "SIGTERM did not stop the watch before its timeout"
    assert "stopped on request" in out and "stay pending" in out, out[-3000:]
    assert not survivors(pids, str(bundle)), "a process of the stopped run is still alive"
    assert sop not in WatchState(state).instances  # processed by the next run


def test_cli_default_timeout_is_the_library_default():
    from monai_bone.cli import parse_args

    args = parse_args(["watch", "http://127.0.0.1:1/dicom-web", "--knee-bundle", "x"])
    assert args.timeout == DEFAULT_TORCHRUN_TIMEOUT
