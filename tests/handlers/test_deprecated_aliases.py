"""Handlers that moved from ``monai_bone.engines`` to ``monai_bone.handlers``: old bundle configs still resolve.

The handler entries below are frozen copies of what the shipped bundle configs said before the move (commit
67e80f2): a bundle trained and copied out then must keep loading for one release, with a ``DeprecationWarning``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
from ignite.engine import Engine
from monai.bundle import ConfigParser

import monai_bone.engines
import monai_bone.handlers
from monai_bone.networks import XAttnBMD

REPO = Path(__file__).resolve().parents[2]
MOVED = (
    "CheckpointFileError",
    "EpochSeedHandler",
    "FieldAttentionHandler",
    "GradCamSaver",
    "ResumableCheckpointSaver",
    "SafeCheckpointLoader",
    "atomic_torch_save",
    "checkpoint_epoch",
    "find_last_checkpoint",
    "load_checkpoint",
    "resume_checkpoint",
)

#: Old-path config entries (pre-move train.json / evaluate.json / inference.json handler items).
OLD_CONFIG = {
    "imports": ["$import monai_bone"],
    "ckpt_dir": None,
    "ckpt_path": None,
    "network": {"_target_": "monai_bone.networks.XAttnBMD", "hidden_size": 32, "num_heads": 4},
    "resume_ckpt": "$monai_bone.engines.resume_checkpoint(@ckpt_dir, resume=True, run_info={'val_fold': 0})",
    "seed_handler": {"_target_": "monai_bone.engines.EpochSeedHandler", "seed": 3},
    "saver": {
        "_target_": "monai_bone.engines.ResumableCheckpointSaver",
        "save_dir": "@ckpt_dir",
        "save_dict": {"model": "@network"},
        "save_interval": 1,
        "n_saved": 1,
    },
    "loader": {
        "_target_": "monai_bone.engines.SafeCheckpointLoader",
        "load_path": "@ckpt_path",
        "load_dict": {"model": "@network"},
        "map_location": "cpu",
    },
    "attention": {"_target_": "monai_bone.engines.FieldAttentionHandler", "network": "@network"},
    "gradcam": {
        "_target_": "monai_bone.engines.GradCamSaver",
        "network": "@network",
        "target_layer": "encoder.layer4",
        "output_dir": "$@ckpt_dir + '/gradcam'",
    },
}


@pytest.mark.parametrize("name", MOVED)
def test_old_engines_name_warns_and_is_the_moved_object(name):
    with pytest.warns(DeprecationWarning, match=f"monai_bone.engines.{name} moved to monai_bone.handlers.{name}"):
        old = getattr(monai_bone.engines, name)
    assert old is getattr(monai_bone.handlers, name)


def test_unknown_engines_name_is_still_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'NoSuchHandler'"):
        monai_bone.engines.NoSuchHandler  # noqa: B018


def test_old_bundle_config_still_resolves_and_runs(tmp_path):
    net = XAttnBMD(hidden_size=32, num_heads=4)
    ckpt = tmp_path / "model.pt"
    torch.save(net.state_dict(), ckpt)
    parser = ConfigParser(json.loads(json.dumps(OLD_CONFIG)))
    parser["ckpt_dir"] = str(tmp_path)
    parser["ckpt_path"] = str(ckpt)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parser.parse()
        parser.get_parsed_content("imports")
        objects = {k: parser.get_parsed_content(k) for k in ("seed_handler", "saver", "loader", "attention", "gradcam")}
        resume = parser.get_parsed_content("resume_ckpt")
    messages = {str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)}
    for name in ("EpochSeedHandler", "ResumableCheckpointSaver", "SafeCheckpointLoader", "GradCamSaver"):
        assert any(m.startswith(f"monai_bone.engines.{name} moved to") for m in messages), name
    assert resume is None  # no checkpoint yet: a fresh run
    assert isinstance(objects["seed_handler"], monai_bone.handlers.EpochSeedHandler)
    assert isinstance(objects["saver"], monai_bone.handlers.ResumableCheckpointSaver)
    assert isinstance(objects["attention"], monai_bone.handlers.FieldAttentionHandler)
    assert isinstance(objects["gradcam"], monai_bone.handlers.GradCamSaver)
    loader = objects["loader"]
    assert isinstance(loader, monai_bone.handlers.SafeCheckpointLoader)
    # the old-path loader really loads the weights into the configured network
    target = parser.get_parsed_content("network")  # freshly initialised: differs from `net` until loaded
    assert any(not torch.equal(target.state_dict()[k], v) for k, v in net.state_dict().items())
    engine = Engine(lambda e, b: None)
    loader(engine)
    for k, v in net.state_dict().items():
        assert torch.equal(target.state_dict()[k], v), k


def test_shipped_configs_use_the_new_paths():
    text = "".join(p.read_text(encoding="utf-8") for p in (REPO / "bundles").glob("*/configs/*.json"))
    for name in MOVED:
        assert f"monai_bone.engines.{name}" not in text, name
    assert "monai_bone.handlers.SafeCheckpointLoader" in text
