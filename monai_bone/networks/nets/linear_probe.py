"""Linear-probe start of XAttn-BMD's linear skip (LP-FT: linear probing, then fine-tuning).

``XAttnBMD(linear_skip=True)`` adds ``Linear(standardised texture energies, clinical values, presence)`` to the head's
output. Trained from zero with the rest of the network, that linear part gets a few hundred AdamW steps at a small
learning rate on CPU, far from its least-squares solution. LP-FT (Kumar et al., "Fine-Tuning can Distort Pretrained
Features and Underperform Out-of-Distribution", ICLR 2022) starts fine-tuning from a fitted linear head instead:

1. one pass over the training data gives the texture energies (at the Gabor start of the filter bank), the clinical
   values and their presence;
2. the texture standardisation takes the energies' mean and variance as its running statistics;
3. a ridge regression of the standardised target on those features, its penalty chosen by generalised
   cross-validation over a grid (closed form from one SVD), becomes the skip's weight and bias;
4. the head's last layer is zeroed, so the network starts as that ridge model and learns what it misses.

Nothing here looks at a validation or test record: the caller passes training batches.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

import torch
import torch.nn as nn

__all__ = ["collect_probe_data", "fit_linear_skip", "fix_texture", "gcv_ridge", "probe_features"]

logger = logging.getLogger(__name__)

#: Ridge penalties tried, relative to the number of studies (GCV picks one).
ALPHAS: tuple[float, ...] = (1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0)


def gcv_ridge(x: torch.Tensor, y: torch.Tensor, alphas: Sequence[float] = ALPHAS) -> tuple[torch.Tensor, float, float]:
    """Ridge regression with an unpenalised intercept; the penalty ``alpha * n`` minimises the GCV error.

    Args:
        x: ``(n, p)`` features.
        y: ``(n,)`` target.
        alphas: candidate penalties per study.

    Returns:
        ``(coef (p + 1,) with the intercept last, alpha, GCV mean squared error)``, in float64.
    """
    x, y = x.double(), y.double()
    n = x.shape[0]
    mx, my = x.mean(0), y.mean()
    u, s, _vh = torch.linalg.svd(x - mx, full_matrices=False)
    uty = u.T @ (y - my)
    best: tuple[float, float] = (float("inf"), float(alphas[0]))
    for a in alphas:
        d = s**2 / (s**2 + a * n)
        resid = (y - my) - u @ (d * uty)
        gcv = float((resid**2).mean() / (1.0 - (d.sum() + 1.0) / n) ** 2)  # + 1: the intercept
        best = min(best, (gcv, float(a)))
    gcv, alpha = best
    w = _vh.T @ (s / (s**2 + alpha * n) * uty)
    return torch.cat([w, (my - mx @ w).reshape(1)]), alpha, gcv


def probe_features(network: nn.Module, image: torch.Tensor, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
    """The raw inputs of ``network.skip`` for one batch: ``energy`` (unstandardised texture log energies),
    ``values`` and ``present`` (clinical), each present only when the network has that stream."""
    out: dict[str, torch.Tensor] = {}
    texture = getattr(network, "texture", None)
    if texture is not None:
        out["energy"] = texture.energy(image)
    if getattr(network, "field_encoder", None) is not None:
        clinical = args[0] if args else kwargs.get("clinical")
        mask = args[1] if len(args) > 1 else kwargs.get("clinical_mask")
        if clinical is None:
            clinical = torch.full((image.shape[0], network.num_fields), float("nan"), device=image.device)
        values, present = network._clinical_mask(image, clinical, mask)
        out["values"], out["present"] = values, present.to(values.dtype)
    return out


def fix_texture(network: nn.Module) -> bool:
    """Keep the texture filters and their standardisation as they are, so a fitted skip's weights keep meaning the same
    features: running statistics also in training, and a zero gradient for the filters (a hook, not
    ``requires_grad=False``: DistributedDataParallel, already wrapped, expects a gradient for every parameter it saw;
    with a zero gradient Adam's step is zero). Returns False without a texture."""
    texture = getattr(network, "texture", None)
    if texture is None:
        return False
    texture.fixed_stats = True
    for param in texture.energy.parameters():
        if not getattr(param, "_monai_bone_fixed", False):
            param.register_hook(torch.zeros_like)
            param._monai_bone_fixed = True
    return True


def _last_linear(module: nn.Module) -> nn.Linear:
    layers = [m for m in module.modules() if isinstance(m, nn.Linear)]
    if not layers:
        raise ValueError("the network's head has no Linear layer to zero")
    return layers[-1]


ProbeData = dict[str, torch.Tensor]


@torch.no_grad()
def collect_probe_data(
    network: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor, Sequence[Any], dict[str, Any]]]
) -> ProbeData:
    """The skip's raw inputs and the targets over ``batches`` (``(image, target, args, kwargs)`` per training batch,
    as a MONAI ``prepare_batch`` returns them), concatenated on the CPU: ``energy``/``values``/``present`` as the
    network has them, and ``target``."""
    parts: dict[str, list[torch.Tensor]] = {}
    for image, target, args, kwargs in batches:
        for key, value in probe_features(network, image, *args, **kwargs).items():
            parts.setdefault(key, []).append(value.float().cpu())
        parts.setdefault("target", []).append(target.float().reshape(-1).cpu())
    if not parts:
        raise ValueError("linear probe start: no training batches")
    return {k: torch.cat(v) for k, v in parts.items()}


