"""Tests of XAttnBMD: shapes, fusion variants, missing-field handling, attention maps, parameter counts."""

from __future__ import annotations

import pytest
import torch

from monai_bone.constants import CLINICAL_FIELDS
from monai_bone.networks import FUSIONS, XAttnBMD

F = len(CLINICAL_FIELDS)
SMALL = {"hidden_size": 16, "num_heads": 4, "num_layers": 2, "dropout_rate": 0.0, "head_dropout": 0.0}


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: much faster than two on a shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


_CACHE: dict[str, XAttnBMD] = {}


def _net(fusion="xattn", seed=0, **kwargs):
    """A small eval-mode network; the default one of each fusion is built once (tests that train build their own)."""
    if not kwargs and seed == 0 and fusion in _CACHE:
        return _CACHE[fusion]
    torch.manual_seed(seed)
    net = XAttnBMD(fusion=fusion, **{**SMALL, **kwargs}).eval()
    if not kwargs and seed == 0:
        _CACHE[fusion] = net
    return net


def _inputs(batch=2, size=(64, 64), channels=1, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, channels, *size, generator=g), torch.randn(batch, F, generator=g)


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(
    ("batch", "channels", "size", "out_channels", "fusion"),
    [
        (1, 1, (224, 224), 1, "xattn"),
        (4, 3, (256, 256), 1, "xattn"),
        (4, 1, (256, 192), 3, "xattn"),
        (1, 3, (224, 224), 1, "concat"),
        (4, 1, (160, 224), 1, "image"),
        (4, 1, (224, 224), 3, "clinical"),
    ],
)
def test_shapes(batch, channels, size, out_channels, fusion):
    net = _net(fusion, in_channels=channels, out_channels=out_channels)
    image, clinical = _inputs(batch, size, channels)
    with torch.no_grad():
        out = net(image, clinical)
    assert out.shape == (batch, out_channels)
    assert torch.isfinite(out).all()


def test_attention_map_shapes_follow_the_input_grid():
    net = _net()
    image, clinical = _inputs(2, (256, 192))
    maps = net.attention_maps(image, clinical)
    assert maps["field_weights"].shape == (2, F)
    assert maps["field_weights_per_layer"].shape == (2, 2, F)
    assert maps["image_map"].shape == (2, 8, 6)  # stride-32 ResNet34 grid
    torch.testing.assert_close(maps["image_map"].sum(dim=(1, 2)), torch.ones(2))
    with torch.no_grad():
        torch.testing.assert_close(maps["prediction"], net(image, clinical))


@pytest.mark.parametrize("fusion", ["xattn", "concat"])
def test_gradients_reach_both_branches(fusion):
    net = _net(fusion, seed=1).train()
    image, clinical = _inputs(2)
    clinical[0, 2] = float("nan")
    net(image, clinical).sum().backward()
    params = dict(net.named_parameters())
    names = ["encoder.conv1.weight", "image_proj.weight", "field_encoder.value_weight", "field_encoder.missing_token"]
    if fusion == "xattn":
        names += ["cross_attention.layers.0.attn_image.to_q.weight", "pos_embed"]
    for name in names:
        grad = params[name].grad
        assert grad is not None and grad.abs().sum() > 0, name
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)


def test_image_variant_ignores_clinical():
    net = _net("image")
    image, clinical = _inputs(2)
    with torch.no_grad():
        ref = net(image, clinical)
        torch.testing.assert_close(net(image, clinical * 5 + 3), ref)
        torch.testing.assert_close(net(image), ref)
        assert not torch.allclose(net(image * 0.5, clinical), ref)


def test_clinical_variant_ignores_image():
    net = _net("clinical")
    assert net.encoder is None
    image, clinical = _inputs(2)
    with torch.no_grad():
        ref = net(image, clinical)
        torch.testing.assert_close(net(torch.rand_like(image), clinical), ref)
        torch.testing.assert_close(net(torch.zeros(2, 1, 32, 48), clinical), ref)
        assert not torch.allclose(net(image, clinical + 1.0), ref)


