"""The hip bundle trains when its last training batch holds one study (BatchNorm needs two values per channel in
training: at a 32 px input ResNet34's last stage is 1×1, so a batch of one stopped the epoch)."""

from __future__ import annotations

import json

import pytest
from _bundle_test_utils import make_cohort

from monai_bone.bundle import bundle_workflow, default_bundle_dir, no_checkpoint_overrides, quiet_engines

pytestmark = pytest.mark.timeout(600)


def _workflow(tmp_path, datalist, batch_size: int):
    bundle = default_bundle_dir("hip")
    overrides = {
        "bundle_root": str(tmp_path),
        "datalist": str(datalist),
        "epochs": 1,
        "spatial_size": 32,
        "batch_size": batch_size,
        "val_batch_size": 4,
        "num_workers": 0,
        "pretrained": None,
        "device": "$torch.device('cpu')",
        **no_checkpoint_overrides(bundle),
    }
    return bundle_workflow(bundle, ("train.json",), "train", **overrides)


def test_hip_training_with_a_last_batch_of_one_study(tmp_path):
    datalist = make_cohort(tmp_path / "cohort", "hip", n=12, folds=3, seed=2)
    n_train = sum(int(r["fold"]) != 0 for r in json.loads(datalist.read_text())["training"])
    batch = n_train - 1  # full batch, then one study left over
    assert batch >= 2
    with quiet_engines():
        wf = _workflow(tmp_path / "run", datalist, batch)
        wf.initialize()
        trainer = wf.parser.get_parsed_content("train#trainer")
        wf.run()
        wf.finalize()
    assert trainer.state.epoch == 1 and trainer.state.epoch_length == 1  # the single-study batch was dropped
    # only a single-study remainder is dropped: other partial last batches are trained on
    wf = _workflow(tmp_path / "run2", datalist, n_train - 2)
    wf.initialize()
    assert wf.parser.get_parsed_content("train#dataloader").drop_last is (n_train % (n_train - 2) == 1)
