"""RAD-DINO-shaped image encoder (DINOv2 layout, tiny random config) inside XAttnBMD: every fusion mode trains,
the published-checkpoint loading code reads a checkpoint folder written here, exports trace and run in ONNX."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

pytest.importorskip("transformers")

from monai_bone.networks import FUSIONS, RAD_DINO_CONFIG, XAttnBMD  # noqa: E402

TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "image_size": 56}
SMALL = {"hidden_size": 16, "num_heads": 4, "num_layers": 2}
F = 10


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _net(fusion="xattn", **kw):
    torch.manual_seed(0)
    return XAttnBMD(fusion=fusion, image_encoder="rad-dino", image_encoder_config=TINY, **SMALL, **kw)


def test_published_architecture_is_vit_b14():
    assert RAD_DINO_CONFIG["hidden_size"] == 768 and RAD_DINO_CONFIG["patch_size"] == 14
    assert RAD_DINO_CONFIG["num_hidden_layers"] == 12 and RAD_DINO_CONFIG["num_attention_heads"] == 12


@pytest.mark.parametrize("fusion", FUSIONS)
def test_every_fusion_mode_forward_backward(fusion):
    net = _net(fusion).train()
    image, clinical = torch.rand(2, 1, 56, 56), torch.randn(2, F)
    clinical[0, 3] = float("nan")
    out = net(image, clinical)
    assert out.shape == (2, 1) and torch.isfinite(out).all()
    out.sum().backward()
    if fusion == "clinical":
        assert net.foundation_encoder is None
        return
    enc = net.foundation_encoder.named_parameters()
    grads = [p.grad for n, p in enc if "mask_token" not in n]  # the mask token serves masked-image pretraining only
    assert grads and all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)
    assert net.pos_embed is None  # the ViT has its own positional embedding


def test_patch_tokens_are_the_cross_attention_image_tokens():
    net = _net().eval()
    maps = net.attention_maps(torch.rand(1, 1, 56, 70), torch.randn(1, F))
    assert maps["image_map"].shape == (1, 4, 5)  # 56/14 x 70/14 patch tokens
    torch.testing.assert_close(maps["field_weights"].sum(dim=1), torch.ones(1))
    tokens, cls, h, w = net._image_tokens(torch.rand(1, 1, 56, 70))
    assert tokens.shape == (1, 20, 16) and cls.shape == (1, 16) and (h, w) == (4, 5)


def test_checkpoint_folder_loads_with_its_input_statistics(tmp_path):
    from transformers import Dinov2Config, Dinov2Model

    torch.manual_seed(3)
    source = Dinov2Model(Dinov2Config(**{**RAD_DINO_CONFIG, **TINY}))
    source.save_pretrained(tmp_path / "rad-dino")
    stats = {"image_mean": [0.53, 0.53, 0.53], "image_std": [0.26, 0.26, 0.26], "crop_size": {"height": 518}}
    (tmp_path / "rad-dino" / "preprocessor_config.json").write_text(json.dumps(stats))
    net = XAttnBMD(image_encoder="rad-dino", pretrained=str(tmp_path / "rad-dino"), **SMALL).eval()
    for key, value in source.state_dict().items():
        assert torch.equal(net.foundation_encoder.model.state_dict()[key], value), key
    torch.testing.assert_close(net.input_norm.mean, torch.tensor([0.53]))
    torch.testing.assert_close(net.input_norm.std, torch.tensor([0.26]))
    with pytest.raises(ValueError, match="not an ImageNet model"):
        XAttnBMD(image_encoder="rad-dino", pretrained="imagenet", **SMALL)


def test_offline_hub_gives_the_clear_error(tmp_path):
    code = (
        "from monai_bone.networks import PretrainedWeightsError, bundle_pretrained\n"
        "try:\n    bundle_pretrained('rad-dino', 'rad-dino')\n"
        "except PretrainedWeightsError as e:\n    print('ERR', e)\n"
    )
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "ERR RAD-DINO weights (microsoft/rad-dino)" in proc.stdout and "huggingface-cli download" in proc.stdout
    assert "--pretrained null" in proc.stdout


def test_trace_and_onnx_export(tmp_path):
    """TorchScript *scripting* cannot compile transformers' Dinov2Model (its config class has no retrievable source
    for the compiler), so export a RAD-DINO XAttnBMD by tracing or to ONNX, at the bundle's fixed input size."""
    net = _net().eval()
    image, clinical = torch.rand(2, 1, 56, 56), torch.randn(2, F)
    clinical[1, 0] = float("nan")
    with torch.no_grad():
        eager = net(image, clinical)
        traced = torch.jit.trace(net, (image, clinical))
        torch.jit.save(traced, str(tmp_path / "vit.ts"))
        torch.testing.assert_close(torch.jit.load(str(tmp_path / "vit.ts"))(image, clinical), eager)
    ort = pytest.importorskip("onnxruntime")
    torch.onnx.export(net, (image, clinical), str(tmp_path / "vit.onnx"), input_names=["image", "clinical"],
                      output_names=["pred"], dynamo=False)  # fmt: skip
    session = ort.InferenceSession(str(tmp_path / "vit.onnx"), providers=["CPUExecutionProvider"])
    onnx_out = session.run(None, {"image": image.numpy(), "clinical": clinical.numpy()})[0]
    torch.testing.assert_close(torch.from_numpy(onnx_out), eager, atol=1e-5, rtol=1e-5)
