"""Crash safety of training: SIGKILL mid-epoch, then resume from the last checkpoint.

Three runs of the hip bundle (subprocesses, CPU, one thread, tiny synthetic cohort): an uninterrupted reference run,
a run killed with SIGKILL as soon as its first epoch checkpoint exists (i.e. during epoch 2), and the resumed run.
The resumed run must finish with the right epoch counter and a complete, parseable metrics file, and -- with the
same seed -- repeat the reference trajectory exactly (per-epoch loss and validation metrics, final weights).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _reliability_corpus import (  # noqa: E402
    SUBPROCESS_ENV,
    bundle_command,
    bundle_copy,
    grep_planted,
    run_logged,
    synth_cohort,
)

from monai_bone.handlers import HISTORY_FORMAT  # noqa: E402

EPOCHS = 3
#: every run uses the same overrides apart from the folders
TRAIN = {"epochs": EPOCHS, "spatial_size": 64, "batch_size": 2, "val_batch_size": 4, "num_workers": 0, "seed": 3}
TRAIN["pretrained"] = "null"  # explicit random init (bundle default: ImageNet weights, not downloadable in CI)
#: the values that must repeat exactly (times and learning rates are not compared: times differ, rates are derived)
COMPARED = ("loss", "train_r2", "val_r2", "val_mae", "val_mse")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Reference run, killed run, resumed run; returns their folders and logs."""
    from monai_bone.data.datalist import build_datalist

    root = tmp_path_factory.mktemp("crash")
    cohort = synth_cohort(root, 12, seed=5)
    datalist = cohort / "datalist.json"
    build_datalist(
        cohort / "dicom",
        datalist,
        clinical=[cohort / "clinical.csv", cohort / "ground_truth.csv"],
        task="hip",
        folds=3,
        seed=0,
        progress=False,
    )
    bundle = bundle_copy("hip_bmd_xattn", root)
    logs = root / "logs"
    logs.mkdir()

    def overrides(name):
        return {
            **TRAIN,
            "datalist": datalist,
            "ckpt_dir": root / name / "models",
            "log_dir": root / name / "runs",
            "output_dir": root / name / "eval",
        }

    ref = run_logged(bundle_command(["train.json"], overrides("reference")), bundle, logs / "reference.log")
    assert ref.returncode == 0, (logs / "reference.log").read_text()[-4000:]

    killed_dir = root / "killed" / "models"
    first = killed_dir / "checkpoint_epoch=1.pt"
    env = {**os.environ, **SUBPROCESS_ENV}
    with open(logs / "killed.log", "w", encoding="utf-8") as out:
        proc = subprocess.Popen(
            bundle_command(["train.json"], overrides("killed")), cwd=bundle, env=env, stdout=out, stderr=out
        )
        deadline = time.monotonic() + 240
        while not first.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        at_kill = sorted(p.name for p in killed_dir.glob("checkpoint_epoch=*.pt"))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    history_at_kill = json.loads((killed_dir / "train_metrics.json").read_text())

    # a damaged newer file beside the good one (e.g. a copy interrupted by a full disk): resume must skip it
    (killed_dir / "checkpoint_epoch=2.pt").write_bytes(first.read_bytes()[:5000])
    resumed = run_logged(bundle_command(["train.json"], overrides("killed")), bundle, logs / "resumed.log")
    assert resumed.returncode == 0, (logs / "resumed.log").read_text()[-4000:]
    return {
        "root": root,
        "cohort": cohort,
        "reference": root / "reference" / "models",
        "resumed": killed_dir,
        "logs": logs,
        "kill_returncode": proc.returncode,
        "at_kill": at_kill,
        "history_at_kill": history_at_kill,
    }


def _history(models: Path) -> dict:
    return json.loads((models / "train_metrics.json").read_text(encoding="utf-8"))


def test_kill_happened_mid_training(runs):
    assert runs["kill_returncode"] == -signal.SIGKILL
    # killed after the first epoch checkpoint and before the last one: the run was interrupted mid-training
    assert runs["at_kill"] == ["checkpoint_epoch=1.pt"]
    at_kill = runs["history_at_kill"]
    assert at_kill["completed"] is False and [e["epoch"] for e in at_kill["epochs"]] == [1]


def test_resume_skips_the_damaged_checkpoint_and_completes(runs):
    log = (runs["logs"] / "resumed.log").read_text()
    assert "skipping unreadable checkpoint" in log and "checkpoint_epoch=2.pt" in log
    assert "resuming from" in log and "checkpoint_epoch=1.pt" in log
    assert "Traceback" not in log
    final = sorted(p.name for p in runs["resumed"].glob("checkpoint_epoch=*.pt"))
    assert final == [f"checkpoint_epoch={EPOCHS}.pt"]
    state = torch.load(runs["resumed"] / final[0], map_location="cpu", weights_only=True)
    trainer = state["trainer"]  # Ignite stores the iteration; the epoch counter is iteration / epoch_length
    assert divmod(trainer["iteration"], trainer["epoch_length"]) == (EPOCHS, 0)
    assert trainer["max_epochs"] == EPOCHS
    assert [e["epoch"] for e in state["history"]["epochs"]] == list(range(1, EPOCHS + 1))
    # no temporary files left behind by the atomic writers
    assert not list(runs["resumed"].glob(".*.tmp"))


def test_metrics_file_complete_and_parseable(runs):
    for name in ("reference", "resumed"):
        doc = _history(runs[name])
        assert doc["format"] == HISTORY_FORMAT and doc["completed"] is True and doc["synthetic"] is True
        assert doc["max_epochs"] == EPOCHS
        assert [e["epoch"] for e in doc["epochs"]] == list(range(1, EPOCHS + 1))
        for entry in doc["epochs"]:
            for key in (*COMPARED, "lr", "iteration"):
                assert isinstance(entry[key], (int, float)), (name, entry)


def test_resumed_trajectory_equals_uninterrupted_run(runs):
    ref, res = _history(runs["reference"])["epochs"], _history(runs["resumed"])["epochs"]
    for a, b in zip(ref, res):
        for key in COMPARED:
            assert a[key] == pytest.approx(b[key], rel=1e-6, abs=1e-9), (a["epoch"], key, a[key], b[key])
        assert a["lr"] == pytest.approx(b["lr"])
    final = f"checkpoint_epoch={EPOCHS}.pt"
    wa = torch.load(runs["reference"] / final, map_location="cpu", weights_only=True)["network"]
    wb = torch.load(runs["resumed"] / final, map_location="cpu", weights_only=True)["network"]
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.allclose(wa[k].float(), wb[k].float(), rtol=1e-5, atol=1e-7), k


def test_training_outputs_carry_no_planted_identifiers(runs):
    root = runs["root"]
    hits = grep_planted([root / "reference", root / "killed", runs["logs"], runs["cohort"] / "datalist.json"])
    hits += grep_planted([runs["cohort"] / "rejects.csv", runs["cohort"] / "warnings.csv"])
    assert hits == []
