"""Evaluation report writer: per-study CSV, ``metrics.json`` and PNG plots at the end of each evaluation run.

Attach :class:`BoneReportWriter` to a ``monai.engines.SupervisedEvaluator`` (bundle ``evaluate.json`` handlers, or
the validation evaluator of a trainer, where it rewrites the report after every validation run)::

    {"_target_": "monai_bone.handlers.BoneReportWriter", "output_dir": "@output_dir", "task": "hip",
     "synthetic": "@synthetic"}

Rows are collected at every ``ITERATION_COMPLETED`` (after MONAI's decollate, so any batch size and a partial last
batch give exactly one row per study); at ``EPOCH_COMPLETED`` the rows of all ranks are gathered and the
``save_rank`` process writes the files atomically. Only the image file name and ``patient_id`` identify a study;
no other header field is read or written.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from monai.data import decollate_batch
from monai.utils import IgniteInfo, min_version, optional_import, string_list_all_gather
from monai.utils import ImageMetaKey as Key

from monai_bone.constants import (
    REFERENCE_MEAN,
    REFERENCE_SD,
    SCREENING_THRESHOLD,
    SYNTHETIC_NOTE,
    T_OSTEOPOROSIS,
    WHO_CLASSES,
)
from monai_bone.metrics.operating_points import bland_altman_ci, brier_ece, calibration_line
from monai_bone.metrics.plots import (
    plot_bland_altman,
    plot_calibration,
    plot_confusion_matrix,
    plot_pred_vs_true,
    plot_roc,
)
from monai_bone.metrics.regression import bland_altman, bootstrap_ci, regression_metrics
from monai_bone.metrics.screening import (
    bmd_from_t,
    screening_metrics,
    screening_positive,
    t_score,
    who_class_index,
)
from monai_bone.metrics.table import classification_table, safe_auc, to_probability
from monai_bone.utils.io import atomic_write_csv, atomic_write_json

idist, _ = optional_import("ignite", IgniteInfo.OPT_IMPORT_VERSION, min_version, "distributed")
Events, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Events")
if TYPE_CHECKING:
    from ignite.engine import Engine
else:
    Engine, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Engine")

__all__ = ["OPTIMISTIC_LINE", "BoneReportWriter", "StudyRowHandler", "gather_rows", "json_safe"]

TASKS: tuple[str, ...] = ("hip", "knee")

#: The line every report carries when its model was selected on the split it scores.
OPTIMISTIC_LINE: str = "optimistic: model selected on this split"


def json_safe(obj: Any) -> Any:
    """Recursively convert numpy/torch scalars and arrays to Python values and NaN/inf to ``None`` (valid JSON)."""
    if isinstance(obj, Mapping):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return json_safe(obj.detach().cpu().tolist())
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def gather_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """All-gather per-study rows (JSON-serialisable dicts) from every rank, rank 0's rows first.

    Uses ``monai.utils.string_list_all_gather`` (ignite distributed or native ``torch.distributed``); a no-op
    outside distributed runs. Every rank must call it (collective).

    Args:
        rows: this rank's rows.

    Returns:
        The rows of all ranks.
    """
    if idist.get_world_size() <= 1:
        return rows
    encoded = string_list_all_gather([json.dumps(r) for r in rows])
    return [json.loads(s) for s in encoded if s]


def _as_items(data: Any, what: str) -> list[Any]:
    if data is None:
        return []
    if isinstance(data, Mapping):
        return decollate_batch(dict(data), detach=True)
    if isinstance(data, (list, tuple)):
        return list(data)
    raise TypeError(f"engine.state.{what} must be a dict or a list of per-study dicts, got {type(data).__name__}.")


def _numbers(x: Any) -> np.ndarray:
    """Flatten a per-study value (tensor, array, number, None) into a float64 vector; None -> empty."""
    if x is None:
        return np.zeros(0)
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    try:
        return np.asarray(x, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as e:
        raise ValueError(f"expected a number or numeric tensor per study, got {type(x).__name__} {x!r:.80}.") from e


def _rounded(x: float, digits: int = 6) -> float:
    return round(float(x), digits) if math.isfinite(x) else float("nan")


class StudyRowHandler:
    """Base Ignite handler that turns each evaluated study into one row and writes all rows at epoch end.

    Subclasses implement :meth:`make_row` (one study -> one dict) and :meth:`write` (all rows, on ``save_rank``).
    Works with decollated (default) and batch-first ``engine.state.batch`` / ``engine.state.output``.

    Args:
        output_dir: folder for the written files (created).
        image_key: key of the input image; its ``filename_or_obj`` metadata names the study.
        id_key: key of the patient identifier in the batch (written when present).
        error_key: key of an error message in a batch or output item (bad study: no prediction, error row).
        relative_to: when given, image paths are written relative to this folder.
        save_rank: the rank that writes the files in distributed runs.
        name: logger name; default the engine's logger.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        image_key: str = "image",
        id_key: str = "patient_id",
        error_key: str = "error",
        relative_to: str | os.PathLike | None = None,
        save_rank: int = 0,
        name: str | None = None,
    ) -> None:
        self.output_dir = Path(output_dir)
        self.image_key = image_key
        self.id_key = id_key
        self.error_key = error_key
        self.relative_to = relative_to
        self.save_rank = int(save_rank)
        self._name = name
        self.logger = logging.getLogger(name or __name__)
        self.rows: list[dict[str, Any]] = []

    def attach(self, engine: Engine) -> None:
        """Register the handler on ``engine`` (epoch start: reset; iteration end: collect; epoch end: write).

        Args:
            engine: an Ignite engine, typically a ``monai.engines.SupervisedEvaluator``.
        """
        if self._name is None:
            self.logger = engine.logger
        if not engine.has_event_handler(self._started, Events.EPOCH_STARTED):
            engine.add_event_handler(Events.EPOCH_STARTED, self._started)
        if not engine.has_event_handler(self, Events.ITERATION_COMPLETED):
            engine.add_event_handler(Events.ITERATION_COMPLETED, self)
        if not engine.has_event_handler(self._completed, Events.EPOCH_COMPLETED):
            engine.add_event_handler(Events.EPOCH_COMPLETED, self._completed)

    def _started(self, _engine: Engine) -> None:
        self.rows = []

    def __call__(self, engine: Engine) -> None:
        """Collect one row per study of the current iteration."""
        batch = _as_items(engine.state.batch, "batch")
        output = _as_items(engine.state.output, "output")
        if batch and output and len(batch) != len(output):
            raise ValueError(f"batch has {len(batch)} studies but the output has {len(output)}.")
        for i in range(max(len(batch), len(output))):
            b = batch[i] if i < len(batch) else {}
            o = output[i] if i < len(output) else {}
            if not isinstance(b, Mapping) or not isinstance(o, Mapping):
                raise TypeError("BoneReportWriter/BonePredictionWriter need dictionary data (MONAI dict transforms).")
            row: dict[str, Any] = {"image": self._filename(b, o), "patient_id": self._patient_id(b, o)}
            error = self._error(b, o)
            if error:
                row["error"] = error
            else:
                row.update(self.make_row(b, o))
            self.rows.append(row)

    def _completed(self, engine: Engine) -> None:
        ws = idist.get_world_size()
        if self.save_rank >= ws:
            raise ValueError(f"save_rank {self.save_rank} is not below the world size {ws}.")
        rows = gather_rows(self.rows)
        if idist.get_rank() == self.save_rank:
            self.write(rows, engine)

    def _filename(self, b: Mapping, o: Mapping) -> str:
        for item in (b, o):
            img = item.get(self.image_key)
            meta = getattr(img, "meta", None) or item.get(f"{self.image_key}_meta_dict") or {}
            fname = meta.get(Key.FILENAME_OR_OBJ) if isinstance(meta, Mapping) else None
            if fname is None and isinstance(img, (str, os.PathLike)):
                fname = img
            if fname is not None:
                fname = os.fspath(fname)
                if self.relative_to is not None:
                    with contextlib.suppress(ValueError):  # other drive on Windows: keep the absolute path
                        fname = os.path.relpath(fname, os.fspath(self.relative_to))
                return fname
        return ""

    def _patient_id(self, b: Mapping, o: Mapping) -> str:
        for item in (b, o):
            pid = item.get(self.id_key)
            if pid is not None:
                return str(pid)
        return ""

    def _error(self, b: Mapping, o: Mapping) -> str:
        for item in (b, o):
            err = item.get(self.error_key)
            if err:
                return str(err)
        return ""

    def make_row(self, batch_item: Mapping, output_item: Mapping) -> dict[str, Any]:
        """Build the row values of one study (besides ``image``, ``patient_id`` and ``error``)."""
        raise NotImplementedError

    def write(self, rows: list[dict[str, Any]], engine: Engine) -> None:
        """Write all rows (called on ``save_rank`` only)."""
        raise NotImplementedError


