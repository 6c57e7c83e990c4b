"""XAttnBMD's texture token (``texture_features``) and linear skip: shapes, gradients, the paper's architecture at 0,
and TorchScript / ONNX export."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from monai_bone.networks import XAttnBMD
from monai_bone.networks.nets.texture_token import TextureToken

SMALL = {"hidden_size": 32, "num_heads": 4, "num_layers": 2, "texture_kernel_size": 7}


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _inputs(batch: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    clinical = torch.randn(batch, 10, generator=g)
    clinical[0, 3] = float("nan")
    return torch.rand(batch, 1, 64, 64, generator=g), clinical


@pytest.mark.parametrize("fusion", ["xattn", "concat", "image"])
@pytest.mark.parametrize("skip", [False, True])
def test_shapes_and_gradients_reach_the_texture_filters(fusion, skip):
    torch.manual_seed(0)
    net = XAttnBMD(fusion=fusion, texture_features=8, linear_skip=skip, **SMALL)
    image, clinical = _inputs(3)
    out = net(image, clinical)
    assert out.shape == (3, 1) and torch.isfinite(out).all()
    out.sum().backward()
    assert net.texture.energy.filters.weight.grad.abs().sum() > 0  # the filter bank trains end to end
    assert net.texture.proj.weight.grad.abs().sum() > 0
    if skip:
        assert net.skip.weight.grad.abs().sum() > 0
        assert net.skip.weight.shape == (1, 8 + (0 if fusion == "image" else 20))


def test_texture_token_changes_the_output_and_is_gain_invariant():
    """The token sees the texture, not the grey level: the texture stream ignores gain and offset of the image."""
    torch.manual_seed(0)
    token = TextureToken(2, 1, 16, num_features=8, kernel_size=7).eval()
    image, _ = _inputs(2)
    with torch.no_grad():
        a, za = token(image)
        b, zb = token(3.0 * image + 0.5)
        c, _ = token(torch.rand(2, 1, 64, 64))
    assert a.shape == (2, 1, 16) and za.shape == (2, 8)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-4)
    assert not torch.allclose(a, c, atol=1e-3)


def test_training_batch_of_one_study_uses_running_statistics():
    torch.manual_seed(0)
    net = XAttnBMD(fusion="xattn", texture_features=8, **SMALL).train()
    net.encoder.eval()  # a single study: ResNet BatchNorm in eval, the texture standardisation must not fail
    image, clinical = _inputs(1)
    before = net.texture.running_mean.clone()
    out = net(image, clinical)
    assert out.shape == (1, 1) and torch.isfinite(out).all()
    torch.testing.assert_close(net.texture.running_mean, before)  # no update from a one-study batch
    net(*_inputs(4))
    assert not torch.equal(net.texture.running_mean, before)


def test_attention_map_leaves_the_texture_token_out():
    torch.manual_seed(0)
    net = XAttnBMD(fusion="xattn", texture_features=8, **SMALL).eval()
    maps = net.attention_maps(*_inputs(2))
    assert maps["image_map"].shape == (2, 2, 2)
    torch.testing.assert_close(maps["image_map"].sum(dim=(1, 2)), torch.ones(2))


def test_zero_keeps_the_paper_architecture():
    """``texture_features=0`` (the default) builds no texture module: the documented parameter count is unchanged."""
    net = XAttnBMD(fusion="xattn", texture_features=0)
    assert net.texture is None and net.skip is None
    assert sum(p.numel() for p in net.parameters()) == 25_118_664
    with_texture = XAttnBMD(fusion="xattn", texture_features=16)
    concat = XAttnBMD(fusion="concat", texture_features=16)
    n_tex, n_cat = (sum(p.numel() for p in m.parameters()) for m in (with_texture, concat))
    assert (n_tex, n_cat) == (25_160_184, 24_765_426)  # the docstring table
    assert abs(n_cat / n_tex - 1) < 0.05  # the texture concat row stays capacity-matched


def test_arguments_without_an_input_to_read_are_ignored_and_bad_ones_raise():
    """One bundle setting serves every row: the clinical row has no image (no texture), the image row without texture
    has nothing to skip."""
    clinical = XAttnBMD(fusion="clinical", texture_features=8, linear_skip=True, hidden_size=32, num_heads=4)
    assert clinical.texture is None and clinical.skip.weight.shape == (1, 20)
    assert XAttnBMD(fusion="image", linear_skip=True, hidden_size=32, num_heads=4).skip is None
    with pytest.raises(ValueError, match="texture_features"):
        XAttnBMD(hidden_size=32, num_heads=4, texture_features=-1)


@pytest.mark.parametrize("fusion", ["xattn", "concat"])
def test_torchscript_and_onnx_give_the_eager_output(fusion, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    torch.manual_seed(0)
    net = XAttnBMD(fusion=fusion, texture_features=8, linear_skip=True, target_mean=0.8, target_std=0.1, **SMALL)
    net.train()
    net(*_inputs(4, seed=3))  # running statistics that differ from the start values
    net.eval()
    image, clinical = _inputs(2)
    other, other_clinical = _inputs(2, seed=1)
    with torch.no_grad():
        eager, eager_other = net(image, clinical), net(other, other_clinical)
        scripted = torch.jit.script(net)
        torch.jit.save(scripted, str(tmp_path / "net.ts"))
        reloaded = torch.jit.load(str(tmp_path / "net.ts"))
        torch.testing.assert_close(reloaded(image, clinical), eager, rtol=0, atol=1e-4)
        torch.testing.assert_close(reloaded(other, other_clinical), eager_other, rtol=0, atol=1e-4)
        path = tmp_path / "net.onnx"
        torch.onnx.export(net, (image, clinical), str(path), input_names=["image", "clinical"], dynamo=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for x, c, ref in ((image, clinical, eager), (other, other_clinical, eager_other)):
        got = session.run(None, {"image": x.numpy(), "clinical": c.numpy()})[0]
        np.testing.assert_allclose(got, ref.numpy(), rtol=0, atol=1e-4)


@pytest.mark.parametrize("kwargs", [{"xattn_readout": "layer_sum"}, {"meta_encoder": "mlp"}])
def test_other_readings_of_the_paper_train_and_script(kwargs):
    """The layer-sum readout of the fusion weight and the MLP metadata encoder: gradients reach their parameters,
    TorchScript gives the eager output, missing fields stay masked, the default keeps the paper reading's state."""
    torch.manual_seed(0)
    net = XAttnBMD(fusion="xattn", texture_features=8, **SMALL, **kwargs)
    image, clinical = _inputs(3)
    net(image, clinical).sum().backward()
    if "xattn_readout" in kwargs:
        assert net.cross_attention.layer_logits.grad.abs().sum() > 0
    else:
        assert net.field_encoder.readout.weight.grad.abs().sum() > 0
    net.eval()
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.script(net)(image, clinical), net(image, clinical), rtol=0, atol=1e-4)
        changed = clinical.clone()
        changed[0, 3] = 123.0  # a value the NaN already marks missing: never used
        torch.testing.assert_close(net(image, changed, ~torch.isnan(clinical)), net(image, clinical))
    assert XAttnBMD(hidden_size=32, num_heads=4).cross_attention.layer_logits is None
    with pytest.raises(ValueError):
        XAttnBMD(hidden_size=32, num_heads=4, meta_encoder="tabnet")
    with pytest.raises(ValueError):
        XAttnBMD(hidden_size=32, num_heads=4, xattn_readout="max")