@pytest.mark.parametrize("fusion", ["xattn", "concat", "clinical"])
def test_one_clinical_field_changes_the_output(fusion):
    net = _net(fusion)
    image, clinical = _inputs(2)
    with torch.no_grad():
        ref = net(image, clinical)
        for field in (0, F - 1):
            changed = clinical.clone()
            changed[:, field] += 1.5
            out = net(image, changed)
            assert torch.all((out - ref).abs() > 1e-7), (fusion, CLINICAL_FIELDS[field])


@pytest.mark.parametrize("fusion", ["xattn", "concat", "clinical"])
def test_clinical_none_means_every_field_missing(fusion):
    net = _net(fusion).eval()
    image, clinical = _inputs(2)
    with torch.no_grad():
        no_clinical = net(image)
        all_missing = net(image, torch.full_like(clinical, float("nan")))
        some_present = net(image, clinical)
    torch.testing.assert_close(no_clinical, all_missing)
    assert not torch.allclose(no_clinical, some_present)


def test_field_weights_sum_to_one_and_masked_fields_get_zero():
    net = _net()
    image, clinical = _inputs(3)
    clinical[0, [1, 4, 9]] = float("nan")
    clinical[1, :] = float("nan")  # nothing present
    maps = net.attention_maps(image, clinical)
    weights = maps["field_weights"]
    torch.testing.assert_close(weights[0].sum(), torch.tensor(1.0))
    torch.testing.assert_close(weights[2].sum(), torch.tensor(1.0))
    assert torch.all(weights[0, [1, 4, 9]] == 0)
    assert torch.all(weights[0, [0, 2, 3, 5, 6, 7, 8]] > 0)
    assert torch.all(weights[1] == 0)
    for layer in net.cross_attention.layers:  # every head, every image token, every layer
        assert torch.all(layer.attn_image.att_mat[0][..., [1, 4, 9]] == 0)
    per_layer = maps["field_weights_per_layer"]
    torch.testing.assert_close(per_layer[2].sum(-1), torch.ones(2))
    assert torch.isfinite(maps["image_map"]).all()


def test_masked_value_is_never_used():
    net = _net()
    image, clinical = _inputs(2)
    mask = torch.ones(2, F)
    mask[:, 3] = 0
    with torch.no_grad():
        ref = net(image, clinical, mask)
        changed = clinical.clone()
        changed[:, 3] = 1e6
        torch.testing.assert_close(net(image, changed, mask), ref)
        # a missing field is not a zero: the learned missing token differs from the value 0
        zero = clinical.clone()
        zero[:, 3] = 0.0
        assert not torch.allclose(net(image, zero), ref)


@pytest.mark.parametrize("fusion", ["xattn", "concat", "clinical"])
def test_nan_missing_vector_equals_explicit_mask(fusion):
    net = _net(fusion)
    image, clinical = _inputs(2)
    mask = torch.ones(2, F, dtype=torch.bool)
    mask[0, [0, 5]] = False
    mask[1, 8] = False
    with_nan = clinical.masked_fill(~mask, float("nan"))
    with torch.no_grad():
        explicit = net(image, clinical, mask)
        torch.testing.assert_close(net(image, with_nan), explicit)
        torch.testing.assert_close(net(image, with_nan, mask.float()), explicit)  # float mask from ClinicalVectord
        torch.testing.assert_close(net(image, with_nan.double()), explicit)  # float64 clinical vector
    assert torch.isfinite(explicit).all()
    if fusion == "xattn":
        torch.testing.assert_close(
            net.attention_maps(image, with_nan)["field_weights"],
            net.attention_maps(image, clinical, mask)["field_weights"],
        )


