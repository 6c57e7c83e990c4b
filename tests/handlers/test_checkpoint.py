"""Resume helpers and the resumable checkpoint saver of monai_bone.handlers."""

from __future__ import annotations

import json

import pytest
import torch
from ignite.engine import Engine, Events

from monai_bone.handlers import (
    ResumableCheckpointSaver,
    checkpoint_epoch,
    find_last_checkpoint,
    resume_checkpoint,
)


def _ckpt(path, epoch):
    torch.save({"trainer": {"epoch": epoch, "iteration": epoch}, "network": {"w": torch.ones(2)}}, path)
    return path


def test_checkpoint_epoch_parses_names():
    assert checkpoint_epoch("models/checkpoint_epoch=12.pt") == 12
    assert checkpoint_epoch("model.pt") is None


def test_find_last_checkpoint_skips_truncated_and_incomplete(tmp_path, caplog):
    assert find_last_checkpoint(tmp_path / "missing") is None
    assert find_last_checkpoint(tmp_path) is None
    _ckpt(tmp_path / "checkpoint_epoch=2.pt", 2)
    _ckpt(tmp_path / "checkpoint_epoch=10.pt", 10)  # numeric, not lexical, order
    assert find_last_checkpoint(tmp_path) == str(tmp_path / "checkpoint_epoch=10.pt")
    full = (tmp_path / "checkpoint_epoch=10.pt").read_bytes()
    (tmp_path / "checkpoint_epoch=11.pt").write_bytes(full[: len(full) // 3])  # killed while writing
    torch.save({"network": {}}, tmp_path / "checkpoint_epoch=12.pt")  # no trainer state
    assert find_last_checkpoint(tmp_path) == str(tmp_path / "checkpoint_epoch=10.pt")
    assert "skipping unreadable checkpoint" in caplog.text and "lacks ['trainer']" in caplog.text
    assert find_last_checkpoint(tmp_path, verify=False) == str(tmp_path / "checkpoint_epoch=12.pt")


def test_resume_checkpoint_refuses_another_run(tmp_path):
    info = {"datalist": "/data/a.json", "val_fold": 0}
    assert resume_checkpoint(tmp_path, run_info=info) is None  # nothing yet: from scratch
    assert json.loads((tmp_path / "run_info.json").read_text()) == info
    _ckpt(tmp_path / "checkpoint_epoch=3.pt", 3)
    assert resume_checkpoint(tmp_path, run_info=info) == str(tmp_path / "checkpoint_epoch=3.pt")
    with pytest.raises(ValueError, match=r"different run \(val_fold: 0 -> 1\).*--resume false"):
        resume_checkpoint(tmp_path, run_info={**info, "val_fold": 1})
    # resume off: earlier epoch files go, so that a later resume cannot pick a stale epoch
    assert resume_checkpoint(tmp_path, resume=False, run_info={**info, "val_fold": 1}) is None
    assert not list(tmp_path.glob("checkpoint_epoch=*.pt"))
    assert json.loads((tmp_path / "run_info.json").read_text())["val_fold"] == 1


def _engine(max_epochs_done=0):
    engine = Engine(lambda e, b: {"loss": 0.0})
    engine.state.metrics = {}
    return engine


def test_resumable_saver_prunes_older_epochs_and_keeps_newer(tmp_path):
    net = torch.nn.Linear(2, 1)
    _ckpt(tmp_path / "checkpoint_epoch=1.pt", 1)  # left by the run this one resumes
    _ckpt(tmp_path / "checkpoint_epoch=9.pt", 9)  # not ours to judge: higher epoch, kept
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    saver = ResumableCheckpointSaver(
        save_dir=str(tmp_path), save_dict={"network": net, "optimizer": opt}, save_interval=1, n_saved=1
    )
    engine = _engine()
    saver.attach(engine)

    @engine.on(Events.STARTED)
    def _resume(e):
        e.state.epoch = 1  # as CheckpointLoader does

    engine.run([0, 1], max_epochs=3)
    names = sorted(p.name for p in tmp_path.glob("checkpoint_epoch=*.pt"))
    assert names == ["checkpoint_epoch=3.pt", "checkpoint_epoch=9.pt"]


def test_resumable_saver_state_round_trip(tmp_path):
    net = torch.nn.Linear(2, 1)
    best = ResumableCheckpointSaver(
        save_dir=str(tmp_path), save_dict={"model": net}, save_key_metric=True, key_metric_filename="model.pt"
    )
    engine = _engine()
    best.attach(engine)
    scores = iter([0.3, 0.5])

    @engine.on(Events.EPOCH_COMPLETED)
    def _metric(e):
        e.state.metrics["r2"] = next(scores)
        e.state.key_metric_name = "r2"

    # the metric handler must run before the saver: re-order by attaching the saver afterwards
    engine.remove_event_handler(best.metrics_completed, Events.EPOCH_COMPLETED)
    engine.add_event_handler(Events.EPOCH_COMPLETED, best.metrics_completed)
    engine.run([0], max_epochs=2)
    state = best.state_dict()
    (saved,) = state.values()  # ignite's list of (score, file name)
    assert saved[0][0] == pytest.approx(0.5)
    assert (tmp_path / "model.pt").is_file()
    # a resumed saver that knows the best score keeps model.pt when the new score is worse
    resumed = ResumableCheckpointSaver(
        save_dir=str(tmp_path), save_dict={"model": net}, save_key_metric=True, key_metric_filename="model.pt"
    )
    resumed.load_state_dict(state)
    before = (tmp_path / "model.pt").stat().st_mtime_ns
    engine2 = _engine()
    engine2.state.metrics = {"r2": 0.1}
    engine2.state.key_metric_name = "r2"
    resumed.metrics_completed(engine2)
    assert (tmp_path / "model.pt").stat().st_mtime_ns == before
    engine2.state.metrics = {"r2": 0.9}
    resumed.metrics_completed(engine2)
    assert next(iter(resumed.state_dict().values()))[0][0] == pytest.approx(0.9)
    # no key metric: empty state, loading it is a no-op
    plain = ResumableCheckpointSaver(save_dir=str(tmp_path), save_dict={"model": net}, save_interval=1)
    assert plain.state_dict() == {}
    plain.load_state_dict({})
