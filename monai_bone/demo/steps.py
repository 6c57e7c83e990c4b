"""The demo's steps: its output folder, trained copies of the bundles, step progress, and each bundle's
``train.json`` / ``evaluate.json`` / ``inference.json`` run through ``monai.bundle.ConfigWorkflow``."""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ignite.engine import Events
from tqdm import tqdm

from monai_bone.bundle import bundle_workflow, no_checkpoint_overrides, quiet_engines

__all__ = [
    "THRESHOLD_REFERENCE",
    "THRESHOLD_REFERENCE_PART",
    "Steps",
    "copy_bundle",
    "evaluate_bundle",
    "infer_bundle",
    "prepare_out_dir",
    "train_bundle",
]

logger = logging.getLogger(__name__)

_OUR_DIRS = ("data", "bundles", "hip", "knee")
_OUR_FILES = ("report.md", "summary.json")


def prepare_out_dir(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: exists and is not a folder")
    if out.is_dir():
        ours = [p for p in out.iterdir() if p.name in _OUR_DIRS or p.name in _OUR_FILES]
        others = [p for p in out.iterdir() if p not in ours]
        if others and not ours and not overwrite:
            raise ValueError(f"{out}: not empty and not a demo folder; choose another --out")
        if ours and not overwrite:
            raise ValueError(f"{out}: holds an earlier demo; pass --overwrite to replace it")
        for p in ours:
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    out.mkdir(parents=True, exist_ok=True)


def copy_bundle(src: Path, dst: Path) -> Path:
    """Copy configs, docs and licence (never models or outputs) so training writes into the demo folder."""
    dst.mkdir(parents=True)
    shutil.copytree(src / "configs", dst / "configs")
    if (src / "docs").is_dir():
        shutil.copytree(src / "docs", dst / "docs")
    for name in ("LICENSE", "large_files.yml"):
        if (src / name).is_file():
            shutil.copy2(src / name, dst / name)
    (dst / "models").mkdir()
    return dst


class Steps:
    """Step-level progress: a tqdm bar over the pipeline steps plus timings."""

    def __init__(self, names: list[str], progress: bool) -> None:
        self.bar = tqdm(total=len(names), desc="demo (SYNTHETIC)", unit="step", disable=not progress)
        self.times: dict[str, float] = {}
        self._t0 = time.perf_counter()

    def start(self, name: str) -> None:
        self.current, self._t = name, time.perf_counter()
        self.bar.set_postfix_str(name)
        logger.info("demo: %s", name)

    def note(self, text: str) -> None:
        self.bar.set_postfix_str(f"{self.current}: {text}")

    def done(self) -> None:
        self.times[self.current] = round(time.perf_counter() - self._t, 1)
        self.bar.update(1)

    def close(self) -> float:
        self.bar.close()
        return round(time.perf_counter() - self._t0, 1)


def train_bundle(bundle: Path, task: str, ov: Mapping[str, Any], steps: Steps, quiet: bool) -> None:
    # the per-epoch resume state (~300 MB for the hip network) is not needed by a demo; the best model.pt is
    params = {**ov, "resume": False, **no_checkpoint_overrides(bundle, keep_best=True)}
    with quiet_engines(quiet):
        wf = bundle_workflow(bundle, ("train.json",), "train", **params)
        try:
            wf.initialize()
            trainer = wf.parser.get_parsed_content("train#trainer")
            trainer.add_event_handler(
                Events.EPOCH_COMPLETED, lambda e: steps.note(f"epoch {e.state.epoch}/{e.state.max_epochs}")
            )
            wf.run()
        finally:
            wf.finalize()
    if not (bundle / "models" / "model.pt").is_file():
        raise RuntimeError(f"{bundle}: training finished without writing models/model.pt")


#: Sub-folder of an evaluation holding the report whose predictions chose its operating-point thresholds.
THRESHOLD_REFERENCE: str = "threshold_reference"


#: The part whose predictions choose the operating-point thresholds: the training folds. Never the validation fold (the
#: checkpoint was selected on it, and it is the scored part of a datalist without a test split) nor the test split.
#: These are in-sample predictions, so a cut chosen there can be off on new data; it is never chosen where it is scored.
THRESHOLD_REFERENCE_PART: str = "train"


def _evaluate(bundle: Path, ov: Mapping[str, Any], out: Path, quiet: bool) -> dict[str, Any]:
    with quiet_engines(quiet):
        wf = bundle_workflow(bundle, ("train.json", "evaluate.json"), "train", **ov, output_dir=str(out))
        try:
            wf.initialize()
            wf.run()
        finally:
            wf.finalize()
    return json.loads((out / "metrics.json").read_text(encoding="utf-8"))


def evaluate_bundle(bundle: Path, ov: Mapping[str, Any], out: Path, quiet: bool) -> dict[str, Any]:
    """evaluate.json on its default part, with operating-point thresholds chosen on the training folds.

    The trained model first predicts its training folds (:data:`THRESHOLD_REFERENCE_PART`; a report in
    ``out/threshold_reference/``); that ``predictions.csv`` is then evaluate.json's ``threshold_predictions``, so the
    Youden / 90 %-sensitivity cuts applied to the scored split (test, else the validation fold) never looked at it.
    """
    reference = out / THRESHOLD_REFERENCE
    _evaluate(bundle, {**ov, "eval_part": THRESHOLD_REFERENCE_PART}, reference, quiet)
    return _evaluate(bundle, {**ov, "threshold_predictions": str(reference / "predictions.csv")}, out, quiet)


def infer_bundle(
    bundle: Path, ov: Mapping[str, Any], src: Path, out: Path, clinical: Path | None, quiet: bool
) -> list[dict]:
    params = {k: v for k, v in ov.items() if k in ("spatial_size", "batch_size", "num_workers", "device")}
    params.update({"input": str(src), "output_dir": str(out)})
    if clinical is not None:
        params["clinical_csv"] = str(clinical)
    with quiet_engines(quiet):
        wf = bundle_workflow(bundle, ("inference.json",), "infer", **params)
        wf.initialize()
        wf.run()
        wf.finalize()
    written = json.loads((out / "predictions.json").read_text(encoding="utf-8"))
    return list(written.get("predictions", []))
