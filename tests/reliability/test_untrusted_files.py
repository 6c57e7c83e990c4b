"""Untrusted files: every ``torch.load`` is weights-only, pickled objects are refused (and never run), damaged
checkpoints give clear errors naming the file, checkpoints are written atomically, bundle READMEs warn that configs
run code."""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import pytest
import torch
from ignite.engine import Engine, Events

from monai_bone.handlers import (
    CheckpointFileError,
    ResumableCheckpointSaver,
    SafeCheckpointLoader,
    atomic_torch_save,
    find_last_checkpoint,
    load_checkpoint,
)

REPO = Path(__file__).resolve().parents[2]


class _RunsCode:
    """Unpickling this runs ``open(marker, "w")``: the payload of a malicious checkpoint."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _torch_load_calls(path: Path) -> list[tuple[int, bool]]:
    """``(line, weights_only=True given)`` for every ``torch.load(...)`` call in a Python file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load":
            base = node.func.value
            if isinstance(base, ast.Name) and base.id == "torch":
                safe = any(
                    k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
                    for k in node.keywords
                )
                found.append((node.lineno, safe))
    return found


def test_every_torch_load_in_the_package_is_weights_only():
    sources = sorted((REPO / "monai_bone").rglob("*.py"))
    sources += sorted((REPO / "benchmarks").rglob("*.py")) if (REPO / "benchmarks").is_dir() else []
    calls = {p: _torch_load_calls(p) for p in sources}
    unsafe = [f"{p.relative_to(REPO)}:{line}" for p, found in calls.items() for line, safe in found if not safe]
    assert unsafe == []
    assert sum(len(v) for v in calls.values()) >= 3  # the scan does see the loaders (checkpoint, weights, ...)
    # bundle configs are code too: any torch.load there must be weights-only as well
    for cfg in sorted((REPO / "bundles").glob("*/configs/*.json")):
        for m in re.finditer(r"torch\.load\(([^)]*)\)", cfg.read_text(encoding="utf-8")):
            assert "weights_only=True" in m.group(1), (cfg, m.group(0))


def test_pickled_module_checkpoint_is_refused(tmp_path):
    path = tmp_path / "model.pt"
    torch.save(torch.nn.Linear(2, 1), path)  # a whole pickled module, not a state dict
    with pytest.raises(CheckpointFileError, match=r"model\.pt: refused: .*torch\.nn\.modules\.linear\.Linear") as info:
        load_checkpoint(path)
    assert info.value.__suppress_context__  # no unpickling traceback chained to the message


