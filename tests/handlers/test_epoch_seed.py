"""EpochSeedHandler: the random draws of epoch e depend only on (seed, e, rank), so a resumed run repeats them."""

from __future__ import annotations

import random

import numpy as np
import torch
from ignite.engine import Engine, Events

from monai_bone.engines import epoch_seed
from monai_bone.handlers import EpochSeedHandler


def _draws(seed: int, max_epochs: int, start_epoch: int = 0) -> dict[int, tuple]:
    out: dict[int, tuple] = {}
    engine = Engine(lambda e, b: None)
    EpochSeedHandler(seed).attach(engine)

    @engine.on(Events.EPOCH_STARTED)
    def draw(e: Engine) -> None:
        out[e.state.epoch] = (random.random(), float(np.random.rand()), float(torch.rand(1)))

    engine.state.epoch = start_epoch  # a resumed run: ignite continues from the restored epoch
    engine.state.max_epochs = start_epoch or None
    engine.run([0], max_epochs=max_epochs)
    return out


def test_epoch_draws_repeat_after_resume_and_differ_between_epochs():
    full = _draws(seed=7, max_epochs=3)
    random.seed(123)  # whatever the generators did before the resume does not matter
    resumed = _draws(seed=7, max_epochs=3, start_epoch=1)
    assert set(full) == {1, 2, 3} and set(resumed) == {2, 3}
    assert resumed[2] == full[2] and resumed[3] == full[3]
    assert full[1] != full[2]
    assert _draws(seed=8, max_epochs=1)[1] != full[1]
    assert epoch_seed(7, 2) != epoch_seed(7, 2, rank=1)