def _fieldnames(rows: Sequence[Mapping[str, Any]], first: Sequence[str]) -> list[str]:
    names = list(first)
    for r in rows:
        names.extend(k for k in r if k not in names)
    return names


class BoneReportWriter(StudyRowHandler):
    """Evaluation report of a hip (BMD regression) or knee (osteoporosis classification) model.

    Writes into ``output_dir`` (file names prefixed by ``prefix``):

    - ``metrics.json``: ``task``, ``synthetic`` (and the synthetic note), ``n`` (studies used), ``n_rows``, then
      hip: ``mse``, ``mae``, ``rmse``, ``r2``, ``pearson_r``, ``bias``, ``bland_altman``, ``screening``
      (``low_bmd``: BMD < ``screening_threshold``; ``osteoporosis``: BMD <= the T = ``t_osteoporosis`` BMD),
      ``who`` (WHO class confusion matrix and accuracy); knee: the Table I set of
      :func:`~monai_bone.metrics.classification_table`; both: ``confidence_intervals`` when ``n_bootstrap > 0``.
      Undefined values (e.g. AUC with one class) are ``null``. Every report says what it scored: ``split``,
      ``n_studies``, ``n_patients`` and ``selected_on_split``; when the model was selected on the scored split the
      report carries ``"optimistic": "optimistic: model selected on this split"`` (and logs it). Bootstrap CIs
      resample patients (``patient_id``), not images.
    - ``predictions.csv``: one row per evaluated study (first line ``# <synthetic note>`` when synthetic).
    - PNG plots: ``roc.png``, ``confusion_matrix.png``, ``calibration.png``, and for hip ``pred_vs_true.png`` and
      ``bland_altman.png``.

    Args:
        output_dir: report folder (created).
        task: ``"hip"`` (prediction = BMD in g/cm^2) or ``"knee"`` (prediction = logit(s) or probabilities).
        synthetic: whether the evaluated data are synthetic (tags every file and plot).
        pred_key: key of the prediction in ``engine.state.output``.
        label_key: key of the truth (output item first, then batch item): BMD (hip) or class index/one-hot (knee).
        ref_mean: young-adult reference mean for T-scores (g/cm^2).
        ref_sd: young-adult reference SD (g/cm^2).
        screening_threshold: hip screening BMD threshold (g/cm^2), default 0.899 (T = -1).
        t_osteoporosis: T-score of the second (osteoporosis) screening threshold, default -2.5.
        labels: knee class names (default from the class count).
        positive: knee screening-positive class (default ``"osteoporosis"``).
        logits: whether knee predictions are logits (sigmoid/softmax applied here) or probabilities.
        threshold: decision threshold of a binary (one-output) knee model.
        n_bootstrap: bootstrap resamples for 95 % confidence intervals of the main metrics (0 disables).
        split: name of the scored split (``"test"``, ``"val"``, ...); ``None`` writes ``"unspecified"``.
        selected_on_split: whether the model (best-epoch checkpoint, settings) was chosen on the scored split;
            ``None`` means unknown and is reported as such.
        seed: bootstrap seed.
        plots: whether to draw the PNG plots.
        prefix: prefix of every written file name (e.g. ``"fold3_"``).
        image_key: see :class:`StudyRowHandler`.
        id_key: see :class:`StudyRowHandler`.
        error_key: see :class:`StudyRowHandler`.
        relative_to: see :class:`StudyRowHandler`.
        save_rank: see :class:`StudyRowHandler`.
        name: see :class:`StudyRowHandler`.

    Raises:
        ValueError: on an unknown task or a bad reference.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        task: str = "hip",
        synthetic: bool = False,
        pred_key: str = "pred",
        label_key: str = "label",
        ref_mean: float = REFERENCE_MEAN,
        ref_sd: float = REFERENCE_SD,
        screening_threshold: float = SCREENING_THRESHOLD,
        t_osteoporosis: float = T_OSTEOPOROSIS,
        labels: Sequence[str] | None = None,
        positive: str | int | None = None,
        logits: bool = True,
        threshold: float = 0.5,
        n_bootstrap: int = 1000,
        seed: int = 0,
        plots: bool = True,
        split: str | None = None,
        selected_on_split: bool | None = None,
        prefix: str = "",
        image_key: str = "image",
        id_key: str = "patient_id",
        error_key: str = "error",
        relative_to: str | os.PathLike | None = None,
        save_rank: int = 0,
        name: str | None = None,
    ) -> None:
        super().__init__(output_dir, image_key, id_key, error_key, relative_to, save_rank, name)
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}.")
        self.task = task
        self.synthetic = bool(synthetic)
        self.pred_key = pred_key
        self.label_key = label_key
        self.ref_mean = float(ref_mean)
        self.ref_sd = float(ref_sd)
        t_score(0.0, self.ref_mean, self.ref_sd)  # validates the reference
        self.screening_threshold = float(screening_threshold)
        self.t_osteoporosis = float(t_osteoporosis)
        self.osteoporosis_threshold = float(bmd_from_t(self.t_osteoporosis, self.ref_mean, self.ref_sd))
        self.labels = list(labels) if labels is not None else None
        self.positive = positive
        self.logits = bool(logits)
        self.threshold = float(threshold)
        self.n_bootstrap = int(n_bootstrap)
        self.seed = int(seed)
        self.plots = bool(plots)
        self.prefix = prefix
        self.split = str(split) if split is not None else "unspecified"
        self.selected_on_split = None if selected_on_split is None else bool(selected_on_split)
        self._groups: list[str] | None = None
        self.metrics: dict[str, Any] = {}

    # ------------------------------------------------------------------ rows
    def _truth(self, b: Mapping, o: Mapping) -> np.ndarray:
        for item in (o, b):
            if item.get(self.label_key) is not None:
                return _numbers(item[self.label_key])
        return np.zeros(0)

    def make_row(self, batch_item: Mapping, output_item: Mapping) -> dict[str, Any]:
        """One study: prediction and truth (hip: BMD, T, WHO class, screening; knee: probabilities and classes)."""
        pred = _numbers(output_item.get(self.pred_key))
        if pred.size == 0 or not np.all(np.isfinite(pred)):
            study = self._filename(batch_item, output_item)
            raise ValueError(f"no finite {self.pred_key!r} in the engine output for study {study!r}: {pred.tolist()}.")
        truth = self._truth(batch_item, output_item)
        if self.task == "hip":
            if pred.size != 1:
                raise ValueError(f"hip prediction must be one BMD value per study, got {pred.size} values.")
            if truth.size > 1:
                raise ValueError(f"hip truth {self.label_key!r} must be one BMD value per study, got {truth.size}.")
            return {"pred_bmd": float(pred[0]), "true_bmd": float(truth[0]) if truth.size == 1 else float("nan")}
        return {"_pred": pred.tolist(), "_label": truth.tolist()}

    # ----------------------------------------------------------------- write
    def _path(self, name: str) -> Path:
        return self.output_dir / f"{self.prefix}{name}"

    def write(self, rows: list[dict[str, Any]], engine: Engine) -> None:
        """Compute the metrics of all rows and write ``metrics.json``, the per-study CSV and the plots."""
        self.output_dir.mkdir(parents=True, exist_ok=True)
        good = [r for r in rows if not r.get("error")]
        report: dict[str, Any] = {"task": self.task, "synthetic": self.synthetic}
        if self.synthetic:
            report["note"] = SYNTHETIC_NOTE
        report.update(self._split_fields(good))
        plots: dict[str, str] = {}
        if self.task == "hip":
            table, columns = self._hip(good, report, plots)
        else:
            table, columns = self._knee(good, report, plots)
        report["n_rows"] = len(rows)
        report["n_errors"] = len(rows) - len(good)
        report["files"] = {"csv": self._path("predictions.csv").name, "plots": plots}
        # error rows keep their place in the CSV, with the message and no prediction
        computed = iter(table)
        csv_rows = [
            {"image": r["image"], "patient_id": r["patient_id"], "error": r["error"]}
            if r.get("error")
            else next(computed)
            for r in rows
        ]
        atomic_write_csv(
            self._path("predictions.csv"),
            csv_rows,
            _fieldnames(csv_rows, columns),
            comment=SYNTHETIC_NOTE if self.synthetic else None,
        )
        self.metrics = json_safe(report)
        atomic_write_json(self._path("metrics.json"), self.metrics)
        self.logger.info(
            "%s report (%s): %s -> %s",
            self.task,
            "SYNTHETIC" if self.synthetic else "real data",
            ", ".join(f"{k}={v:.4g}" for k, v in self._headline().items() if isinstance(v, float)),
            self.output_dir,
        )

    def _split_fields(self, good: list[dict]) -> dict[str, Any]:
        """``split``, ``n_studies``, ``n_patients``, ``selected_on_split`` (+ the optimistic line) of the rows."""
        ids = {r["patient_id"] or f"image:{r['image']}" for r in good}
        out: dict[str, Any] = {
            "split": self.split,
            "n_studies": len(good),
            "n_patients": len(ids),
            "selected_on_split": self.selected_on_split,
        }
        if self.selected_on_split:
            out["optimistic"] = OPTIMISTIC_LINE
            self.logger.warning("%s report on split %r: %s", self.task, self.split, OPTIMISTIC_LINE)
        elif self.selected_on_split is None:
            out["optimistic"] = "unknown whether the model was selected on this split"
        return out

    def _headline(self) -> dict[str, Any]:
        keys = ("mse", "mae", "r2") if self.task == "hip" else ("accuracy", "sensitivity", "specificity", "f1", "auc")
        return {k: self.metrics.get(k) for k in keys}

    def _ci(self, fn: Callable[..., float], *arrays: np.ndarray) -> dict[str, Any]:
        return bootstrap_ci(fn, *arrays, n_boot=self.n_bootstrap, seed=self.seed, groups=self._groups)

    def _hip(self, good: list[dict], report: dict, plots: dict) -> tuple[list[dict], list[str]]:
        pred = np.array([r["pred_bmd"] for r in good], dtype=float)
        true = np.array([r["true_bmd"] for r in good], dtype=float)
        known = np.isfinite(true)
        p, t = pred[known], true[known]
        self._groups = [r["patient_id"] or f"image:{r['image']}" for r, k in zip(good, known) if k]
        report.update(
            {
                "n": int(known.sum()),
                "n_missing_truth": int((~known).sum()),
                "reference": {"mean": self.ref_mean, "sd": self.ref_sd, "units": "g/cm^2"},
            }
        )
        rules = {
            "low_bmd": (self.screening_threshold, False),
            "osteoporosis": (self.osteoporosis_threshold, True),
        }
        table = []
        pred_t = t_score(pred, self.ref_mean, self.ref_sd)
        true_t = t_score(true, self.ref_mean, self.ref_sd)
        pred_who = who_class_index(pred_t) if pred.size else np.zeros(0, dtype=int)
        for i, r in enumerate(good):
            row = {
                "image": r["image"],
                "patient_id": r["patient_id"],
                "pred_bmd": _rounded(pred[i]),
                "true_bmd": _rounded(true[i]) if known[i] else None,
                "error_bmd": _rounded(pred[i] - true[i]) if known[i] else None,
                "pred_t_score": _rounded(pred_t[i]),
                "true_t_score": _rounded(true_t[i]) if known[i] else None,
                "pred_who_class": WHO_CLASSES[pred_who[i]],
                "true_who_class": WHO_CLASSES[who_class_index(true_t[i])] if known[i] else None,
            }
            for key, (thr, inclusive) in rules.items():
                row[f"pred_{key}"] = bool(screening_positive(pred[i], thr, inclusive)[0])
                row[f"true_{key}"] = bool(screening_positive(true[i], thr, inclusive)[0]) if known[i] else None
            table.append(row)
        columns = ["image", "patient_id", *(k for k in (table[0] if table else {}) if k not in ("image", "patient_id"))]
        if p.size == 0:
            self.logger.warning("hip report: no study with a true BMD; metrics.json holds counts only.")
            return table, columns
        report.update(regression_metrics(p, t))
        report["bland_altman"] = bland_altman(p, t)
        report["calibration"] = calibration_line(p, t)  # true = intercept + slope * pred
        if p.size >= 3:  # bias and limits of agreement with 95 % CIs, proportional-bias test
            report["bland_altman"].update(bland_altman_ci(p, t))
        screening = {}
        for key, (thr, inclusive) in rules.items():
            s = screening_metrics(p, t, thr, inclusive)
            s["rule"] = f"bmd {'<=' if inclusive else '<'} {thr:.4f} g/cm^2"
            s["t_score"] = _rounded(t_score(thr, self.ref_mean, self.ref_sd))
            screening[key] = s
        report["screening"] = screening
        true_who = who_class_index(t_score(t, self.ref_mean, self.ref_sd))
        cm = np.zeros((3, 3), dtype=int)
        np.add.at(cm, (true_who, pred_who[known]), 1)
        report["who"] = {
            "labels": list(WHO_CLASSES),
            "confusion_matrix": cm.tolist(),
            "accuracy": float(np.trace(cm) / cm.sum()),
        }
        if self.n_bootstrap > 0:
            ci = {k: self._ci(lambda a, b, k=k: regression_metrics(a, b)[k], p, t) for k in ("mse", "mae", "r2")}
            for key, (thr, inclusive) in rules.items():
                ci[f"{key}_auc"] = self._ci(
                    lambda a, b, thr=thr, inc=inclusive: safe_auc(screening_positive(b, thr, inc), -a), p, t
                )
            report["confidence_intervals"] = ci
        if self.plots:
            syn = self.synthetic
            curves = {
                f"BMD < {self.screening_threshold:.3f}": (-p, screening_positive(t, self.screening_threshold)),
                f"T <= {self.t_osteoporosis:g} ({self.osteoporosis_threshold:.3f})": (
                    -p,
                    screening_positive(t, self.osteoporosis_threshold, True),
                ),
            }
            plots["roc"] = plot_roc(curves, self._path("roc.png"), "Hip BMD screening ROC", syn).name
            thresholds = {
                "screening": self.screening_threshold,
                f"T {self.t_osteoporosis:g}": self.osteoporosis_threshold,
            }
            plots["pred_vs_true"] = plot_pred_vs_true(
                p, t, self._path("pred_vs_true.png"), thresholds, "Predicted vs DXA BMD", synthetic=syn
            ).name
            plots["bland_altman"] = plot_bland_altman(
                p, t, self._path("bland_altman.png"), title="Bland-Altman: predicted - DXA BMD", synthetic=syn
            ).name
            plots["confusion_matrix"] = plot_confusion_matrix(
                cm, WHO_CLASSES, self._path("confusion_matrix.png"), "WHO class (from predicted BMD)", syn
            ).name
            plots["calibration"] = plot_calibration(
                p,
                t,
                self._path("calibration.png"),
                n_bins=min(10, max(2, p.size // 5)),
                strategy="quantile",
                xlabel="Predicted BMD (g/cm²), bin mean",
                ylabel="DXA BMD (g/cm²), bin mean",
                title="BMD calibration",
                synthetic=syn,
            ).name
        return table, columns

    def _knee(self, good: list[dict], report: dict, plots: dict) -> tuple[list[dict], list[str]]:
        if not good:
            report["n"] = 0
            self.logger.warning("knee report: no study was evaluated; metrics.json holds counts only.")
            return [], ["image", "patient_id"]
        widths = {len(r["_pred"]) for r in good}
        if len(widths) != 1:
            raise ValueError(f"knee predictions differ in size across studies: {sorted(widths)}.")
        prob = to_probability(np.array([r["_pred"] for r in good], dtype=float), logits=self.logits)
        self._groups = [r["patient_id"] or f"image:{r['image']}" for r in good]
        n_classes = 2 if prob.ndim == 1 else prob.shape[1]
        missing = [r["image"] or r["patient_id"] for r in good if len(r["_label"]) == 0]
        if missing:
            raise ValueError(f"knee report needs a {self.label_key!r} for every study; missing for {missing[:5]}.")
        raw = [r["_label"] for r in good]
        label = np.array([v[0] if len(v) == 1 else int(np.argmax(v)) for v in raw], dtype=float)
        table = classification_table(prob, label, self.threshold, labels=self.labels, positive=self.positive)
        report.update(table)
        pos_prob = prob if prob.ndim == 1 else prob[:, table["labels"].index(table["positive"])]
        report["calibration"] = brier_ece(pos_prob, label == table["labels"].index(table["positive"]))
        names = table["labels"]
        pos = names.index(table["positive"])
        probs = np.stack([1.0 - prob, prob], axis=1) if prob.ndim == 1 else prob
        pred_class = (prob >= self.threshold).astype(int) if prob.ndim == 1 else np.argmax(prob, axis=1)
        y = label.astype(int)
        rows = []
        for i, r in enumerate(good):
            row = {
                "image": r["image"],
                "patient_id": r["patient_id"],
                "true_index": int(y[i]),
                "true_class": names[y[i]],
                "pred_index": int(pred_class[i]),
                "pred_class": names[pred_class[i]],
                "correct": bool(y[i] == pred_class[i]),
            }
            row.update({f"prob_{n}": _rounded(probs[i, c]) for c, n in enumerate(names)})
            rows.append(row)
        if self.n_bootstrap > 0:

            def stat(key: str) -> Callable[..., float]:
                return lambda pr, lb: classification_table(
                    pr, lb, self.threshold, labels=names, positive=table["positive"]
                )[key]

            report["confidence_intervals"] = {
                k: self._ci(stat(k), prob, label) for k in ("auc", "accuracy", "sensitivity", "specificity", "f1")
            }
        if self.plots:
            syn = self.synthetic
            if n_classes == 2:
                curves = {f"{names[pos]} vs rest": (probs[:, pos], y == pos)}
            else:
                curves = {f"{n} vs rest": (probs[:, c], y == c) for c, n in enumerate(names)}
            plots["roc"] = plot_roc(curves, self._path("roc.png"), "Knee osteoporosis ROC", syn).name
            plots["confusion_matrix"] = plot_confusion_matrix(
                table["confusion_matrix"], names, self._path("confusion_matrix.png"), "Knee confusion matrix", syn
            ).name
            plots["calibration"] = plot_calibration(
                probs[:, pos],
                (y == pos).astype(float),
                self._path("calibration.png"),
                n_bins=min(10, max(2, y.size // 5)),
                xlabel=f"Predicted probability of {names[pos]}",
                ylabel=f"Observed fraction {names[pos]}",
                title="Knee calibration",
                synthetic=syn,
            ).name
        columns = ["image", "patient_id", *(k for k in rows[0] if k not in ("image", "patient_id"))]
        return rows, columns