@torch.no_grad()
def fit_linear_skip(network: nn.Module, data: ProbeData, freeze_texture: bool = False) -> dict[str, Any]:
    """Fit ``network.skip`` by ridge regression on :func:`collect_probe_data` output and zero the head's last layer
    (see the module doc).

    Args:
        network: an ``XAttnBMD`` built with ``linear_skip=True`` (``target_mean``/``target_std`` already set).
        data: the training studies' skip inputs and targets.
        freeze_texture: keep the texture filters and their standardisation as fitted (no gradient to the filters,
            running statistics also in training), so the skip's weights keep meaning the same features.

    Returns:
        ``{"n", "features", "alpha", "gcv_mse", "train_r2"}`` (on the standardised target).

    Raises:
        ValueError: when the network has no linear skip, or fewer studies than two.
    """
    skip = getattr(network, "skip", None)
    if skip is None:
        raise ValueError("linear probe start needs XAttnBMD(linear_skip=True)")
    y = (data["target"] - network.target_mean.cpu()) / network.target_std.cpu()
    if y.numel() < 2:
        raise ValueError(f"linear probe start needs at least 2 training studies, got {y.numel()}")
    cols = []
    if "energy" in data:
        energy = data["energy"]
        mean, var = energy.mean(0), energy.var(0, unbiased=False)
        network.texture.running_mean.copy_(mean)
        network.texture.running_var.copy_(var)
        if freeze_texture:
            fix_texture(network)
        cols.append((energy - mean) / torch.sqrt(var + 1e-5))  # what the texture token's batch norm gives in eval
    if "values" in data:
        cols += [data["values"], data["present"]]
    x = torch.cat(cols, dim=1)
    coef, alpha, gcv = gcv_ridge(x, y)
    skip.weight.copy_(coef[:-1].reshape(skip.weight.shape).to(skip.weight))
    skip.bias.fill_(float(coef[-1]))
    last = _last_linear(network.head)
    last.weight.zero_()
    if last.bias is not None:
        last.bias.zero_()
    fitted = x.double() @ coef[:-1] + coef[-1]
    r2 = 1.0 - float(((y - fitted) ** 2).mean() / y.double().var(unbiased=False).clamp_min(1e-12))
    summary = {"n": int(y.numel()), "features": int(x.shape[1]), "alpha": alpha, "gcv_mse": gcv, "train_r2": r2}
    logger.info("linear probe start of the skip: %s", summary)
    return summary
