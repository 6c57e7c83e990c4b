"""The knee networks' ``texture_features`` option: a TextureEnergy descriptor of the input beside the CNN features."""

from __future__ import annotations

import pytest
import torch
from monai.networks.nets import DenseNet169

from monai_bone.networks import DenseNet169Baseline, HybridAttentionNet
from monai_bone.networks.blocks import TextureEnergy
from monai_bone.networks.nets.texture_option import TEXTURE_KERNEL, texture_branch

K = 8


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_zero_keeps_the_papers_networks():
    hybrid = HybridAttentionNet(texture_features=0)
    assert hybrid.texture is None and _count(hybrid) == 15_081_740
    baseline = DenseNet169Baseline(texture_features=0)
    assert baseline.texture is None
    assert _count(baseline) == _count(DenseNet169(spatial_dims=2, in_channels=1, out_channels=1))


def test_parameter_count_and_head_width_with_texture():
    branch = K * TEXTURE_KERNEL * TEXTURE_KERNEL + 2 * K  # filters (no bias) + BatchNorm affine
    hybrid = HybridAttentionNet(texture_features=K)
    assert isinstance(hybrid.texture[0], TextureEnergy) and hybrid.texture[0].out_features == K
    assert hybrid.head[0].in_features == 1792 + K
    assert _count(hybrid) == 15_081_740 + branch + K * 1024  # the head's first layer sees K more inputs
    baseline = DenseNet169Baseline(texture_features=K)
    assert baseline.net.class_layers.out.in_features == 1664 + K
    assert _count(baseline) == _count(DenseNet169Baseline()) + branch + K
    with pytest.raises(ValueError, match="texture_features"):
        texture_branch(2, 1, -1)


@pytest.mark.parametrize("cls", [HybridAttentionNet, DenseNet169Baseline])
def test_shapes_and_the_descriptor_is_used(cls):
    torch.manual_seed(0)
    net = cls(in_channels=1, out_channels=3, texture_features=K)
    x = torch.rand(4, 1, 64, 80)
    out = net(x)
    assert out.shape == (4, 3) and torch.isfinite(out).all()
    out.sum().backward()
    assert net.texture[0].filters.weight.grad.abs().sum() > 0  # trained end to end with the network
    net.eval()
    with torch.no_grad():
        before = net(x)
        net.texture[1].bias.add_(1.0)  # move only the texture descriptor's output
        assert not torch.allclose(net(x), before)
