"""``ensure_localiser`` run by two real processes at once (as the ranks of a ``torchrun`` training do): one fits,
the other waits for it and loads the same file; neither reads a half-written file nor fits a second localiser."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from test_localiser import _cohort

import monai_bone
from monai_bone.transforms.localise import load_localiser

_CHILD = """
import hashlib, json, logging, os, sys, time
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s %(message)s")
from monai_bone.engines.localiser import ensure_localiser
path, records, go, ready = sys.argv[1], json.loads(open(sys.argv[2]).read()), sys.argv[3], sys.argv[4]
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.005)
out = ensure_localiser(path, records, size=32, epochs=3, batch_size=8, channels=(4, 8, 8, 8))
print(json.dumps({"path": out, "sha256": hashlib.sha256(open(out, "rb").read()).hexdigest()}))
"""


def test_two_processes_fit_one_localiser(tmp_path):
    records = _cohort(tmp_path, 24, 5)
    (tmp_path / "records.json").write_text(json.dumps(records))
    (tmp_path / "child.py").write_text(_CHILD)
    path = tmp_path / "models" / "localiser.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(monai_bone.__file__).parents[1])}
    procs = []
    for rank in range(2):
        cmd = [sys.executable, str(tmp_path / "child.py"), str(path), str(tmp_path / "records.json")]
        cmd += [str(tmp_path / "go"), str(tmp_path / f"ready{rank}")]
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"ready{r}").exists() for r in range(2)):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs), "a process did not start"
        time.sleep(0.01)
    (tmp_path / "go").touch()  # both are past their imports: they call ensure_localiser at the same moment
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in results]
    logs = "".join(err for _, err in results)
    assert logs.count("fitting the ROI localiser") == 1, logs[-3000:]
    assert logs.count("localiser epoch 1/3") == 1  # one training run in all
    assert logs.count("was fitted by another process") == 1
    outs = [json.loads(out.strip().splitlines()[-1]) for out, _ in results]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert [o["sha256"] for o in outs] == [digest, digest] and {o["path"] for o in outs} == {str(path)}
    net, info = load_localiser(path)
    assert info["n_train"] == 24 and sum(p.numel() for p in net.parameters()) > 0
    assert not list(path.parent.glob(".localiser.pt.*.tmp"))  # no temporary file left behind
