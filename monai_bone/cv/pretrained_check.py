"""Before any CV fit: the initial weights every network row starts from are at hand (cached or downloadable).

The bundles default to ImageNet weights (``pretrained: "imagenet"``). Offline, without the file in the torch.hub
cache, a bundle run stops before reading data with one line naming the cache path and ``--pretrained null``
(:mod:`monai_bone.bundle.errors`); :func:`check_pretrained` gives ``monai-bone cv`` the same early stop, instead of a
traceback after the baselines have run.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from monai.bundle import ConfigParser

__all__ = ["WEIGHT_KEYS", "check_pretrained"]

#: Overrides that decide which initial weights a row's network loads.
WEIGHT_KEYS: tuple[str, ...] = (
    "fusion",
    "image_encoder",
    "image_encoder_config",
    "pretrained",
    "pretrained_path",
    "pretrained_registry",
)


def check_pretrained(bundle: str | Path, row_overrides: Iterable[Mapping[str, Any]]) -> None:
    """Resolve the bundle's ``pretrained_weights`` under each row's overrides (downloads into the cache if needed).

    Args:
        bundle: bundle folder.
        row_overrides: each network row's bundle overrides (rows with equal weight settings are checked once).

    Raises:
        RuntimeError: MONAI's wrapper around :class:`~monai_bone.networks.PretrainedWeightsError` (the weights are
            neither cached nor downloadable; :func:`monai_bone.bundle.errors.format_argument_error` gives its line).
        FileNotFoundError: a ``pretrained`` / ``pretrained_path`` file that does not exist.
    """
    seen: set[str] = set()
    for ov in row_overrides:
        chosen = {k: ov[k] for k in WEIGHT_KEYS if k in ov}
        key = json.dumps(chosen, sort_keys=True, default=str)
        if key in seen:
            continue
        seen.add(key)
        parser = ConfigParser()
        parser.read_config(str(Path(bundle) / "configs" / "train.json"))
        if "pretrained_weights" not in parser:
            continue
        for k, v in chosen.items():
            parser[k] = v
        parser.get_parsed_content("imports")
        parser.get_parsed_content("pretrained_weights")
