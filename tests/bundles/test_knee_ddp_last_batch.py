"""The knee bundle under DDP with few studies per rank: every rank keeps at least one training batch.

``drop_last`` must look at what one rank loads (its ``DistributedSampler`` share), not at the whole training fold:
with 2 ranks and a batch larger than a rank's share (but smaller than the fold), a whole-fold rule dropped each
rank's only batch: MONAI skipped the epoch with a warning and the run "succeeded" without training.
Real ``torchrun --nproc_per_node=2`` on CPU (gloo), 1 epoch, tiny SYNTHETIC cohort.
"""

from __future__ import annotations

import json
import math

import pytest
from _bundle_test_utils import TINY, make_cohort, run_bundle

from monai_bone.bundle import bundle_workflow, default_bundle_dir, no_checkpoint_overrides, quiet_engines

BUNDLE = "knee_osteoporosis_hybrid_attention"

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory):
    datalist = make_cohort(tmp_path_factory.mktemp("knee_ddp"), "knee", n=8, folds=2, seed=31)
    n_train = sum(int(r["fold"]) != 0 for r in json.loads(datalist.read_text())["training"])
    per_rank = math.ceil(n_train / 2)  # DistributedSampler(even_divisible=True) share of each of 2 ranks
    assert per_rank >= 2 and per_rank + 1 < n_train
    return datalist, n_train, per_rank


def test_each_rank_trains_when_the_batch_exceeds_its_share(cohort, tmp_path) -> None:
    """Batch between a rank's share and the fold: the fold has more than a batch, each rank less than one."""
    datalist, n_train, per_rank = cohort
    overrides = {**TINY, "bundle_root": tmp_path, "datalist": datalist, "epochs": 1, "batch_size": per_rank + 1}
    log = run_bundle(BUNDLE, ["train.json", "multi_gpu_train.json"], overrides, nproc=2)
    # the main rank's StatsHandler logs each iteration: one batch per rank per epoch (not zero)
    assert "Epoch: 1/1, Iter: 1/1" in log, log[-3000:]
    assert (tmp_path / "models" / "model.pt").is_file()


def test_single_process_rule_counts_the_loaded_studies(tmp_path) -> None:
    """One process: ``drop_last`` looks at the studies the dataset loaded, not the datalist's records. Two
    unreadable training images are dropped by the memory cache; a batch between the loaded count and the record count
    must not drop the only batch."""
    datalist = make_cohort(tmp_path / "cohort", "knee", n=8, folds=2, seed=31)
    train = [r for r in json.loads(datalist.read_text())["training"] if int(r["fold"]) != 0]
    for r in train[:2]:
        (datalist.parent / r["image"]).write_bytes(b"not a DICOM file")
    bundle = default_bundle_dir("knee")
    overrides = {**TINY, "pretrained": None, "bundle_root": str(tmp_path / "run"), "datalist": str(datalist)}
    overrides.update({"epochs": 1, "batch_size": len(train) - 1, "device": "$torch.device('cpu')"})
    with quiet_engines():
        wf = bundle_workflow(bundle, ("train.json",), "train", **{**overrides, **no_checkpoint_overrides(bundle)})
        wf.initialize()
        trainer = wf.parser.get_parsed_content("train#trainer")
        assert len(wf.parser.get_parsed_content("train#dataset")) == len(train) - 2
        wf.run()
        wf.finalize()
    assert trainer.state.epoch == 1 and trainer.state.epoch_length == 1
