"""LinearProbeStart: fits the skip once at the start of a fresh run, never on a resumed one."""

from __future__ import annotations

import pytest
import torch
from ignite.engine import Engine, Events

from monai_bone.handlers import LinearProbeStart
from monai_bone.networks import XAttnBMD


def _setup(enabled: bool = True, **kw):
    torch.manual_seed(0)
    net = XAttnBMD(2, 1, 1, clinical_fields=["age"], fusion="xattn", texture_features=4, pretrained=None, **kw)
    net.set_target_stats(1.0, 0.2)
    loader = [{"image": torch.rand(5, 1, 40, 40), "clinical": torch.randn(5, 1), "label": torch.rand(5, 1)}] * 2

    def prepare(batch, device, non_blocking):
        return batch["image"].to(device), batch["label"].to(device), (batch["clinical"].to(device),), {}

    return net, LinearProbeStart(net, loader, prepare, enabled=enabled)


def test_fresh_run_fits_the_skip_and_keeps_the_training_mode() -> None:
    net, handler = _setup(linear_skip=True)
    engine = Engine(lambda e, b: None)
    handler.attach(engine)
    net.train()
    engine.run([0], max_epochs=1)
    assert handler.summary is not None and handler.summary["n"] == 10 and handler.summary["features"] == 4 + 2
    assert net.training and float(net.skip.weight.detach().abs().sum()) > 0
    assert net.texture.fixed_stats


def test_resumed_disabled_or_skipless_runs_leave_the_network_alone() -> None:
    net, handler = _setup(linear_skip=True)
    engine = Engine(lambda e, b: None)
    engine.state.iteration = 7  # as a resumed checkpoint leaves it
    handler(engine)
    assert handler.summary is None and float(net.skip.weight.detach().abs().sum()) == 0
    assert net.texture.fixed_stats  # fixed as when it was fitted
    net, handler = _setup(enabled=False, linear_skip=True)
    engine = Engine(lambda e, b: None)
    handler.attach(engine)
    assert not engine.has_event_handler(handler, Events.STARTED)
    assert _setup(enabled=False, linear_skip=False)[1].summary is None  # disabled: no skip needed
    with pytest.raises(ValueError, match="linear_skip: true"):
        _setup(linear_skip=False)
