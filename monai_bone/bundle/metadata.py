"""Bundle ``metadata.json`` that other sites can act on: installable versions, exact versions, and the real input shape.

Two kinds of versions, kept apart:

- ``monai_version``, ``pytorch_version``, ``numpy_version`` and ``required_packages_version`` (MONAI schema fields,
  which model-zoo CI turns into ``name==version`` pins) name releases that install on every Python monai-bone
  supports (3.10-3.13, checked against the package index by ``tests/bundle/test_metadata.py``);
- ``exact_versions`` (added at export) records Python and the package versions of the environment that exported the
  weights - the training environment when training and export ran in one environment, as in ``monai-bone demo``.

:func:`sync_metadata` rewrites ``network_data_format`` from the inference config (image size and channels, clinical
fields in order, output channels), so a trained copy whose configs changed (e.g. the demo's 96 px) never describes
the source bundle's 224 px.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from monai_bone.utils.io import atomic_write_text

__all__ = [
    "SUPPORTED_PYTHONS",
    "exact_versions",
    "pin_settings",
    "requirement_lines",
    "sync_metadata",
    "with_exact_versions",
]

#: Python versions the package and the bundles' pinned requirements support.
SUPPORTED_PYTHONS: tuple[str, ...] = ("3.10", "3.11", "3.12", "3.13")
_SCHEMA_PINS = {"monai_version": "monai", "pytorch_version": "torch", "numpy_version": "numpy"}
_OPERATOR = re.compile(r"^\s*(==|>=|<=|~=|!=|<|>)")


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def exact_versions(meta: Mapping[str, Any]) -> dict[str, str]:
    """Python and the installed version of every package the metadata names (monai, torch, numpy, required)."""
    names = [*_SCHEMA_PINS.values(), *dict(meta.get("required_packages_version", {}))]
    found = {"python": platform.python_version()}
    for name in names:
        v = _version(name)
        if v is not None:
            found[name] = v
    return found


def with_exact_versions(meta: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``meta`` with ``exact_versions`` set from this environment (see the module docstring)."""
    out = dict(meta)
    out["exact_versions"] = {
        "note": "versions of the environment that exported these weights (monai-bone export); the pins above are "
        "releases that install on Python " + ", ".join(SUPPORTED_PYTHONS),
        **exact_versions(meta),
    }
    return out


def requirement_lines(meta: Mapping[str, Any], skip: tuple[str, ...] = ()) -> list[str]:
    """pip requirement lines for a bundle, as model-zoo CI builds them (``name==version``; a range is kept as is)."""
    pairs = [(dist, meta[key]) for key, dist in _SCHEMA_PINS.items() if key in meta]
    pairs += list(dict(meta.get("required_packages_version", {})).items())
    lines = []
    for name, version in pairs:
        if name in skip:
            continue
        version = str(version)
        lines.append(f"{name}{version}" if _OPERATOR.match(version) else f"{name}=={version}")
    return lines


def _config_values(bundle_dir: Path) -> dict[str, Any]:
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(bundle_dir / "configs" / "inference.json"))
    parser["bundle_root"] = str(bundle_dir)
    values: dict[str, Any] = {}
    if "imports" in parser:
        parser.get_parsed_content("imports")
    for key in ("spatial_size", "in_channels", "clinical_fields", "out_channels"):
        if key in parser:
            values[key] = parser.get_parsed_content(key, instantiate=False)
    return values


def sync_metadata(bundle_dir: str | os.PathLike) -> dict[str, Any]:
    """Make ``configs/metadata.json``'s ``network_data_format`` match ``configs/inference.json`` and write it back.

    Updated: image ``spatial_shape`` and ``num_channels``; the clinical input's ``num_channels`` and ``channel_def``
    (field order of ``clinical_fields``, units kept where the field is already described); the output's
    ``num_channels``. Expressions in the config are evaluated (they only read ``monai_bone.constants``).

    Returns:
        The dict of changed entries (empty when nothing changed; the file is then left untouched).
    """
    root = Path(bundle_dir)
    meta_path = root / "configs" / "metadata.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    values = _config_values(root)
    fmt = meta.setdefault("network_data_format", {})
    image = fmt.get("inputs", {}).get("image", {})
    changed: dict[str, Any] = {}
    if "spatial_size" in values and image:
        size = int(values["spatial_size"])
        if image.get("spatial_shape") != [size, size]:
            image["spatial_shape"] = changed["image.spatial_shape"] = [size, size]
    if "in_channels" in values and image and image.get("num_channels") != int(values["in_channels"]):
        image["num_channels"] = changed["image.num_channels"] = int(values["in_channels"])
    clinical = fmt.get("inputs", {}).get("clinical")
    if clinical is not None and "clinical_fields" in values:
        fields = list(values["clinical_fields"])
        old = {v.split(" ")[0]: v for v in clinical.get("channel_def", {}).values()}
        channel_def = {str(i): old.get(f, f) for i, f in enumerate(fields)}
        if clinical.get("channel_def") != channel_def or clinical.get("num_channels") != len(fields):
            clinical["channel_def"], clinical["num_channels"] = channel_def, len(fields)
            changed["clinical.channel_def"] = channel_def
    pred = fmt.get("outputs", {}).get("pred")
    if pred is not None and "out_channels" in values and pred.get("num_channels") != int(values["out_channels"]):
        pred["num_channels"] = changed["pred.num_channels"] = int(values["out_channels"])
    if changed:
        atomic_write_text(meta_path, json.dumps(meta, indent=4) + "\n")
    return changed


def pin_settings(bundle: str | os.PathLike, values: Mapping[str, Any]) -> None:
    """Write settings a copy was made with into every config of the bundle that defines them.

    A trained or freshly initialised copy then describes itself when run, exported, served or loaded with
    ``monai.bundle.load`` without the overrides it was made with: the demo's input size, and ``pretrained: null`` for
    weights that did not start from ImageNet (so loading its ``train.json`` never tries to download them).
    """
    for path in sorted((Path(bundle) / "configs").glob("*.json")):
        config = json.loads(path.read_text(encoding="utf-8"))
        changed = {k: v for k, v in values.items() if k in config and config[k] != v}
        if changed:
            config.update(changed)
            atomic_write_text(path, json.dumps(config, indent=4) + "\n")
