"""The bundles' ``pretrained`` config ids turned into a local weights file, once, before any data are read.

``train.json`` evaluates ``pretrained_weights`` in its ``initialize`` step (``ConfigWorkflow.initialize`` runs before
the datasets are built) and passes the resulting local file to ``network_def``: an offline machine without the
weights stops there with :class:`~monai_bone.networks.PretrainedWeightsError`, naming the file and where to put it,
instead of after minutes of caching images, and never falls back to random initialisation silently.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from .nets.foundation import fetch_rad_dino
from .pretrained import resolve_pretrained, resolve_pretrained_setting

__all__ = ["bundle_pretrained"]

logger = logging.getLogger(__name__)


def bundle_pretrained(
    pretrained: Any,
    backbone: str | None,
    pretrained_path: str | os.PathLike | None = None,
    registry: Mapping[str, Any] | None = None,
) -> str | None:
    """Resolve a bundle's ``pretrained`` / ``pretrained_path`` ids for ``backbone``.

    Args:
        pretrained: None, ``"imagenet"``, ``"rad-dino"`` or a local file / folder.
        backbone: ``"resnet34"``, ``"densenet169"`` or ``"rad-dino"`` (the network's image encoder); None for a
            network without one (``XAttnBMD(fusion="clinical")``, e.g. the clinical-only row of ``monai-bone cv``):
            nothing is fetched and None is returned.
        pretrained_path: a local torchvision file; wins over ``pretrained`` when set.
        registry: ``pretrained_registry`` overrides (hospital mirror).

    Returns:
        The local weights file (or RAD-DINO checkpoint folder) as text, or None for random initialisation.

    Raises:
        PretrainedWeightsError: when the weights are neither cached nor downloadable (or fail their checksum).
        ValueError: for a setting that does not fit the backbone (``"imagenet"`` with RAD-DINO).
    """
    setting = resolve_pretrained_setting(pretrained_path if pretrained_path not in (None, "") else pretrained)
    if backbone is None:
        if setting is not None:
            logger.info("no image encoder in this network: pretrained=%r not used", setting)
        return None
    if setting is None:
        logger.info("%s: random initialisation (pretrained is null)", backbone)
        return None
    if backbone == "rad-dino":
        if setting.lower() == "imagenet":
            raise ValueError(
                "image_encoder 'rad-dino' has no ImageNet weights: set pretrained to 'rad-dino' (microsoft/rad-dino), "
                "a local RAD-DINO checkpoint folder, or null"
            )
        return str(fetch_rad_dino(setting))
    path = resolve_pretrained(setting, backbone, registry)
    return None if path is None else str(path)
