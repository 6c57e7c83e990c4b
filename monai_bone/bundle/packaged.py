"""The two bundles shipped with monai-bone, found in an installed wheel or in a source checkout.

The repository's ``bundles/`` folder is the source of truth. Building a wheel copies each bundle's ``configs/``,
``docs/``, ``LICENSE`` and ``large_files.yml`` (never ``models/`` or outputs) into the package as
``monai_bone/bundle/shipped/<name>/`` (the ``build_py`` hook in ``setup.py``); an editable install or a checkout on
``PYTHONPATH`` finds ``<repo>/bundles/<name>`` instead. The packaged copy is read-only in spirit: training writes
``models/`` into the bundle folder, so :func:`copy_packaged_bundle` (``monai-bone bundle copy TASK DIR``) gives you
your own copy to train or edit.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

__all__ = ["BUNDLE_NAMES", "BUNDLE_FILES", "copy_bundle_files", "copy_packaged_bundle", "packaged_bundle_dir"]

#: Bundle folder name per task.
BUNDLE_NAMES: dict[str, str] = {"hip": "hip_bmd_xattn", "knee": "knee_osteoporosis_hybrid_attention"}
#: What a bundle folder holds before training (copied into the wheel and by ``bundle copy``).
BUNDLE_FILES: tuple[str, ...] = ("configs", "docs", "LICENSE", "large_files.yml")

_PACKAGED = Path(__file__).resolve().parent / "shipped"
_SOURCE = Path(__file__).resolve().parents[2] / "bundles"


def _bundle_name(task: str) -> str:
    if task in BUNDLE_NAMES:
        return BUNDLE_NAMES[task]
    if task in BUNDLE_NAMES.values():
        return task
    raise ValueError(
        f"task must be one of {sorted(BUNDLE_NAMES)} (or a bundle name {sorted(BUNDLE_NAMES.values())}), got {task!r}"
    )


def packaged_bundle_dir(task: str) -> Path:
    """The shipped bundle of ``task``: inside the installed package, else in the source tree.

    Args:
        task: ``"hip"``/``"knee"`` or the bundle name (``hip_bmd_xattn``).

    Raises:
        ValueError: unknown task.
        FileNotFoundError: neither location holds the bundle's ``configs/train.json``.
    """
    name = _bundle_name(task)
    for root in (_PACKAGED / name, _SOURCE / name):
        if (root / "configs" / "train.json").is_file():
            return root
    raise FileNotFoundError(
        f"bundle {name} not found in the package ({_PACKAGED / name}) or a source tree ({_SOURCE / name}); "
        "reinstall monai-bone or pass the bundle folder with --bundle"
    )


def copy_bundle_files(src: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Copy a bundle's configs, docs, licence and ``large_files.yml`` (never weights or outputs) into a new folder.

    Raises:
        FileExistsError: ``dest`` exists and is not empty.
    """
    src, dest = Path(src), Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise FileExistsError(f"{dest}: exists and is not empty; choose a new folder")
    dest.mkdir(parents=True, exist_ok=True)
    for name in BUNDLE_FILES:
        p = src / name
        if p.is_dir():
            shutil.copytree(p, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif p.is_file():
            shutil.copy2(p, dest / name)
    (dest / "models").mkdir(exist_ok=True)
    return dest


def copy_packaged_bundle(task: str, dest: str | os.PathLike) -> Path:
    """Copy the shipped bundle of ``task`` into ``dest`` (a new or empty folder) to train, edit or run it.

    Returns:
        ``dest``, holding ``configs/``, ``docs/``, ``LICENSE`` and an empty ``models/``.
    """
    return copy_bundle_files(packaged_bundle_dir(task), dest)
