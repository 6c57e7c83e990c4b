"""Tests of the masked cross-attention block and the bidirectional cross-attention stack."""

from __future__ import annotations

import pytest
import torch
from monai.networks.blocks import CrossAttentionBlock

from monai_bone.networks import BidirectionalCrossAttention, MaskedCrossAttentionBlock


def _pair(seed=0, hidden=16, heads=4, **kwargs):
    torch.manual_seed(seed)
    ours = MaskedCrossAttentionBlock(hidden, heads, save_attn=True, **kwargs).eval()
    monai = CrossAttentionBlock(hidden, heads, save_attn=True, **kwargs).eval()
    monai.load_state_dict(ours.state_dict())
    return ours, monai


@pytest.mark.parametrize("qkv_bias", [False, True])
def test_unmasked_equals_monai_cross_attention_block(qkv_bias):
    ours, monai = _pair(qkv_bias=qkv_bias)
    x, ctx = torch.randn(2, 5, 16), torch.randn(2, 7, 16)
    torch.testing.assert_close(ours(x, ctx), monai(x, context=ctx))
    torch.testing.assert_close(ours.att_mat, monai.att_mat)
    torch.testing.assert_close(ours(x), monai(x))  # self-attention when context is None


def test_masked_keys_get_exactly_zero_attention_and_do_not_matter():
    ours, _ = _pair()
    x, ctx = torch.randn(3, 4, 16), torch.randn(3, 6, 16)
    mask = torch.tensor([[1, 1, 0, 1, 0, 1], [0, 0, 0, 0, 0, 1], [1, 1, 1, 1, 1, 1]], dtype=torch.bool)
    out = ours(x, ctx, mask)
    att = ours.att_mat  # (B, heads, T_query, T_key)
    assert torch.all(att[~mask[:, None, None, :].expand_as(att)] == 0)
    torch.testing.assert_close(att.sum(-1), torch.ones(att.shape[:-1]))
    # the masked keys' content is irrelevant
    ctx2 = ctx.clone()
    ctx2[~mask] = 100.0
    torch.testing.assert_close(ours(x, ctx2, mask), out)
    # equals attending over the present keys only
    torch.testing.assert_close(ours(x[1:2], ctx[1:2, 5:6]), out[1:2])


def test_all_keys_masked_gives_zero_update_and_finite_gradients():
    ours, _ = _pair()
    ours.train()
    x = torch.randn(2, 3, 16, requires_grad=True)
    ctx = torch.randn(2, 4, 16, requires_grad=True)
    mask = torch.tensor([[0, 0, 0, 0], [1, 0, 1, 0]], dtype=torch.bool)
    out = ours(x, ctx, mask)
    assert torch.all(out[0] == 0)
    assert out[1].abs().sum() > 0
    out.sum().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(ctx.grad).all()


@pytest.mark.parametrize("kwargs", [{"causal": True, "sequence_length": 4}, {"use_flash_attention": True}])
def test_masked_block_refuses_unsupported_options(kwargs):
    with pytest.raises(ValueError):
        MaskedCrossAttentionBlock(16, 4, **kwargs)


def test_bidirectional_stack_shapes_maps_and_mask():
    torch.manual_seed(0)
    xattn = BidirectionalCrossAttention(hidden_size=16, num_layers=2, num_heads=4).eval()
    img, meta = torch.randn(2, 6, 16), torch.randn(2, 3, 16)
    mask = torch.tensor([[1, 0, 1], [1, 1, 1]], dtype=torch.bool)
    img2, meta2 = xattn(img, meta, mask)
    assert img2.shape == img.shape and meta2.shape == meta.shape
    i2m, m2i = xattn.attention()
    assert len(i2m) == len(m2i) == 2
    assert i2m[0].shape == (2, 4, 6, 3) and m2i[0].shape == (2, 4, 3, 6)
    for a in i2m:
        assert torch.all(a[0, :, :, 1] == 0)
    # a masked field does not influence the image stream
    meta_changed = meta.clone()
    meta_changed[0, 1] += 5.0
    img3, _ = xattn(img, meta_changed, mask)
    torch.testing.assert_close(img3[0], img2[0])


def test_bidirectional_gradients_reach_gates_and_kv_updaters():
    torch.manual_seed(0)
    xattn = BidirectionalCrossAttention(hidden_size=16, num_layers=2, num_heads=2)
    img, meta = xattn(torch.randn(2, 6, 16), torch.randn(2, 3, 16))
    (img.sum() + meta.sum()).backward()
    params = dict(xattn.named_parameters())
    for name in ("fusion_image", "fusion_meta", "kv_image.1.weight", "kv_meta.1.weight"):
        for layer in range(2):
            grad = params[f"layers.{layer}.{name}"].grad
            assert grad is not None and grad.abs().sum() > 0, (layer, name)


def test_bidirectional_argument_errors():
    with pytest.raises(ValueError):
        BidirectionalCrossAttention(hidden_size=18, num_heads=4)
    with pytest.raises(ValueError):
        BidirectionalCrossAttention(hidden_size=16, num_layers=0)
    with pytest.raises(RuntimeError):
        BidirectionalCrossAttention(hidden_size=16, save_attn=False).attention()
