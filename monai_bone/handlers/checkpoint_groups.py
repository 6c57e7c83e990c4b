"""Resuming checkpoints whose optimiser had one parameter group into today's backbone/head parameter groups.

Training checkpoints written before :func:`monai_bone.networks.param_groups` existed hold an optimiser state with one
group (``network.parameters()`` in order) and an LR scheduler with one base learning rate. Loading them as they are
fails in ``torch`` (a different number of groups) or, worse, a scheduler with one ``base_lrs`` entry would drive only
the first group. :func:`upgrade_param_groups` rewrites such a checkpoint in memory: each parameter keeps its own
optimiser state (moments, step), each group gets the saved hyperparameters with the learning rates scaled by this
configuration's ratio between the groups (``backbone_lr_multiplier``), and the scheduler gets one entry per group.
Any other mismatch gets one line naming the file and the way out.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, MutableMapping
from typing import Any

import torch

__all__ = ["upgrade_param_groups"]

logger = logging.getLogger(__name__)

_LR_KEYS = ("lr", "initial_lr", "max_lr", "min_lr")


def upgrade_param_groups(load_dict: Mapping[str, Any], checkpoint: MutableMapping[str, Any], path: Any) -> None:
    """Fit one-group optimiser (and LR scheduler) states of ``checkpoint`` to the optimisers of ``load_dict``.

    Args:
        load_dict: the objects to load (``SafeCheckpointLoader``'s ``load_dict``: network, optimizer, lr_scheduler...).
        checkpoint: the loaded checkpoint dictionary; changed in place.
        path: the checkpoint file (for messages).

    Raises:
        ValueError: when the numbers of parameter groups differ in any other way (one line, starting with ``path``).
    """
    for name, opt in load_dict.items():
        saved = checkpoint.get(name)
        if not isinstance(opt, torch.optim.Optimizer) or not isinstance(saved, Mapping) or "param_groups" not in saved:
            continue
        n_saved, n_now = len(saved["param_groups"]), len(opt.param_groups)
        if n_saved == n_now:
            continue
        order = _network_order(load_dict, opt) if n_saved == 1 else None
        if order is None or len(saved["param_groups"][0]["params"]) != len(order):
            groups = ", ".join(str(g.get("name", i)) for i, g in enumerate(opt.param_groups))
            raise ValueError(
                f"{path}: its {name} has {n_saved} parameter group(s), this configuration's has {n_now} ({groups}) "
                "and they cannot be matched; resume with the configuration that wrote it, or start over with "
                "--resume false (or train into another --ckpt_dir)"
            )
        factors = _lr_factors(opt)
        checkpoint[name] = _split_optimizer(saved, opt, order, factors)
        for other, sched in load_dict.items():
            is_own = isinstance(sched, torch.optim.lr_scheduler.LRScheduler) and sched.optimizer is opt
            if is_own and isinstance(checkpoint.get(other), Mapping):
                checkpoint[other] = _split_scheduler(checkpoint[other], factors)
        logger.warning(
            "%s: written when the optimiser had one parameter group; resuming it as %d groups (%s) with learning "
            "rates scaled %s as this configuration sets them",
            path, n_now, ", ".join(str(g.get("name", i)) for i, g in enumerate(opt.param_groups)),
            [round(f, 6) for f in factors],
        )  # fmt: skip


def _network_order(load_dict: Mapping[str, Any], opt: torch.optim.Optimizer) -> dict[int, int] | None:
    """``{id(parameter): index in network.parameters()}`` of the module in ``load_dict`` holding exactly the
    optimiser's parameters (the single group was ``network.parameters()``), or None."""
    wanted = {id(p) for g in opt.param_groups for p in g["params"]}
    for obj in load_dict.values():
        if isinstance(obj, torch.nn.Module):
            params = list(obj.parameters())
            if {id(p) for p in params} == wanted and len(params) == len(wanted):
                return {id(p): i for i, p in enumerate(params)}
    return None


def _lr_factors(opt: torch.optim.Optimizer) -> list[float]:
    """Each group's learning rate relative to the head's (the group named ``head``, else the largest)."""
    lrs = [float(g.get("initial_lr", g["lr"])) for g in opt.param_groups]
    head = [lr for g, lr in zip(opt.param_groups, lrs) if g.get("name") == "head"]
    ref = head[0] if head else max(lrs)
    return [lr / ref if ref > 0 else 1.0 for lr in lrs]


def _split_optimizer(
    saved: Mapping[str, Any], opt: torch.optim.Optimizer, order: dict[int, int], factors: list[float]
) -> dict[str, Any]:
    """The saved one-group state in ``opt``'s group layout (parameter ids numbered as ``opt.state_dict()`` does)."""
    (old,) = saved["param_groups"]
    old_ids = list(old["params"])
    state, groups, k = {}, [], 0
    for group, factor in zip(opt.param_groups, factors):
        ids = []
        for p in group["params"]:
            old_id = old_ids[order[id(p)]]
            if old_id in saved["state"]:
                state[k] = saved["state"][old_id]
            ids.append(k)
            k += 1
        new = {key: v for key, v in old.items() if key not in ("params", "param_names")}
        new.update({key: float(old[key]) * factor for key in _LR_KEYS if key in old})
        if "name" in group:
            new["name"] = group["name"]
        groups.append({**new, "params": ids})
    return {**saved, "state": state, "param_groups": groups}


def _split_scheduler(saved: Mapping[str, Any], factors: list[float]) -> dict[str, Any]:
    """One entry per group in every one-entry list of an LR scheduler state (learning rates scaled)."""
    out = dict(saved)
    for key, value in saved.items():
        if isinstance(value, list) and len(value) == 1:
            scale = key.endswith("lrs") or key == "_last_lr"
            out[key] = [value[0] * f if scale and isinstance(value[0], (int, float)) else value[0] for f in factors]
    return out
