"""The names that moved out of monai_bone.engines still resolve there (deprecated aliases for 0.1 bundle configs)."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest

import monai_bone.engines as engines

MOVED = sorted(engines._MOVED_TO)
BUNDLES = Path(__file__).resolve().parents[2] / "bundles"


@pytest.mark.parametrize("name", MOVED)
def test_old_engines_name_warns_and_returns_the_moved_object(name):
    new = getattr(importlib.import_module(engines._MOVED_TO[name]), name)
    with pytest.warns(DeprecationWarning, match=rf"monai_bone\.engines\.{name} moved to .*the old path goes in 0\.3"):
        old = getattr(engines, name)
    assert old is new


def test_unknown_engines_name_is_still_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_name"):
        engines.no_such_name  # noqa: B018


def test_shipped_bundle_configs_use_the_new_homes():
    used = set()
    for path in BUNDLES.glob("*/configs/*.json"):
        used |= set(re.findall(r"monai_bone\.engines\.(\w+)", json.dumps(json.loads(path.read_text()))))
    assert used, "no monai_bone.engines names found in the bundle configs: wrong folder?"
    assert not used & set(MOVED), f"bundle configs still use deprecated paths: {sorted(used & set(MOVED))}"


def test_new_homes_export_the_config_names():
    import monai_bone.data as data
    import monai_bone.transforms as transforms

    checked = 0
    for name, module in engines._MOVED_TO.items():
        if name == "IMAGE_SUFFIXES" or not module.startswith(("monai_bone.data", "monai_bone.transforms")):
            continue  # the handlers' names are checked by tests/handlers
        package = data if module.startswith("monai_bone.data") else transforms
        assert getattr(package, name) is getattr(importlib.import_module(module), name)
        checked += 1
    assert checked == 17
