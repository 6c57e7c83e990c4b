"""TextureEnergy: the learnable filter-bank log-energy texture descriptor (monai_bone.networks.blocks)."""

from __future__ import annotations

import math

import pytest
import torch

from monai_bone.networks.blocks import TextureEnergy, gabor_bank


def _grating(wavelength: float, size: int = 96, angle: float = 0.0) -> torch.Tensor:
    yy, xx = torch.meshgrid(
        torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32), indexing="ij"
    )
    phase = 2 * math.pi * (xx * math.cos(angle) + yy * math.sin(angle)) / wavelength
    return torch.sin(phase)[None, None]


def test_gabor_bank_zero_mean_unit_norm():
    bank = gabor_bank(12, 15)
    assert bank.shape == (12, 15, 15)
    assert torch.allclose(bank.flatten(1).mean(1), torch.zeros(12), atol=1e-6)
    assert torch.allclose(bank.flatten(1).norm(dim=1), torch.ones(12), atol=1e-5)


def test_shape_and_gain_offset_invariance():
    block = TextureEnergy(2, 1, out_features=8).eval()
    x = torch.rand(3, 1, 64, 48)
    out = block(x)
    assert out.shape == (3, 8)
    assert torch.allclose(block(7.5 * x - 3.0), out, atol=1e-3)
    assert not torch.allclose(block(x.flip(-1) ** 3), out, atol=1e-2)


def test_start_bank_is_tuned_to_wavelength():
    wavelengths = (2.5, 4.0, 6.5, 10.0)
    block = TextureEnergy(2, 1, out_features=8, wavelengths=wavelengths).eval()  # 2 orientations per wavelength
    for index, lam in enumerate(wavelengths):
        energies = block(_grating(lam))[0]
        assert int(energies.argmax()) // 2 == index, (lam, energies)


def test_filters_learn_and_script():
    block = TextureEnergy(2, 2, out_features=4, kernel_size=7)
    x = torch.randn(2, 2, 32, 32)
    block(x).sum().backward()
    assert block.filters.weight.grad is not None and block.filters.weight.grad.abs().sum() > 0
    scripted = torch.jit.script(block.eval())
    assert torch.allclose(scripted(x), block(x), atol=1e-5)


def test_3d_and_bad_arguments():
    assert TextureEnergy(3, 1, out_features=3, kernel_size=3)(torch.rand(2, 1, 8, 8, 8)).shape == (2, 3)
    with pytest.raises(ValueError, match="spatial_dims"):
        TextureEnergy(1)
    with pytest.raises(ValueError, match="out_features"):
        TextureEnergy(2, 1, out_features=0)
