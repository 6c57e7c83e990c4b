"""The bundle workflows of a long-running process close the TensorBoard writers their configs open."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from monai.bundle import ConfigParser

from monai_bone.bundle.workflow import bundle_workflow, close_summary_writers


def _writer_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.is_alive() and "Writer" in type(t).__name__)


def test_close_summary_writers_closes_each_handler_once(tmp_path: Path) -> None:
    config = {
        "a": {"_target_": "TensorBoardStatsHandler", "log_dir": str(tmp_path / "a")},
        "b": {"_target_": "TensorBoardStatsHandler", "log_dir": str(tmp_path / "b")},
        "same": "@a",
        "other": {"_target_": "StatsHandler"},
    }
    parser = ConfigParser(config)
    handlers = [parser.get_parsed_content(k) for k in ("a", "b", "same", "other")]
    before = _writer_threads()
    assert close_summary_writers(parser) == 2
    assert all(h._writer.file_writer is None for h in handlers[:2])  # torch's SummaryWriter.close() drops it
    assert _writer_threads() == before - 2
    assert close_summary_writers(ConfigParser({})) == 0


def test_bundle_workflow_finalize_closes_the_writers_even_after_a_failed_run(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    (bundle / "configs").mkdir(parents=True)
    (bundle / "configs" / "metadata.json").write_text(json.dumps({"version": "0.1.0"}))
    train = {
        "writer": {"_target_": "TensorBoardStatsHandler", "log_dir": "$@bundle_root + '/runs'"},
        "initialize": ["$@writer"],
        "run": ["$int('not a number')"],
        "finalize": [],
    }
    (bundle / "configs" / "train.json").write_text(json.dumps(train))
    wf = bundle_workflow(bundle, ("train.json",), "train")
    before = _writer_threads()
    try:
        wf.initialize()
        assert _writer_threads() == before + 1
        with pytest.raises(RuntimeError, match="not a number"):  # MONAI wraps the expression's ValueError
            wf.run()
    finally:
        wf.finalize()
    assert _writer_threads() == before
    assert (bundle / "runs").is_dir()
