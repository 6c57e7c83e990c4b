"""``torchrun_inference(timeout=)`` on a REAL ``torchrun --nproc_per_node 2`` whose ranks hang (and ignore SIGTERM, as
does a child each rank starts, like a data loader worker): after the timeout no process of the run is left."""

from __future__ import annotations

import json
import subprocess
import time

import psutil
import pytest

from monai_bone.results import shards

#: The bundle's "run": each rank ignores SIGTERM, starts a child that does too, records both pids, then hangs.
_HANG = {
    "imports": ["$import os", "$import signal", "$import subprocess", "$import sys", "$import time"],
    "input": "",
    "output_dir": ".",
    "sleeper": "$subprocess.Popen([sys.executable, '-c', 'import signal, time; "
    "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)', os.getcwd()])",  # cwd: the bundle
    "pids": "$str(os.getpid()) + ' ' + str(@sleeper.pid)",
    "initialize": [],
    "run": [
        "$signal.signal(signal.SIGTERM, signal.SIG_IGN)",
        "$open(os.path.join(@output_dir, 'rank' + os.environ['RANK']), 'w').write(@pids)",
        "$time.sleep(600)",
    ],
    "finalize": [],
}


def _run_of(marker: str) -> list[psutil.Process]:
    """Live processes whose command line mentions ``marker`` (the bundle folder: ranks and their children)."""
    found = []
    for p in psutil.process_iter(["cmdline", "status"]):
        if p.info["status"] != psutil.STATUS_ZOMBIE and any(marker in a for a in p.info["cmdline"] or ()):
            found.append(p)
    return found


def test_timeout_kills_torchrun_its_ranks_and_their_children(tmp_path, monkeypatch):
    bundle, out = tmp_path / "hanging_bundle", tmp_path / "out"
    (bundle / "configs").mkdir(parents=True)
    out.mkdir()
    (bundle / "configs" / "inference.json").write_text(json.dumps(_HANG))
    (bundle / "configs" / "multi_gpu_inference.json").write_text("{}")
    monkeypatch.setattr(shards, "KILL_GRACE_S", 2.0)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    start = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired) as err:
        shards.torchrun_inference(bundle, tmp_path / "nothing", out, nproc=2, timeout=45)
    assert time.monotonic() - start < 45 + 2 * 2.0 + 30
    pids = [int(p) for r in range(2) for p in (out / f"rank{r}").read_text().split()]  # both ranks were hanging
    assert len(pids) == 4, err.value.output
    time.sleep(0.5)
    assert not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert not _run_of(str(bundle)), "a process of the timed-out run is still alive"
