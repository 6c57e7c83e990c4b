"""A training checkpoint written when the optimiser had ONE parameter group (``network.parameters()``, before the
backbone/head groups of ``param_groups``) resumes through ``SafeCheckpointLoader``: every parameter keeps its own
AdamW moments, the groups get this configuration's learning-rate ratio, the scheduler drives both groups; any other
group mismatch is one line naming the file and the way out."""

from __future__ import annotations

import pytest
import torch
from ignite.engine import Engine, Events
from monai.networks.nets import ResNet

from monai_bone.handlers import SafeCheckpointLoader
from monai_bone.handlers.checkpoint import CheckpointFileError
from monai_bone.networks import param_groups

LR, MULT = 1e-3, 0.1


def _net(seed: int) -> ResNet:
    torch.manual_seed(seed)
    return ResNet("basic", [1, 1, 1, 1], [4, 4, 4, 4], spatial_dims=2, n_input_channels=1, num_classes=1)


def _lambda(epoch: int) -> float:
    return 0.5**epoch


def _trainer(net, opt, sched) -> Engine:
    def step(engine, batch):
        opt.zero_grad()
        loss = net(batch).square().mean()
        loss.backward()
        opt.step()
        return float(loss.detach())

    engine = Engine(step)
    engine.add_event_handler(Events.EPOCH_COMPLETED, lambda _: sched.step())
    return engine


def _old_run_checkpoint(path):
    """Two epochs of the pre-param-groups configuration: AdamW(network.parameters())."""
    net = _net(0)
    opt = torch.optim.AdamW(net.parameters(), lr=LR, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lambda)
    trainer = _trainer(net, opt, sched)
    trainer.run([torch.randn(2, 1, 16, 16) for _ in range(2)], max_epochs=2)
    ckpt = {"network": net, "optimizer": opt, "lr_scheduler": sched, "trainer": trainer}
    torch.save({k: v.state_dict() for k, v in ckpt.items()}, path)
    return net, opt


def test_one_group_checkpoint_resumes_into_backbone_and_head_groups(tmp_path):
    path = tmp_path / "checkpoint_epoch=2.pt"
    old_net, old_opt = _old_run_checkpoint(path)
    net = _net(1)
    opt = torch.optim.AdamW(param_groups(net, LR, MULT), lr=LR, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lambda)
    trainer = _trainer(net, opt, sched)
    load = {"network": net, "optimizer": opt, "lr_scheduler": sched, "trainer": trainer}
    SafeCheckpointLoader(str(path), load).attach(trainer)
    seen = {}

    @trainer.on(Events.STARTED)
    def _check_loaded(engine):
        assert engine.state.epoch == 2
        old = dict(old_net.named_parameters())
        for name, p in net.named_parameters():  # each parameter got its own moments, wherever its group is
            torch.testing.assert_close(p, old[name])
            torch.testing.assert_close(opt.state[p]["exp_avg"], old_opt.state[old[name]]["exp_avg"])
        seen["lrs"] = [g["lr"] for g in opt.param_groups]

    trainer.run([torch.randn(2, 1, 16, 16) for _ in range(2)], max_epochs=4)
    assert [g["name"] for g in opt.param_groups] == ["backbone", "head"]
    assert seen["lrs"] == pytest.approx([LR * MULT * _lambda(2), LR * _lambda(2)])
    assert sched.base_lrs == pytest.approx([LR * MULT, LR])  # the scheduler drives both groups
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([LR * MULT * _lambda(4), LR * _lambda(4)])
    assert trainer.state.epoch == 4


def test_unmatchable_groups_fail_in_one_line(tmp_path):
    path = tmp_path / "checkpoint_epoch=2.pt"
    net = _net(0)
    opt = torch.optim.AdamW(param_groups(net, LR, MULT), lr=LR)  # two groups saved ...
    torch.save({"network": net.state_dict(), "optimizer": opt.state_dict()}, path)
    net = _net(1)
    opt = torch.optim.AdamW(net.parameters(), lr=LR)  # ... resumed by a one-group configuration
    trainer = Engine(lambda e, b: None)
    SafeCheckpointLoader(str(path), {"network": net, "optimizer": opt}).attach(trainer)
    with pytest.raises(CheckpointFileError) as err:
        trainer.run([0], max_epochs=1)
    msg = str(err.value)
    assert msg.startswith(str(path)) and "\n" not in msg and "--resume false" in msg and "2 parameter group" in msg
