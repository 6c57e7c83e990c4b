"""The knee pair of ``monai-bone cv`` with the ROI input: both rows get the texture descriptor, and the table's
parameter counts are those of the trained networks."""

from __future__ import annotations

import pytest
import torch

from monai_bone.bundle import default_bundle_dir
from monai_bone.cv.rows import densenet_def, param_count, row_overrides


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_densenet_row_follows_the_bundles_texture_setting(tmp_path):
    bundle = default_bundle_dir("knee")
    assert densenet_def(bundle)["texture_features"] == "@texture_features"
    datalist = tmp_path / "datalist.json"  # not read: the network needs no data
    offline = {"pretrained": None}
    assert param_count(bundle, datalist, offline) == 15_081_740  # whole image: the paper's network
    roi = {**offline, "roi_size_mm": 50.0}  # the ROI input brings texture_features 32 (roi_texture_features)
    assert param_count(bundle, datalist, roi) == 15_081_740 + 32 * (15 * 15 + 2) + 32 * 1024
    dense = param_count(bundle, datalist, {**roi, **row_overrides("densenet169", bundle)})
    assert (
        dense
        == param_count(bundle, datalist, {**offline, **row_overrides("densenet169", bundle)}) + 32 * (15 * 15 + 2) + 32
    )