def test_code_in_a_checkpoint_is_never_run(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "checkpoint_epoch=5.pt"
    torch.save({"trainer": _RunsCode(str(marker))}, path)
    with pytest.raises(CheckpointFileError, match="refused"):
        load_checkpoint(path)
    assert find_last_checkpoint(tmp_path) is None  # skipped on resume (logged), never unpickled
    assert not marker.exists()


@pytest.mark.parametrize(
    "content, match",
    [
        (b"", r"empty file \(0 bytes\)"),
        (b"not a checkpoint at all" * 10, "not a PyTorch checkpoint"),
        ("truncate", "truncated or corrupt checkpoint"),
    ],
)
def test_damaged_checkpoints_name_the_file(tmp_path, content, match):
    path = tmp_path / "model.pt"
    if content == "truncate":
        torch.save({"w": torch.randn(64, 64)}, path)
        content = path.read_bytes()[:2000]
    path.write_bytes(content)
    with pytest.raises(CheckpointFileError, match=match) as info:
        load_checkpoint(path)
    assert str(info.value).startswith(str(path))
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_checkpoint(tmp_path / "missing.pt")


def test_safe_checkpoint_loader_in_an_engine(tmp_path):
    net = torch.nn.Linear(3, 1)
    good = tmp_path / "good.pt"
    torch.save({"model": torch.nn.Linear(3, 1).state_dict()}, good)
    engine = Engine(lambda e, b: None)
    SafeCheckpointLoader(load_path=str(good), load_dict={"model": net}).attach(engine)
    engine.run([0], max_epochs=1)
    assert torch.equal(net.weight, torch.load(good, weights_only=True)["model"]["weight"])

    bad = tmp_path / "pickled.pt"
    torch.save(net, bad)
    engine = Engine(lambda e, b: None)
    SafeCheckpointLoader(load_path=str(bad), load_dict={"model": net}).attach(engine)
    with pytest.raises(CheckpointFileError, match=r"pickled\.pt: refused"):
        engine.run([0], max_epochs=1)

    wrong = tmp_path / "wrong.pt"
    torch.save({"model": torch.nn.Linear(5, 1).state_dict()}, wrong)
    engine = Engine(lambda e, b: None)
    SafeCheckpointLoader(load_path=str(wrong), load_dict={"model": net}).attach(engine)
    with pytest.raises(CheckpointFileError, match=r"wrong\.pt: does not fit this configuration"):
        engine.run([0], max_epochs=1)


def test_atomic_save_never_leaves_a_partial_file(tmp_path):
    path = tmp_path / "checkpoint_epoch=1.pt"
    atomic_torch_save({"w": torch.ones(3)}, path)
    before = path.read_bytes()

    class Boom:
        def __reduce__(self):
            raise RuntimeError("killed while writing")

    with pytest.raises(RuntimeError, match="killed while writing"):
        atomic_torch_save({"w": torch.zeros(1000), "x": Boom()}, path)
    assert path.read_bytes() == before  # the previous complete file survives
    assert sorted(os.listdir(tmp_path)) == [path.name]  # and no temporary file is left
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # usual permissions, not mkstemp's 0600


def test_checkpoint_saver_writes_atomically(tmp_path, monkeypatch):
    import monai_bone.handlers.checkpoint_saver as handlers_module

    net = torch.nn.Linear(2, 1)
    save_dict = {"network": net, "optimizer": torch.optim.SGD(net.parameters(), lr=0.1)}
    saver = ResumableCheckpointSaver(save_dir=str(tmp_path), save_dict=save_dict, save_interval=1, n_saved=1)
    written = []
    real = handlers_module.atomic_torch_save
    monkeypatch.setattr(handlers_module, "atomic_torch_save", lambda obj, p: written.append(p) or real(obj, p))
    engine = Engine(lambda e, b: None)
    saver.attach(engine)
    engine.run([0, 1], max_epochs=2)
    assert [Path(p).name for p in written] == ["checkpoint_epoch=1.pt", "checkpoint_epoch=2.pt"]
    assert sorted(os.listdir(tmp_path)) == ["checkpoint_epoch=2.pt"]
    assert set(load_checkpoint(tmp_path / "checkpoint_epoch=2.pt")) == {"network", "optimizer"}


def test_bundle_readmes_warn_that_configs_run_code():
    for readme in sorted((REPO / "bundles").glob("*/docs/README.md")):
        text = " ".join(readme.read_text(encoding="utf-8").split())
        assert "Run only configs you trust" in text and "weights_only=True" in text, readme


def test_engine_completed_event_not_needed_for_history(tmp_path):
    """The history file is valid after every epoch, not only at the end (a kill leaves a parseable file)."""
    import json

    from monai_bone.handlers import TrainingHistory

    history = TrainingHistory(tmp_path / "train_metrics.json")
    engine = Engine(lambda e, b: {"loss": float(b)})
    history.attach(engine)
    seen = []
    engine.add_event_handler(
        Events.EPOCH_COMPLETED, lambda e: seen.append(json.loads((tmp_path / "train_metrics.json").read_text()))
    )
    engine.run([1.0, 3.0], max_epochs=2)
    assert [len(d["epochs"]) for d in seen] == [1, 2] and not seen[-1]["completed"]
    doc = json.loads((tmp_path / "train_metrics.json").read_text())
    assert doc["completed"] and doc["epochs"][0]["loss"] == pytest.approx(2.0)
    # resuming from the state of epoch 1 replaces what a killed run wrote after it
    resumed = TrainingHistory(tmp_path / "train_metrics.json")
    resumed.load_state_dict({"epochs": doc["epochs"][:1]})
    engine = Engine(lambda e, b: {"loss": 10.0})
    resumed.attach(engine)

    @engine.on(Events.STARTED)
    def _restore(e):
        e.state.iteration, e.state.epoch = 2, 1

    engine.run([0, 0], max_epochs=2)
    doc = json.loads((tmp_path / "train_metrics.json").read_text())
    assert [(d["epoch"], d["loss"]) for d in doc["epochs"]] == [(1, pytest.approx(2.0)), (2, pytest.approx(10.0))]
