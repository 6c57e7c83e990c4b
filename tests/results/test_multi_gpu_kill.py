"""A REAL kill of ``torchrun --nproc_per_node 2`` (gloo, CPU) part-way through ``multi_gpu_inference.json``: SIGKILL
to the launcher and to every rank once the shard files hold some rows but not all. No merged predictions file may
claim the run; the next run infers only the studies without a row, and its merged file equals single-process
inference with each study once."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _results_test_utils import make_bundles, run_inference, synth_dicom
from test_multi_gpu_inference import N, _assert_equal, _rows, _rows_from, _torchrun

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to find the ranks")

#: Rows on disk that trigger the kill (two first batches of size 2, one per rank).
KILL_AT = 4


def _cmd(bundle: Path, source: Path, out: Path) -> list[str]:
    """The command line of ``test_multi_gpu_inference._torchrun``, with batches of 2 (finer-grained progress)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "monai.bundle"]
    cmd += ["run", "--config_file", "['configs/inference.json','configs/multi_gpu_inference.json']"]
    cmd += ["--bundle_root", str(bundle), "--input", str(source), "--output_dir", str(out)]
    cmd += ["--spatial_size", "64", "--num_workers", "0", "--batch_size", "2"]
    return cmd


def _shard_lines(out: Path) -> dict[str, list[str]]:
    """Every shard file's whole (newline-terminated) lines that parse as JSON: the rows a reader can trust."""
    lines = {}
    for f in sorted((out / "shards").glob("rank*.jsonl")):
        whole = f.read_bytes().decode("utf-8", "replace").split("\n")[:-1]
        lines[f.name] = [line for line in whole if _parses(line)]
    return lines


def _parses(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def _descendants(pid: int) -> list[int]:
    """All live descendants of ``pid`` (torchrun starts each rank in a session of its own)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _kill_everything(proc: subprocess.Popen) -> None:
    """SIGKILL the ranks (each in a session of its own), then torchrun's whole process group."""
    for pid in _descendants(proc.pid):  # the ranks first: they do the writing
        with contextlib.suppress(ProcessLookupError):
            group = os.getpgid(pid)
            if group != os.getpgrp():  # never this test's own group
                os.killpg(group, signal.SIGKILL)
    os.killpg(proc.pid, signal.SIGKILL)


def _alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.append(pid)
    return alive


def test_torchrun_sigkill_then_resume(tmp_path):
    source = synth_dicom(tmp_path, "hip", N, seed=33)
    bundle = make_bundles(tmp_path, source)["hip"]
    ref = _rows_from(run_inference(bundle, source, tmp_path / "single"))
    out = tmp_path / "multi"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

    with open(tmp_path / "killed.log", "w") as log:
        proc = subprocess.Popen(
            _cmd(bundle, source, out), cwd=bundle, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    ranks: list[int] = []
    try:
        deadline = time.monotonic() + 300
        while True:
            n_rows = sum(map(len, _shard_lines(out).values())) if (out / "shards").is_dir() else 0
            ranks = ranks or _descendants(proc.pid)
            if n_rows >= KILL_AT or proc.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        ranks = _descendants(proc.pid) or ranks
        _kill_everything(proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    deadline = time.monotonic() + 30
    while _alive(ranks) and time.monotonic() < deadline:
        time.sleep(0.05)
    killed_log = (tmp_path / "killed.log").read_text()
    assert not _alive(ranks), f"ranks still running after SIGKILL: {_alive(ranks)}"
    assert proc.returncode == -signal.SIGKILL, f"torchrun ended by itself ({proc.returncode}):\n{killed_log[-3000:]}"

    # what the killed run left: some rows (each study once), not all; no merged file that claims the run
    killed = _shard_lines(out)
    done = [json.loads(line)["_source"] for lines in killed.values() for line in lines]
    assert KILL_AT <= len(done) < N, (
        f"the kill landed with {len(done)} of {N} rows written: make the run slower (more studies, batch_size 1)"
    )
    assert len(done) == len(set(done)), "the killed run wrote a study twice"
    merged = out / "predictions.json"
    assert not merged.exists() or json.loads(merged.read_text())["n"] < N

    log = _torchrun(bundle, source, out)
    counts = re.findall(r"rank \d/2: (\d+) of (\d+) pending studies \((\d+) already done\)", log)
    assert len(counts) == 2, log[-3000:]
    assert {(int(p), int(d)) for _, p, d in counts} == {(N - len(done), len(done))}, log[-3000:]
    assert sum(int(m) for m, _, _ in counts) == N - len(done), log[-3000:]

    # the killed run's shard files are untouched; the rerun's new ones hold exactly the remaining studies
    after = _shard_lines(out)
    assert {name: after[name] for name in killed} == killed
    new = [json.loads(line)["_source"] for name, lines in after.items() if name not in killed for line in lines]
    assert len(new) == len(set(new)) == N - len(done) and not set(new) & set(done)
    assert len(set(new) | set(done)) == N
    _assert_equal(_rows(out), ref)
