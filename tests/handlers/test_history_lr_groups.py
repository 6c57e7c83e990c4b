"""``TrainingHistory`` with the backbone/head parameter groups of ``param_groups`` (``backbone_lr_multiplier`` 0.1):
each group's learning rate is recorded under its name every epoch (as a scheduler changes it), ``lr`` is the head's,
and the plot draws them; a one-group optimiser keeps the plain ``lr``."""

from __future__ import annotations

import json

import pytest
import torch
from ignite.engine import Engine, Events
from monai.networks.nets import ResNet

from monai_bone.handlers import TrainingHistory
from monai_bone.metrics.history_plot import lr_series
from monai_bone.networks import param_groups

LR, MULT = 1e-3, 0.1


def _run(tmp_path, groups, plot: bool) -> dict:
    torch.manual_seed(0)
    net = ResNet("basic", [1, 1, 1, 1], [4, 4, 4, 4], spatial_dims=2, n_input_channels=1, num_classes=1)
    opt = torch.optim.AdamW(groups(net), lr=LR)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 0.5**epoch)

    def step(engine, batch):
        opt.zero_grad()
        loss = net(batch).square().mean()
        loss.backward()
        opt.step()
        return {"loss": float(loss.detach())}

    trainer = Engine(step)
    trainer.optimizer = opt  # as MONAI's SupervisedTrainer has it
    history = TrainingHistory(tmp_path / "h.json", plot_path=tmp_path / "h.png" if plot else None)
    history.attach(trainer)
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda _: sched.step())
    trainer.run([torch.randn(2, 1, 16, 16) for _ in range(2)], max_epochs=2)
    return json.loads((tmp_path / "h.json").read_text())


def test_every_group_lr_recorded_under_its_name_and_plotted(tmp_path):
    doc = _run(tmp_path, lambda net: param_groups(net, LR, MULT), plot=True)
    e1, e2 = doc["epochs"]
    assert e1["lr_backbone"] == pytest.approx(LR * MULT) and e1["lr_head"] == pytest.approx(LR)
    assert e1["lr"] == pytest.approx(LR)  # the head's rate, not the first (backbone) group's
    assert e2["lr_backbone"] == pytest.approx(LR * MULT / 2) and e2["lr_head"] == pytest.approx(LR / 2)
    assert lr_series(doc["epochs"]) == {
        "lr_backbone": [pytest.approx(LR * MULT), pytest.approx(LR * MULT / 2)],
        "lr_head": [pytest.approx(LR), pytest.approx(LR / 2)],
    }
    assert (tmp_path / "h.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_one_group_keeps_plain_lr(tmp_path):
    doc = _run(tmp_path, lambda net: net.parameters(), plot=False)
    assert [e["lr"] for e in doc["epochs"]] == [pytest.approx(LR), pytest.approx(LR / 2)]
    assert not [k for e in doc["epochs"] for k in e if k.startswith("lr_")]
    assert lr_series(doc["epochs"]) == {"lr": [pytest.approx(LR), pytest.approx(LR / 2)]}
    assert not (tmp_path / "h.png").exists()
