"""The hip and knee parts of :class:`~monai_bone.handlers.BoneReportWriter`'s report: per-study values, metrics,
confidence intervals, operating points, subgroups and plots of one task (the numbers come from
:mod:`monai_bone.metrics.hip_report` / :mod:`monai_bone.metrics.knee_report`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from monai_bone.metrics.hip_report import hip_confidence_intervals, hip_metrics, hip_operating_points, hip_study_values
from monai_bone.metrics.knee_report import (
    as_class_probabilities,
    knee_confidence_intervals,
    knee_metrics,
    knee_operating_points,
    knee_study_values,
)
from monai_bone.metrics.table import to_probability

from .report_plots import hip_plots, knee_plots

__all__ = ["TaskSections", "patient_of"]


class TaskSections:
    """Mixin of :class:`~monai_bone.handlers.BoneReportWriter` (whose attributes it reads): ``_hip`` and ``_knee``
    fill ``report`` and ``plots`` from the good rows and return the per-study table and its columns."""

    def _hip(self, good: list[dict], report: dict, plots: dict) -> tuple[list[dict], list[str]]:
        pred = np.array([r["pred_bmd"] for r in good], dtype=float)
        true = np.array([r["true_bmd"] for r in good], dtype=float)
        known = np.isfinite(true)
        p, t = pred[known], true[known]
        scored = [r for r, k in zip(good, known) if k]
        self._groups = [patient_of(r) for r in scored]
        report.update(
            {
                "n": int(known.sum()),
                "n_missing_truth": int((~known).sum()),
                "reference": {"mean": self.ref_mean, "sd": self.ref_sd, "units": "g/cm^2"},
            }
        )
        values = hip_study_values(pred, true, self.ref_mean, self.ref_sd, self.rules)
        table = [{"image": r["image"], "patient_id": r["patient_id"], **v} for r, v in zip(good, values)]
        columns = ["image", "patient_id", *(values[0] if values else {})]
        if p.size == 0:
            self.logger.warning("hip report: no study with a true BMD; metrics.json holds counts only.")
            return table, columns
        report.update(hip_metrics(p, t, self.ref_mean, self.ref_sd, self.rules))
        evidence = self._evidence(self._groups)
        report["calibration"].update(evidence)
        report["bland_altman"].update(evidence)
        if self.n_bootstrap > 0:
            report["confidence_intervals"] = hip_confidence_intervals(
                p, t, self.rules, self.n_bootstrap, self.seed, self._groups
            )
        ref = self._reference()
        ops = hip_operating_points(p, t, self.rules, report["screening"], ref, self._reference_name())
        report["operating_points"] = {**evidence, **ops}
        report["subgroups"] = self._subgroups(scored, p, t)
        if self.plots:
            who_cm = report["who"]["confusion_matrix"]
            plots.update(
                hip_plots(
                    p,
                    t,
                    who_cm,
                    self.screening_threshold,
                    self.t_osteoporosis,
                    self.osteoporosis_threshold,
                    self._path,
                    self.synthetic,
                )
            )
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
        self._groups = [patient_of(r) for r in good]
        missing = [r["image"] or r["patient_id"] for r in good if len(r["_label"]) == 0]
        if missing:
            raise ValueError(f"knee report needs a {self.label_key!r} for every study; missing for {missing[:5]}.")
        raw = [r["_label"] for r in good]
        label = np.array([v[0] if len(v) == 1 else int(np.argmax(v)) for v in raw], dtype=float)
        metrics = knee_metrics(prob, label, self.threshold, self.labels, self.positive)
        report.update(metrics)
        names, positive = metrics["labels"], metrics["positive"]
        pos = names.index(positive)
        y = label.astype(int)
        values = knee_study_values(prob, label, names, self.threshold)
        rows = [{"image": r["image"], "patient_id": r["patient_id"], **v} for r, v in zip(good, values)]
        evidence = self._evidence(self._groups)
        report["calibration"].update(evidence)
        if self.n_bootstrap > 0:
            report["confidence_intervals"] = knee_confidence_intervals(
                prob, label, self.threshold, names, positive, self.n_bootstrap, self.seed, self._groups
            )
        probs = as_class_probabilities(prob)
        is_pos = (y == pos).astype(float)
        ref = self._reference(positive, pos, len(names))
        ops = knee_operating_points(probs[:, pos], is_pos, metrics, self.threshold, ref, self._reference_name())
        report["operating_points"] = {**evidence, **ops}
        report["subgroups"] = self._subgroups(good, probs[:, pos], is_pos, {"class": [names[i] for i in y]})
        if self.plots:
            plots.update(knee_plots(probs, y, names, pos, metrics["confusion_matrix"], self._path, self.synthetic))
        columns = ["image", "patient_id", *(k for k in rows[0] if k not in ("image", "patient_id"))]
        return rows, columns


def patient_of(row: Mapping[str, Any]) -> str:
    """The patient id of a row (its image when the id is unknown: one patient per study)."""
    return row["patient_id"] or f"image:{row['image']}"
