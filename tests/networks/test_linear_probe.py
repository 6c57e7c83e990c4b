"""Linear-probe start of XAttn-BMD's linear skip: the ridge fit, and a network that starts as that ridge model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import Ridge

from monai_bone.networks import XAttnBMD
from monai_bone.networks.nets.linear_probe import ALPHAS, collect_probe_data, fit_linear_skip, fix_texture, gcv_ridge


def test_gcv_ridge_matches_sklearn_at_the_chosen_penalty() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 5))
    y = x @ np.array([1.0, -2.0, 0.0, 0.5, 0.0]) + rng.normal(scale=2.0, size=60) + 3.0
    coef, alpha, gcv = gcv_ridge(torch.from_numpy(x), torch.from_numpy(y))
    assert alpha in ALPHAS and gcv > 0
    ref = Ridge(alpha=alpha * 60).fit(x, y)
    np.testing.assert_allclose(coef[:-1].numpy(), ref.coef_, rtol=1e-8, atol=1e-10)
    assert float(coef[-1]) == pytest.approx(ref.intercept_, rel=1e-8)
    # GCV picks a larger penalty for pure noise than for a clean linear signal
    _, alpha_noise, _ = gcv_ridge(torch.from_numpy(x), torch.from_numpy(rng.normal(size=60)))
    _, alpha_clean, _ = gcv_ridge(torch.from_numpy(x), torch.from_numpy(x[:, 0] * 2.0))
    assert alpha_noise > alpha_clean


def _net(**kw) -> XAttnBMD:
    torch.manual_seed(0)
    args = {"clinical_fields": ["age", "bmi"], "fusion": "xattn", "texture_features": 8, "linear_skip": True}
    return XAttnBMD(2, 1, 1, pretrained=None, **{**args, **kw}).set_target_stats(0.9, 0.1)


def test_the_network_starts_as_the_ridge_model_of_its_training_batches() -> None:
    net = _net().eval()
    images, clinical = torch.rand(40, 1, 48, 48), torch.randn(40, 2)
    clinical[3, 1] = float("nan")  # a missing field: value 0, presence 0
    with torch.no_grad():
        energy = net.texture.energy(images)
    z = (energy[:, 2] - energy[:, 2].mean()) / energy[:, 2].std()
    bmd = 0.9 + 0.04 * clinical[:, 0].nan_to_num() + 0.08 * z + 0.01 * torch.randn(40)
    batches = [(images[i : i + 8], bmd[i : i + 8, None], (clinical[i : i + 8],), {}) for i in range(0, 40, 8)]
    data = collect_probe_data(net, batches)
    assert data["energy"].shape == (40, 8) and data["present"][3].tolist() == [1.0, 0.0]
    summary = fit_linear_skip(net, data)
    assert summary["n"] == 40 and summary["features"] == 8 + 2 + 2 and summary["train_r2"] > 0.9
    torch.testing.assert_close(net.texture.running_mean, energy.mean(0))
    x = torch.cat([(energy - energy.mean(0)) / torch.sqrt(energy.var(0, unbiased=False) + 1e-5), data["values"],
                   data["present"]], dim=1).double()  # fmt: skip
    ref = Ridge(alpha=summary["alpha"] * 40).fit(x.numpy(), ((bmd - 0.9) / 0.1).double().numpy())
    with torch.no_grad():
        out = net(images, clinical).squeeze(1)
    np.testing.assert_allclose(out.numpy(), 0.9 + 0.1 * ref.predict(x.numpy()), atol=2e-5)


def test_image_only_network_probes_the_texture_alone_and_no_skip_is_refused() -> None:
    net = _net(fusion="image").eval()
    data = collect_probe_data(net, [(torch.rand(6, 1, 40, 40), torch.rand(6), (), {})])
    assert set(data) == {"energy", "target"}
    assert fit_linear_skip(net, data)["features"] == 8
    with pytest.raises(ValueError, match="linear_skip=True"):
        fit_linear_skip(_net(linear_skip=False), data)
    with pytest.raises(ValueError, match="at least 2"):
        fit_linear_skip(net, {"energy": data["energy"][:1], "target": data["target"][:1]})


def test_freeze_texture_keeps_the_features_the_skip_was_fitted_on() -> None:
    net = _net()
    images, clinical = torch.rand(12, 1, 40, 40), torch.randn(12, 2)
    batches = [(images, torch.rand(12), (clinical,), {})]
    fit_linear_skip(net, collect_probe_data(net.eval(), batches), freeze_texture=True)
    net.train()
    out = net(images, clinical)
    out.sum().backward()
    # the skip reads the energies, so without the hook the filters would get a gradient through it
    assert float(net.skip.weight.grad.abs().sum()) > 0
    assert all(float(p.grad.abs().sum()) == 0 for p in net.texture.energy.parameters())
    fix_texture(net)  # a second call (a resumed run) adds no second hook
    assert len(net.texture.energy.filters.weight._backward_hooks or {}) <= 1
    with torch.no_grad():
        net.eval()
        eval_z = net.texture(images)[1]
        net.train()
        train_z = net.texture(images)[1]  # running statistics in training too: the same standardisation
    torch.testing.assert_close(train_z, eval_z)
    assert fix_texture(_net(fusion="clinical")) is False  # no texture: nothing to fix
