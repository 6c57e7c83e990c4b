"""A copy of a bundle with freshly initialised weights, to check serving and export plumbing before training ends."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from monai_bone.bundle.metadata import pin_settings
from monai_bone.bundle.packaged import copy_bundle_files

__all__ = ["untrained_copy"]


def untrained_copy(
    bundle_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    clinical_records: Iterable[Mapping[str, Any]] | None = None,
    seed: int = 0,
) -> Path:
    """A copy of a bundle with freshly initialised weights: checks serving and export plumbing before training ends.

    Its predictions are meaningless (random weights); only configs, docs and licence are copied, and
    ``models/model.pt`` holds the state dict of the inference config's ``network_def`` built after
    ``torch.manual_seed(seed)``. ``models/clinical_stats.json`` is fitted on ``clinical_records`` when given (the hip
    bundle needs it).

    Args:
        bundle_dir: source bundle folder (configs/, docs/, LICENSE).
        out_dir: new bundle folder (must not exist).
        clinical_records: datalist records to fit the clinical statistics on.
        seed: torch seed of the initialisation (same seed, same weights).

    Returns:
        The new bundle folder.

    Raises:
        FileExistsError: when ``out_dir`` exists.
    """
    from monai.bundle import ConfigParser

    from monai_bone.handlers import atomic_torch_save  # costly (MONAI, Ignite): export and import need torch only

    src, out = Path(bundle_dir), Path(out_dir)
    if out.exists():
        raise FileExistsError(f"{out}: exists")
    copy_bundle_files(src, out)
    pin_settings(out, {"pretrained": None})  # its weights are random, not ImageNet: loading it downloads nothing
    parser = ConfigParser()
    parser.read_config(str(out / "configs" / "inference.json"))
    parser["bundle_root"] = str(out)
    parser.get_parsed_content("imports")
    torch.manual_seed(seed)
    atomic_torch_save(parser.get_parsed_content("network_def").state_dict(), out / "models" / "model.pt")
    if clinical_records is not None:
        from monai_bone.transforms.clinical_fit import fit_clinical_stats  # costly (MONAI transforms), optional

        fit_clinical_stats(list(clinical_records), out / "models" / "clinical_stats.json")
    return out
