"""Tests of the knee hybrid attention network (DenseNet169 features + Attention Module + MLP head)."""

from __future__ import annotations

import pytest
import torch
from monai.networks.nets import DenseNet169

from monai_bone.networks import HybridAttentionNet


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: much faster than two on a shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(
    ("batch", "in_channels", "size", "out_channels"),
    [(1, 1, (224, 224), 1), (4, 3, (256, 192), 3), (1, 1, (256, 256), 3)],
)
def test_shapes(batch, in_channels, size, out_channels):
    torch.manual_seed(0)
    net = HybridAttentionNet(spatial_dims=2, in_channels=in_channels, out_channels=out_channels).eval()
    with torch.no_grad():
        out = net(torch.rand(batch, in_channels, *size))
    assert out.shape == (batch, out_channels)
    assert torch.isfinite(out).all()


def test_three_dimensional_input():
    net = HybridAttentionNet(spatial_dims=3, in_channels=1, out_channels=2).eval()
    with torch.no_grad():
        assert net(torch.rand(1, 1, 32, 32, 32)).shape == (1, 2)


def test_layout_and_parameter_count():
    net = HybridAttentionNet()
    # DenseNet169 features are MONAI's (same keys and parameters as monai.networks.nets.DenseNet169.features)
    reference = DenseNet169(spatial_dims=2, in_channels=1, out_channels=1).features
    assert list(net.features.state_dict()) == list(reference.state_dict())
    assert _count(net.features) == _count(reference) == 12_478_208
    assert _count(net.attention_module) == 74_507
    assert _count(net.head) == 2_529_025
    assert _count(net) == 15_081_740  # the number in the class docstring
    linear = [m for m in net.head if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [
        (1792, 1024),
        (1024, 512),
        (512, 256),
        (256, 128),
        (128, 1),
    ]
    dropout = [m.p for m in net.head.modules() if isinstance(m, torch.nn.Dropout)]
    assert dropout == [0.5, 0.3, 0.2, 0.1]
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in net.head.modules()) == 4


def test_gradients_reach_both_branches():
    torch.manual_seed(0)
    net = HybridAttentionNet(in_channels=1, out_channels=3).train()
    logits = net(torch.rand(2, 1, 64, 64))
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 2])).backward()
    for name in ("features.conv0.weight", "attention_module.convs.0.conv.weight", "attention_module.fc.weight"):
        grad = dict(net.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_both_branches_change_the_output():
    torch.manual_seed(0)
    net = HybridAttentionNet().eval()
    x = torch.rand(1, 1, 64, 64)
    with torch.no_grad():
        base = net(x)
        net.attention_module.fc.bias.add_(1.0)
        after_am = net(x)
        net.features.norm5.bias.add_(1.0)
        after_dense = net(x)
    assert not torch.allclose(base, after_am)
    assert not torch.allclose(after_am, after_dense)


@pytest.mark.parametrize(
    "kwargs",
    [{"head_dropout": (0.5, 0.3)}, {"head_dropout": (0.5, 0.3, 0.2, 1.0)}, {"am_spatial_kernel": 2}],
)
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        HybridAttentionNet(**kwargs)
