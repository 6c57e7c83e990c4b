"""Tests of WeightedSmoothL1Loss against hand-computed values."""

from __future__ import annotations

import pytest
import torch

from monai_bone.losses import WeightedSmoothL1Loss

# beta 0.1, threshold 0.899, low weight 2:
#   |0.80-0.85| = 0.05 < beta -> 0.5 * 0.05^2 / 0.1 = 0.0125, target 0.85 < 0.899 -> weight 2 -> 0.025
#   |0.70-0.95| = 0.25        -> 0.25 - 0.05 = 0.20,         weight 1 -> 0.20
#   |1.02-0.90| = 0.12        -> 0.12 - 0.05 = 0.07,         target 0.90 >= 0.899 -> weight 1 -> 0.07
#   |0.95-1.10| = 0.15        -> 0.15 - 0.05 = 0.10,         weight 1 -> 0.10
INPUT = [0.80, 0.70, 1.02, 0.95]
TARGET = [0.85, 0.95, 0.90, 1.10]
EXPECTED = {"none": [0.025, 0.20, 0.07, 0.10], "sum": 0.395, "mean": 0.395 / 5.0}  # mean: / sum of weights (2+1+1+1)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("shape", [(4,), (4, 1)])
def test_hand_computed_threshold_example(reduction, shape):
    loss = WeightedSmoothL1Loss(beta=0.1, threshold=0.899, low_weight=2.0, reduction=reduction)
    value = loss(torch.tensor(INPUT).reshape(shape), torch.tensor(TARGET).reshape(shape))
    expected = torch.tensor(EXPECTED[reduction])
    if reduction == "none":
        expected = expected.reshape(shape)
    torch.testing.assert_close(value, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("reduction", "expected"), [("none", [0.45, 0.009, 0.025, 0.0]), ("sum", 0.484), ("mean", 0.0605)]
)
def test_hand_computed_bins_example(reduction, expected):
    # bins: target < 0.719 -> 3, < 0.899 -> 2, else 1; weights [3, 2, 2, 1] (0.719 is not < 0.719), sum 8
    # errors 0.2 -> 0.15, 0.03 -> 0.5 * 0.0009 / 0.1 = 0.0045, 0.05 -> 0.0125, 0 -> 0
    loss = WeightedSmoothL1Loss(beta=0.1, bins=((0.719, 3.0), (0.899, 2.0)), reduction=reduction)
    target = torch.tensor([0.70, 0.85, 0.719, 1.0])
    value = loss(target + torch.tensor([0.2, -0.03, 0.05, 0.0]), target)
    torch.testing.assert_close(value, torch.tensor(expected), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(loss.sample_weights(target), torch.tensor([3.0, 2.0, 2.0, 1.0]))


def test_mean_is_normalised_by_the_sum_of_weights():
    torch.manual_seed(0)
    target = 0.5 + 0.3 * torch.rand(16)  # all below the threshold: every weight is low_weight
    pred = target + 0.2 * torch.randn(16)
    reference = torch.nn.SmoothL1Loss(beta=0.1)(pred, target)
    for low_weight in (1.0, 2.0, 7.5):
        torch.testing.assert_close(WeightedSmoothL1Loss(beta=0.1, low_weight=low_weight)(pred, target), reference)
    # with a mix, low-BMD errors count more than high-BMD errors of the same size
    loss = WeightedSmoothL1Loss(beta=0.1, low_weight=3.0, reduction="none")
    values = loss(torch.tensor([0.6, 1.2]), torch.tensor([0.7, 1.1]))
    torch.testing.assert_close(values[0], 3.0 * values[1])


def test_beta_zero_is_weighted_l1_and_gradients_flow():
    loss = WeightedSmoothL1Loss(beta=0.0, low_weight=2.0, reduction="sum")
    pred = torch.tensor([0.80, 1.00], requires_grad=True)
    value = loss(pred, torch.tensor([0.85, 0.90]))
    torch.testing.assert_close(value, torch.tensor(2 * 0.05 + 0.10))
    value.backward()
    torch.testing.assert_close(pred.grad, torch.tensor([-2.0, 1.0]))


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="shape"):
        WeightedSmoothL1Loss()(torch.zeros(4, 1), torch.zeros(4))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"beta": -0.1},
        {"beta": float("nan")},
        {"threshold": float("inf")},
        {"low_weight": 0.0},
        {"low_weight": -1.0},
        {"bins": ()},
        {"bins": ((0.9, 2.0), (0.7, 3.0))},  # not increasing
        {"bins": ((0.7, 3.0), (0.7, 2.0))},  # not strictly increasing
        {"bins": ((0.7, 0.0),)},  # weight not positive
        {"bins": ((0.7,),)},  # not a pair
        {"bins": (("low", 2.0),)},
        {"reduction": "average"},
    ],
)
def test_bad_arguments_raise(kwargs):
    with pytest.raises(ValueError):
        WeightedSmoothL1Loss(**kwargs)


def test_who_bins_grade_by_clinical_class_and_old_behaviour_stays_reachable():
    from monai_bone.losses import who_bins

    bins = who_bins()
    assert [v for pair in bins for v in pair] == pytest.approx([0.719, 4.0, 0.899, 2.0])
    loss = WeightedSmoothL1Loss(beta=0.06, bins=bins, reduction="none")
    w = loss.sample_weights(torch.tensor([0.70, 0.72, 0.80, 0.90, 1.10]))
    torch.testing.assert_close(w, torch.tensor([4.0, 2.0, 2.0, 1.0, 1.0]))  # T <= -2.5 > osteopenia > normal
    assert who_bins(weights=None) is None  # the two-level loss (threshold, low_weight) as before


def test_bundle_default_loss_is_graded_with_beta_from_the_reference_sd():
    from pathlib import Path

    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(Path(__file__).resolve().parents[2] / "bundles/hip_bmd_xattn/configs/train.json"))
    parser.get_parsed_content("imports")
    loss = parser.get_parsed_content("loss", instantiate=True)
    assert [v for pair in loss.bins for v in pair] == pytest.approx([0.719, 4.0, 0.899, 2.0])
    assert loss.beta == pytest.approx(0.06)
    parser["loss_weights"] = None  # the earlier two-level weighting stays one override away
    parser.parse(reset=True)
    old = parser.get_parsed_content("loss", instantiate=True)
    assert old.bins is None and old.low_weight == 2.0
