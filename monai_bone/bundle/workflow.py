"""Running the bundles' own workflows from Python: one source of truth for training, evaluation and inference.

Cross-validation and the demo never copy a training loop: they build ``monai.bundle.ConfigWorkflow`` from the
bundle's ``configs/*.json`` with ID overrides (validation fold, fusion, epochs, image size, output folders) and run it.
The only addition is :class:`PredictionCollector`, an Ignite handler attached to the bundle's validation evaluator
that keeps the per-study predictions of its last run (the out-of-fold predictions of a CV fold).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "PredictionCollector",
    "bundle_workflow",
    "close_summary_writers",
    "no_checkpoint_overrides",
    "quiet_engines",
    "train_and_predict",
]

logger = logging.getLogger(__name__)


#: Loggers whose per-iteration INFO lines drown a progress bar over many short training runs.
_CHATTY = (
    "ignite.engine.engine.SupervisedTrainer",
    "ignite.engine.engine.SupervisedEvaluator",
    "monai.bundle",
    "monai.apps",
    "monai.handlers",
    "monai.handlers.StatsHandler",
    "monai_bone.engines",
    "monai_bone.handlers",
    "monai_bone.transforms",
)


@contextlib.contextmanager
def quiet_engines(enabled: bool = True) -> Iterator[None]:
    """Raise the per-iteration engine loggers to WARNING while many short workflows run under one progress bar.

    Args:
        enabled: when False the context does nothing (``--verbose`` runs keep every line).
    """
    if not enabled:
        yield
        return
    saved = {name: logging.getLogger(name).level for name in _CHATTY}
    for name in _CHATTY:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*StatsHandler may not (generate|output) logs.*")
            yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def close_summary_writers(parser: Any) -> int:
    """Close the TensorBoard writers that a parsed bundle config created.

    MONAI's ``TensorBoardStatsHandler`` opens a ``SummaryWriter`` (an event file and a writer thread) and never closes
    it; a process that runs many workflows (cross-validation, the demo, a test session) would keep all of them.

    Args:
        parser: the workflow's ``ConfigParser``.

    Returns:
        How many writers were closed.
    """
    from monai.handlers.tensorboard_handlers import TensorBoardHandler

    resolved = getattr(getattr(parser, "ref_resolver", None), "resolved_content", {}) or {}
    handlers = {id(h): h for h in resolved.values() if isinstance(h, TensorBoardHandler)}
    for handler in handlers.values():
        handler.close()
    return len(handlers)


@functools.lru_cache(maxsize=1)
def _workflow_class() -> type:
    from monai.bundle import ConfigWorkflow

    class BundleWorkflow(ConfigWorkflow):
        """``ConfigWorkflow`` whose ``finalize`` also closes the TensorBoard writers of the config."""

        def finalize(self) -> Any:
            try:
                return super().finalize()
            finally:
                close_summary_writers(self.parser)

    return BundleWorkflow


def bundle_workflow(
    bundle_dir: str | os.PathLike,
    configs: Sequence[str] = ("train.json",),
    workflow_type: str = "train",
    **overrides: Any,
) -> Any:
    """A ``ConfigWorkflow`` of the bundle with ``bundle_root`` set to the bundle folder and ID overrides applied.

    Args:
        bundle_dir: the bundle folder.
        configs: config file names under ``configs/``, later files overriding earlier ones (MONAI convention, e.g.
            ``("train.json", "evaluate.json")``).
        workflow_type: ``"train"`` or ``"infer"`` (property check set of ``ConfigWorkflow``).
        overrides: config ID → value (``val_fold=1``, ``epochs=2``, ``"loss": {...}``).

    Returns:
        The (not yet initialised) ``monai.bundle.ConfigWorkflow``; its ``finalize()`` also closes the TensorBoard
        writers of the config (:func:`close_summary_writers`), so callers finalize it in a ``finally``.

    Raises:
        FileNotFoundError: when a config file is missing.
    """
    root = Path(bundle_dir).resolve()
    files = [root / "configs" / c for c in configs]
    for f in files:
        if not f.is_file():
            raise FileNotFoundError(f"{f}: bundle config not found")
    overrides = {"bundle_root": str(root), **overrides}
    # logging stays as the caller configured it (the bundle's logging.conf would reset the root logger); MONAI warns
    # about that choice on every construction, so its workflow logger is muted for this call only
    wf_logger = logging.getLogger("monai.bundle.workflows")
    level = wf_logger.level
    wf_logger.setLevel(logging.ERROR)
    try:
        return _workflow_class()(
            config_file=[str(f) for f in files] if len(files) > 1 else str(files[0]),
            meta_file=str(root / "configs" / "metadata.json"),
            logging_file=False,
            workflow_type=workflow_type,
            **overrides,
        )
    finally:
        wf_logger.setLevel(level)


def _np(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=float).reshape(-1)


class PredictionCollector:
    """Keep the per-study predictions of an evaluator's most recent run.

    Attach it to a ``SupervisedEvaluator`` after construction, so it runs after the evaluator's postprocessing (the
    decollated ``engine.state.output`` items then hold the final ``pred`` and ``label``).

    Args:
        pred_key: output key of the prediction.
        label_key: output key of the reference.
        id_key: batch key of the study identifier.
    """

    def __init__(self, pred_key: str = "pred", label_key: str = "label", id_key: str = "patient_id") -> None:
        self.pred_key, self.label_key, self.id_key = pred_key, label_key, id_key
        self.preds: list[np.ndarray] = []
        self.labels: list[np.ndarray] = []
        self.ids: list[str] = []

    def attach(self, engine: Any) -> None:
        """Register on ``EPOCH_STARTED`` (reset) and ``ITERATION_COMPLETED`` (collect)."""
        from ignite.engine import Events

        engine.add_event_handler(Events.EPOCH_STARTED, self.reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def reset(self, _engine: Any = None) -> None:
        """Forget the predictions of an earlier run."""
        self.preds, self.labels, self.ids = [], [], []

    def __call__(self, engine: Any) -> None:
        output, batch = engine.state.output, engine.state.batch
        if isinstance(output, Mapping):  # not decollated: split the batch dimension here
            n = len(output[self.pred_key])
            output = [{k: v[i] for k, v in output.items() if hasattr(v, "__len__") and len(v) == n} for i in range(n)]
            batch = [{k: v[i] for k, v in batch.items() if hasattr(v, "__len__") and len(v) == n} for i in range(n)]
        for i, item in enumerate(output):
            self.preds.append(_np(item[self.pred_key]))
            self.labels.append(_np(item[self.label_key]))
            b = batch[i] if isinstance(batch, Sequence) and i < len(batch) else {}
            self.ids.append(str(b.get(self.id_key, "")) if isinstance(b, Mapping) else "")

    def arrays(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """``(pred, label, ids)``: predictions ``(N,)`` or ``(N, C)``, references ``(N,)``, identifiers."""
        if not self.preds:
            raise RuntimeError("the evaluator produced no predictions (empty validation fold?)")
        pred = np.stack(self.preds)
        pred = pred[:, 0] if pred.shape[1] == 1 else pred
        label = np.stack(self.labels)
        label = label[:, 0] if label.shape[1] == 1 else np.argmax(label, axis=1).astype(float)
        return pred, label, list(self.ids)


def no_checkpoint_overrides(bundle_dir: str | os.PathLike, keep_best: bool = False) -> dict[str, Any]:
    """Overrides that stop the ``CheckpointSaver`` objects of ``train.json`` from writing (those that exist).

    Uses the savers' own settings, so nothing of the config is copied: ``train#checkpoint_saver#save_interval = 0``
    (no per-epoch training state for resuming, ~300 MB for the hip network with AdamW) and, unless ``keep_best``,
    ``validate#checkpoint_saver#save_key_metric = False`` (no best ``model.pt``).

    Args:
        bundle_dir: bundle folder.
        keep_best: keep writing the best-metric ``models/model.pt``.

    Returns:
        Config ID → value.
    """
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(Path(bundle_dir) / "configs" / "train.json"))
    wanted = [("train", "save_interval", 0)] + ([] if keep_best else [("validate", "save_key_metric", False)])
    out: dict[str, Any] = {}
    for sec, key, value in wanted:
        saver = f"{sec}#checkpoint_saver"
        if saver in parser and "CheckpointSaver" in str(parser[saver].get("_target_", "")):
            out[f"{saver}#{key}"] = value
    return out


def train_and_predict(
    bundle_dir: str | os.PathLike,
    datalist: str | os.PathLike,
    val_folds: Sequence[int],
    run_dir: str | os.PathLike,
    overrides: Mapping[str, Any] | None = None,
    save_checkpoints: bool = False,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Train the bundle's ``train.json`` on all folds but ``val_folds`` and predict the held-out studies.

    Validation runs once, after the last epoch (``val_interval = epochs``), so the out-of-fold predictions come from
    the final network and no model selection ever looks at the held-out fold.

    Args:
        bundle_dir: bundle folder.
        datalist: datalist JSON with a ``fold`` per record.
        val_folds: datalist fold numbers held out.
        run_dir: folder of this run (checkpoints, TensorBoard logs, cache); the bundle folder is never written.
        overrides: further config ID overrides (``fusion``, ``epochs``, ``spatial_size``, ``loss``, ...).
        save_checkpoints: keep the bundle's checkpoint writing (per-epoch training state and best ``model.pt``);
            off by default, through the savers' own settings (``save_interval=0``, ``save_key_metric=False``), since
            a CV fit only needs its predictions and each checkpoint of a ResNet34 with AdamW state is ~300 MB.

    Returns:
        ``(pred, label, ids)`` of the held-out studies: the raw network output after the bundle's postprocessing.
    """
    run = Path(run_dir).resolve()
    ov = dict(overrides or {})
    params = {
        "datalist": str(Path(datalist).resolve()),
        "val_fold": list(val_folds) if len(val_folds) > 1 else int(val_folds[0]),
        "ckpt_dir": str(run / "models"),
        "output_dir": str(run / "eval"),
        "log_dir": str(run / "runs"),
        "cache_dir": str(run / "cache"),
        "resume": False,
        "val_interval": "@epochs",
        **ov,
    }
    if not save_checkpoints:
        params.update(no_checkpoint_overrides(bundle_dir))
    wf = bundle_workflow(bundle_dir, ("train.json",), "train", **params)
    try:
        wf.initialize()
        collector = PredictionCollector()
        collector.attach(wf.parser.get_parsed_content("validate#evaluator"))
        wf.run()
        return collector.arrays()
    finally:
        with contextlib.suppress(Exception):
            wf.finalize()
        del wf
        gc.collect()