def test_target_scaling():
    torch.manual_seed(0)
    base = XAttnBMD(fusion="clinical", **SMALL).eval()
    scaled = XAttnBMD(fusion="clinical", target_mean=0.85, target_std=0.12, **SMALL).eval()
    scaled.load_state_dict(base.state_dict() | {"target_mean": scaled.target_mean, "target_std": scaled.target_std})
    _, clinical = _inputs(3)
    image = torch.zeros(3, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(scaled(image, clinical), 0.85 + 0.12 * base(image, clinical))
    assert set(scaled.state_dict()) >= {"target_mean", "target_std"}


def test_bad_inputs_raise():
    net = _net()
    image, clinical = _inputs(2)
    with pytest.raises(ValueError, match="shape"):
        net(image, clinical[:, :5])
    with pytest.raises(ValueError, match="batch"):
        net(image, clinical[:1])
    with pytest.raises(ValueError, match="clinical_mask"):
        net(image, clinical, torch.ones(2, 3))
    with pytest.raises(ValueError, match="xattn"):
        _net("concat").attention_maps(image, clinical)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"fusion": "late"},
        {"spatial_dims": 3},
        {"clinical_fields": ()},
        {"clinical_fields": ("age_xray", "age_xray")},
        {"hidden_size": 18},
        {"pos_embedding": "sincos"},
        {"target_std": 0.0},
        {"fusion": "clinical", "pretrained_path": "weights.pth"},
    ],
)
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        XAttnBMD(**{**SMALL, **kwargs})


def test_custom_fields_and_no_positional_embedding():
    net = _net(clinical_fields=("age_xray", "weight", "sex"), pos_embedding=None)
    assert net.pos_embed is None and net.num_fields == 3
    with torch.no_grad():
        out = net(torch.rand(2, 1, 64, 96), torch.tensor([[75.0, float("nan"), 0.0], [70.0, 60.0, 1.0]]))
    assert out.shape == (2, 1)


def test_parameter_counts_of_the_default_config():
    """The table in the XAttnBMD docstring (default arguments, in_channels=1, 10 fields)."""
    counts = {}
    for fusion in FUSIONS:
        net = XAttnBMD(fusion=fusion)
        counts[fusion] = _count(net)
        parts = {name: _count(child) for name, child in net.named_children()}
        if fusion == "xattn":
            assert parts == {
                "image_mixer": 0,  # the token mixers of the capacity-matched concat are empty outside concat
                "meta_mixer": 0,
                "encoder": 21_278_400,
                "image_proj": 131_328,
                "image_norm": 512,
                "field_encoder": 73_728,
                "cross_attention": 3_555_846,
                "meta_norm": 512,
                "head": 65_794,
                "input_norm": 0,  # mean/SD buffers only
            }
            assert net.pos_embed.numel() == 12_544
    assert counts == {"xattn": 25_118_664, "concat": 24_723_906, "image": 21_443_266, "clinical": 370_178}
    # the concat row is capacity-matched (within ±5 % of xattn); the light concat stays reachable
    assert abs(counts["concat"] / counts["xattn"] - 1) < 0.05
    light = XAttnBMD(in_channels=1, fusion="concat", concat_mixing_layers=0)
    assert sum(p.numel() for p in light.parameters()) == 21_813_186


def test_capacity_matched_concat_never_mixes_modalities():
    """Through forward: the concat image stream is the same whatever the clinical values (no cross-modal step)."""
    net = XAttnBMD(in_channels=1, fusion="concat", hidden_size=32, num_heads=4).eval()
    seen = []
    net.image_mixer.register_forward_hook(lambda _m, _i, out: seen.append(out.clone()))
    image, clinical = _inputs(2)
    with torch.no_grad():
        a = net(image, clinical)
        b = net(image, torch.randn_like(clinical))
    assert torch.equal(seen[0], seen[1]) and not torch.equal(a, b)
    assert net.cross_attention is None and net.clinical_mlp is None


def test_output_keeps_float32_under_autocast():
    net = _net()
    image, clinical = _inputs(2)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(image, clinical)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
