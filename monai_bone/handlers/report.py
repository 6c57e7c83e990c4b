"""Evaluation report writer: per-study CSV, ``metrics.json`` and PNG plots at the end of each evaluation run.

Attach :class:`BoneReportWriter` to a ``monai.engines.SupervisedEvaluator`` (bundle ``evaluate.json`` handlers, or
the validation evaluator of a trainer, where it rewrites the report after every validation run)::

    {"_target_": "monai_bone.handlers.BoneReportWriter", "output_dir": "@output_dir", "task": "hip",
     "synthetic": "@synthetic", "records": "@val_data"}

The handler gathers one row per study (:class:`~monai_bone.handlers.study_rows.StudyRowHandler`) and writes; the
numbers come from pure functions in :mod:`monai_bone.metrics` (``hip_report``, ``knee_report``, ``subgroups``,
``operating_points``) that the CV tables use too.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from monai_bone.constants import REFERENCE_MEAN, REFERENCE_SD, SCREENING_THRESHOLD, SYNTHETIC_NOTE, T_OSTEOPOROSIS
from monai_bone.metrics.hip_report import hip_rules
from monai_bone.metrics.screening import t_score
from monai_bone.metrics.subgroups import subgroup_of, subgroup_table
from monai_bone.tasks import get_task
from monai_bone.utils.io import atomic_write_csv, atomic_write_json, atomic_write_text
from monai_bone.utils.jsonsafe import json_safe
from monai_bone.utils.numbers import as_numbers

from .reference_predictions import read_reference_predictions
from .report_markdown import report_markdown
from .report_sections import TaskSections, patient_of
from .study_rows import StudyRowHandler, gather_rows, row_fieldnames

if TYPE_CHECKING:
    from ignite.engine import Engine

__all__ = ["OPTIMISTIC_LINE", "BoneReportWriter", "StudyRowHandler", "gather_rows", "json_safe"]

#: The line every report carries when its model was selected on the split it scores.
OPTIMISTIC_LINE: str = "optimistic: model selected on this split"


class BoneReportWriter(StudyRowHandler, TaskSections):
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
    - ``report.md``: the same numbers as a readable page (the optimistic line, operating points, calibration,
      subgroups).
    - ``predictions.csv``: one row per evaluated study (first line ``# <synthetic note>`` when synthetic).
    - ``operating_points`` (issue 11 item 5): per screening target (hip ``low_bmd`` and ``osteoporosis``, knee the
      positive class) the fixed rule's sensitivity/specificity, the ``youden`` and ``sens90`` thresholds with the
      sensitivity/specificity they give on the scored split, and ``sens_at_spec80`` / ``sens_at_spec90``. The
      thresholds are chosen on ``threshold_predictions`` (the training folds' predictions) when given, else on the
      scored split itself, and ``thresholds_chosen_on`` then says ``"chosen on the scored split, optimistic"``.
    - ``calibration`` (item 6): hip slope/intercept of ``true = intercept + slope * pred`` (Bland–Altman bias and
      limits with 95 % CIs and the proportional-bias test sit in ``bland_altman``); knee Brier score and ECE.
    - ``subgroups`` (item 7): metrics by sex, age band and BMI band (from ``records``), knee also by true class.
    - ``operating_points``, ``calibration`` and every ``subgroups`` row repeat ``split``, ``n_studies``,
      ``n_patients`` and ``selected_on_split``.
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
        records: the evaluated datalist records (bundle: ``@val_data``): their ``sex``, ``age_xray``/``age_bmd`` and
            ``bmi`` give the subgroups (joined by image path, else ``patient_id``); ``None``: knee class subgroups
            only.
        threshold_predictions: CSV of predictions on the training folds to choose the operating-point thresholds on
            (see :func:`~monai_bone.handlers.reference_predictions.read_reference_predictions`); ``None``: chosen on
            the scored split and labelled optimistic.
        threshold_variant: the ``variant`` rows of ``threshold_predictions`` to use (CV files hold several).
        plots: whether to draw the PNG plots.
        prefix: prefix of every written file name (e.g. ``"fold3_"``).
        image_key: see :class:`StudyRowHandler`.
        id_key: see :class:`StudyRowHandler`.
        error_key: see :class:`StudyRowHandler`.
        relative_to: see :class:`StudyRowHandler`.
        save_rank: see :class:`StudyRowHandler`.
        name: see :class:`StudyRowHandler`.

    Raises:
        ValueError: on an unknown task, a bad reference or a missing ``threshold_predictions`` file.
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
        records: Sequence[Mapping[str, Any]] | None = None,
        threshold_predictions: str | os.PathLike | None = None,
        threshold_variant: str | None = None,
        prefix: str = "",
        image_key: str = "image",
        id_key: str = "patient_id",
        error_key: str = "error",
        relative_to: str | os.PathLike | None = None,
        save_rank: int = 0,
        name: str | None = None,
    ) -> None:
        super().__init__(output_dir, image_key, id_key, error_key, relative_to, save_rank, name)
        self.spec = get_task(task)
        self.task = self.spec.name
        self.synthetic = bool(synthetic)
        self.pred_key = pred_key
        self.label_key = label_key
        self.ref_mean = float(ref_mean)
        self.ref_sd = float(ref_sd)
        t_score(0.0, self.ref_mean, self.ref_sd)  # validates the reference
        self.screening_threshold = float(screening_threshold)
        self.t_osteoporosis = float(t_osteoporosis)
        self.rules = hip_rules(self.screening_threshold, self.t_osteoporosis, self.ref_mean, self.ref_sd)
        self.osteoporosis_threshold = self.rules["osteoporosis"][0]
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
        self.threshold_predictions = None if threshold_predictions is None else Path(threshold_predictions)
        if self.threshold_predictions is not None and not self.threshold_predictions.is_file():
            raise ValueError(f"threshold_predictions {self.threshold_predictions}: no such file.")
        self.threshold_variant = threshold_variant
        self._by_image: dict[str, dict] = {}
        self._by_patient: dict[str, dict] = {}
        for r in records or ():
            group = subgroup_of(r)
            if isinstance(r.get("image"), (str, os.PathLike)):
                self._by_image[os.path.abspath(os.fspath(r["image"]))] = group
            if r.get("patient_id"):
                self._by_patient.setdefault(str(r["patient_id"]), group)
        self._groups: list[str] | None = None
        self.metrics: dict[str, Any] = {}

    # ------------------------------------------------------------------ rows
    def _truth(self, b: Mapping, o: Mapping) -> np.ndarray:
        for item in (o, b):
            if item.get(self.label_key) is not None:
                return as_numbers(item[self.label_key])
        return np.zeros(0)

    def _subgroup(self, b: Mapping, o: Mapping) -> dict[str, str | None]:
        source = self._source_path(b, o)
        group = self._by_image.get(os.path.abspath(source)) if source else None
        if group is None:
            group = self._by_patient.get(self._patient_id(b, o))
        return dict(group) if group else {"sex": None, "age_band": None, "bmi_band": None}

    def make_row(self, batch_item: Mapping, output_item: Mapping) -> dict[str, Any]:
        """One study: prediction and truth (hip: BMD, T, WHO class, screening; knee: probabilities and classes)."""
        pred = as_numbers(output_item.get(self.pred_key))
        if pred.size == 0 or not np.all(np.isfinite(pred)):
            study = self._filename(batch_item, output_item)
            raise ValueError(f"no finite {self.pred_key!r} in the engine output for study {study!r}: {pred.tolist()}.")
        truth = self._truth(batch_item, output_item)
        group = {"_subgroup": self._subgroup(batch_item, output_item)}
        if self.spec.is_regression:
            if pred.size != 1:
                raise ValueError(f"hip prediction must be one BMD value per study, got {pred.size} values.")
            if truth.size > 1:
                raise ValueError(f"hip truth {self.label_key!r} must be one BMD value per study, got {truth.size}.")
            true = float(truth[0]) if truth.size == 1 else float("nan")
            return {"pred_bmd": float(pred[0]), "true_bmd": true, **group}
        return {"_pred": pred.tolist(), "_label": truth.tolist(), **group}

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
        if self.spec.is_regression:
            table, columns = self._hip(good, report, plots)
        else:
            table, columns = self._knee(good, report, plots)
        report["n_rows"] = len(rows)
        report["n_errors"] = len(rows) - len(good)
        files = {"csv": self._path("predictions.csv").name, "markdown": self._path("report.md").name}
        report["files"] = {**files, "plots": plots}
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
            row_fieldnames(csv_rows, columns),
            comment=SYNTHETIC_NOTE if self.synthetic else None,
        )
        self.metrics = json_safe(report)
        atomic_write_json(self._path("metrics.json"), self.metrics)
        atomic_write_text(self._path("report.md"), report_markdown(self.metrics))
        self.logger.info(
            "%s report (%s): %s -> %s",
            self.task,
            "SYNTHETIC" if self.synthetic else "real data",
            ", ".join(f"{k}={v:.4g}" for k, v in self._headline().items() if isinstance(v, float)),
            self.output_dir,
        )

    def _evidence(self, groups: Sequence[str]) -> dict[str, Any]:
        """``split``, ``n_studies``, ``n_patients``, ``selected_on_split`` of the studies with ``groups`` ids."""
        return {
            "split": self.split,
            "n_studies": len(groups),
            "n_patients": len(set(groups)),
            "selected_on_split": self.selected_on_split,
        }

    def _split_fields(self, good: list[dict]) -> dict[str, Any]:
        """``split``, ``n_studies``, ``n_patients``, ``selected_on_split`` (+ the optimistic line) of the rows."""
        out = self._evidence([patient_of(r) for r in good])
        if self.selected_on_split:
            out["optimistic"] = OPTIMISTIC_LINE
            self.logger.warning("%s report on split %r: %s", self.task, self.split, OPTIMISTIC_LINE)
        elif self.selected_on_split is None:
            out["optimistic"] = "unknown whether the model was selected on this split"
        return out

    def _headline(self) -> dict[str, Any]:
        regression = ("mse", "mae", "r2")
        keys = regression if self.spec.is_regression else ("accuracy", "sensitivity", "specificity", "f1", "auc")
        return {k: self.metrics.get(k) for k in keys}

    def _reference(
        self, positive_name: str | None = None, positive_index: int = 1, n_classes: int | None = None
    ) -> tuple | None:
        if self.threshold_predictions is None:
            return None
        return read_reference_predictions(
            self.threshold_predictions,
            self.spec.is_regression,
            positive_name,
            positive_index,
            self.threshold_variant,
            n_classes,
        )

    def _reference_name(self) -> str:
        return f"training folds ({self.threshold_predictions.name})" if self.threshold_predictions else ""

    def _subgroups(self, good: list[dict], pred: np.ndarray, true: np.ndarray, extra: dict | None = None) -> list:
        groups = [dict(r.get("_subgroup") or {}) for r in good]
        for key, values in (extra or {}).items():
            for g, v in zip(groups, values):
                g[key] = v
        rows = subgroup_table(self.task, pred, true, groups, [patient_of(r) for r in good], self.threshold)
        return [{"split": self.split, "selected_on_split": self.selected_on_split, **r} for r in rows]
