"""``torchrun --nproc_per_node 2`` (gloo, CPU) with ``multi_gpu_inference.json``: one merged predictions file equal to
single-process inference, each study once; a run cut short is finished by the next run, which infers the rest only."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from _results_test_utils import make_bundles, run_inference, synth_dicom

N = 40


def _torchrun(bundle: Path, source: Path, out: Path) -> str:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "monai.bundle"]
    cmd += ["run", "--config_file", "['configs/inference.json','configs/multi_gpu_inference.json']"]
    cmd += ["--bundle_root", str(bundle), "--input", str(source), "--output_dir", str(out)]
    cmd += ["--spatial_size", "64", "--num_workers", "0", "--batch_size", "4"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=bundle, env=env, capture_output=True, text=True, timeout=600, check=False)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-5000:]
    return log


def _rows(out: Path) -> dict[str, dict]:
    rows = json.loads((out / "predictions.json").read_text())["predictions"]
    names = [r["image"] for r in rows]
    assert len(names) == len(set(names)), "a study appears twice"
    return {r["image"]: r for r in rows}


def _assert_equal(got: dict[str, dict], ref: dict[str, dict]) -> None:
    assert set(got) == set(ref) and len(ref) == N
    for name, row in ref.items():
        assert got[name]["bmd"] == pytest.approx(row["bmd"], abs=1e-5)
        assert got[name]["who_class"] == row["who_class"] and not got[name].get("error")


def test_torchrun_merge_and_resume(tmp_path):
    source = synth_dicom(tmp_path, "hip", N, seed=31)
    bundle = make_bundles(tmp_path, source)["hip"]
    ref = _rows_from(run_inference(bundle, source, tmp_path / "single"))
    out = tmp_path / "multi"
    _torchrun(bundle, source, out)
    _assert_equal(_rows(out), ref)
    shards = sorted((out / "shards").glob("rank*.jsonl"))
    assert len(shards) == 2 and sum(len(f.read_text().splitlines()) for f in shards) == N

    # a run killed part-way: its shard files hold the first batches and a torn last line; no merged file yet
    for f in shards:
        lines = f.read_text().splitlines()
        f.write_text("\n".join(lines[:8]) + "\n" + lines[8][: len(lines[8]) // 2])
    (out / "predictions.json").unlink()
    (out / "predictions.csv").unlink()
    log = _torchrun(bundle, source, out)
    pending = {int(m.group(1)) for m in re.finditer(r"of (\d+) pending studies \(16 already done\)", log)}
    assert pending == {N - 16}, log[-3000:]
    _assert_equal(_rows(out), ref)


def _rows_from(doc: dict) -> dict[str, dict]:
    return {r["image"]: r for r in doc["predictions"]}


def test_watch_hands_a_backlog_to_torchrun(tmp_path):
    """The watcher's inference step under torchrun (2 gloo processes) equals its in-process step, SRs included."""
    from _results_test_utils import OVERRIDES

    from monai_bone.results.pacs import PacsClient
    from monai_bone.results.state import WatchState
    from monai_bone.results.watch import WatchConfig, Watcher

    source = synth_dicom(tmp_path, "hip", 4, seed=32)
    bundle = make_bundles(tmp_path, source)["hip"]
    results = {}
    for nproc in (1, 2):
        config = WatchConfig(
            bundles={"hip": bundle}, workdir=tmp_path / "w", overrides={"hip": OVERRIDES}, nproc=nproc, backlog=2
        )
        watcher = Watcher(PacsClient("http://127.0.0.1:1/dicom-web"), WatchState(tmp_path / "s.json"), config)
        results[nproc] = watcher._infer("hip", source, tmp_path / f"out{nproc}", n=4)
    assert set(results[1]) == set(results[2]) and len(results[1]) == 4
    for name, row in results[1].items():
        other = results[2][name]
        assert other["bmd"] == pytest.approx(row["bmd"], abs=1e-5) and Path(other["dicom_sr"]).is_file()
        assert other["dicom_sr_uid"] == row["dicom_sr_uid"]
