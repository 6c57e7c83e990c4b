"""Naming and locating the bundles shipped with monai-bone, in an installed wheel or in a source checkout.

The repository's ``bundles/`` folder is the source of truth. ``pyproject.toml`` ships it inside wheels and sdists as
the package data of ``monai_bone.bundle.shipped`` (``[tool.setuptools.package-dir]``): each bundle's ``configs/``,
``docs/``, ``LICENSE`` and ``large_files.yml``, never ``models/`` or run outputs. An editable install or a checkout on
``PYTHONPATH`` finds ``<repo>/bundles/<name>`` instead. The packaged copy is read-only in spirit: training writes
``models/`` into the bundle folder, so :func:`copy_packaged_bundle` (``monai-bone bundle copy TASK DIR``) gives you
your own copy to train or edit. Bundle names come from the task registry (``monai_bone.tasks.TaskSpec.bundle_name``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path

from monai_bone.tasks import REGISTRY, get_task, task_for_bundle

__all__ = [
    "BUNDLE_FILES",
    "BUNDLE_NAMES",
    "bundle_name",
    "copy_bundle_files",
    "copy_packaged_bundle",
    "default_bundle_dir",
    "packaged_bundle_dir",
]

#: What a bundle folder holds before training (shipped in the wheel, see ``pyproject.toml``, and copied by
#: ``bundle copy``).
BUNDLE_FILES: tuple[str, ...] = ("configs", "docs", "LICENSE", "large_files.yml")

_PACKAGED = Path(__file__).resolve().parent / "shipped"
_SOURCE = Path(__file__).resolve().parents[2] / "bundles"


class _BundleNames(Mapping):
    """Task name -> bundle folder name, a live read-only view of the task registry."""

    def __getitem__(self, task: str) -> str:
        if task not in REGISTRY:
            raise KeyError(task)
        return REGISTRY[task].bundle_name

    def __iter__(self) -> Iterator[str]:
        return iter(list(REGISTRY))

    def __len__(self) -> int:
        return len(REGISTRY)

    def __repr__(self) -> str:
        return repr(dict(self))


#: Task name -> bundle folder name (``{"hip": "hip_bmd_xattn", ...}``), read from :mod:`monai_bone.tasks`.
BUNDLE_NAMES: Mapping[str, str] = _BundleNames()


def bundle_name(task: str) -> str:
    """The bundle folder name of ``task``; a bundle name passes through.

    Raises:
        ValueError: neither a registered task nor a registered bundle name.
    """
    if task in REGISTRY:
        return get_task(task).bundle_name
    try:
        return task_for_bundle(task).bundle_name
    except ValueError:
        raise ValueError(
            f"task must be one of {sorted(BUNDLE_NAMES)} (or a bundle name {sorted(BUNDLE_NAMES.values())}), "
            f"got {task!r}"
        ) from None


def packaged_bundle_dir(task: str) -> Path:
    """The shipped bundle of ``task``: inside the installed package, else in the source tree.

    Args:
        task: a task name (``"hip"``) or its bundle name (``hip_bmd_xattn``).

    Raises:
        ValueError: unknown task.
        FileNotFoundError: neither location holds the bundle's ``configs/train.json``.
    """
    name = bundle_name(task)
    for root in (_PACKAGED / name, _SOURCE / name):
        if (root / "configs" / "train.json").is_file():
            return root
    raise FileNotFoundError(
        f"bundle {name} not found in the package ({_PACKAGED / name}) or a source tree ({_SOURCE / name}); "
        "reinstall monai-bone or pass the bundle folder with --bundle"
    )


def default_bundle_dir(task: str) -> Path:
    """The bundle of task ``task`` shipped with monai-bone (:func:`packaged_bundle_dir` for task names only).

    Raises:
        ValueError: for an unknown task (a bundle name is not accepted here).
        FileNotFoundError: when neither location holds the bundle.
    """
    if task not in REGISTRY:
        raise ValueError(f"task must be one of {sorted(REGISTRY)}, got {task!r}")
    return packaged_bundle_dir(task)


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
