"""``torchrun_inference(timeout=)`` on a REAL ``torchrun --nproc_per_node 2`` whose ranks hang (and ignore SIGTERM, as
does a child each rank starts, like a data loader worker): after the timeout no process of the run is left.

The timeout must strike while both ranks hang (each writes a ready file then): on a loaded machine, where torchrun may
not have started them yet, the test retries with a longer timeout (``_hang_bundle.TIMEOUTS``), checking after every
attempt that nothing of the run survived."""

from __future__ import annotations

import subprocess
import time

import pytest
from _hang_bundle import TIMEOUTS, clear_ready, hanging_bundle, hanging_pids, survivors

from monai_bone.results import shards

GRACE = 2.0


def test_timeout_kills_torchrun_its_ranks_and_their_children(tmp_path, monkeypatch):
    bundle, out = hanging_bundle(tmp_path / "hanging_bundle"), tmp_path / "out"
    out.mkdir()
    monkeypatch.setattr(shards, "KILL_GRACE_S", GRACE)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    for timeout in TIMEOUTS:
        clear_ready(bundle)
        start = time.monotonic()
        with pytest.raises(subprocess.TimeoutExpired) as err:
            shards.torchrun_inference(bundle, tmp_path / "nothing", out, nproc=2, timeout=timeout)
        elapsed = time.monotonic() - start
        assert elapsed >= timeout and elapsed < timeout + 2 * GRACE + 60, elapsed  # the limit, then a prompt kill
        pids = hanging_pids(bundle)
        time.sleep(0.5)
        assert not survivors(pids or [], str(bundle)), "a process of the timed-out run is still alive"
        if pids is not None:
            break
    assert pids is not None and len(pids) == 4, f"the ranks never hung within {TIMEOUTS[-1]} s: {err.value.output}"
