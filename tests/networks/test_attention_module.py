"""Tests of the knee Attention Module and its channel / spatial attention blocks."""

from __future__ import annotations

import pytest
import torch

from monai_bone.networks import AttentionModule, ChannelAttention, SpatialAttention


@pytest.mark.parametrize(
    ("batch", "channels", "size"),
    [(1, 1, (224, 224)), (4, 3, (96, 160)), (2, 1, (256, 256))],
)
def test_attention_module_shapes(batch, channels, size):
    am = AttentionModule(spatial_dims=2, in_channels=channels).eval()
    with torch.no_grad():
        out = am(torch.rand(batch, channels, *size))
    assert out.shape == (batch, 128)
    assert torch.all(out >= 0)  # ReLU output, concatenated with ReLU-pooled DenseNet features


def test_attention_module_3d_and_out_features():
    am = AttentionModule(spatial_dims=3, in_channels=1, out_features=16, channels=(4, 8)).eval()
    with torch.no_grad():
        assert am(torch.rand(2, 1, 16, 16, 16)).shape == (2, 16)


def test_attention_module_gradients_reach_all_parts():
    torch.manual_seed(0)
    am = AttentionModule(spatial_dims=2, in_channels=1, channels=(8, 8, 16, 16), reduction=2)
    am(torch.rand(2, 1, 64, 64)).sum().backward()
    for name in ("convs.0.conv.weight", "channel_attention.mlp.2.weight", "spatial_attention.conv.weight", "fc.weight"):
        grad = dict(am.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_channel_attention_rescales_channels_with_avg_and_max():
    torch.manual_seed(0)
    ca = ChannelAttention(spatial_dims=2, in_channels=8, reduction=2)
    x = torch.rand(3, 8, 5, 7)
    w = ca.weights(x)
    assert w.shape == (3, 8) and torch.all((w > 0) & (w < 1))
    torch.testing.assert_close(ca(x), x * w[:, :, None, None])
    # the max descriptor matters: same channel means, different maxima -> different weights
    y = torch.full_like(x, 0.5)
    z = y.clone()
    z[:, :, 0, 0] += 1.0
    z[:, :, 0, 1] -= 1.0
    torch.testing.assert_close(z.mean(dim=(2, 3)), y.mean(dim=(2, 3)))
    assert not torch.allclose(ca.weights(y), ca.weights(z))


def test_spatial_attention_rescales_locations():
    torch.manual_seed(0)
    sa = SpatialAttention(spatial_dims=2, kernel_size=3)
    x = torch.rand(2, 4, 6, 9)
    w = sa.weights(x)
    assert w.shape == (2, 1, 6, 9) and torch.all((w > 0) & (w < 1))
    torch.testing.assert_close(sa(x), x * w)
    assert w.std() > 0  # location dependent


@pytest.mark.parametrize(
    "kwargs",
    [
        {"reduction": 0},
        {"reduction": 128},  # no hidden unit left for 64 channels
        {"spatial_kernel": 4},
        {"channels": ()},
        {"out_features": 0},
    ],
)
def test_attention_module_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        AttentionModule(spatial_dims=2, in_channels=1, **kwargs)
