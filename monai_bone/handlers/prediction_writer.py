"""Inference writer: one row per study in ``<filename>.csv`` and ``<filename>.json``.

Attach :class:`BonePredictionWriter` to the inference evaluator of a bundle (``inference.json`` handlers)::

    {"_target_": "monai_bone.handlers.BonePredictionWriter", "output_dir": "@output_dir", "task": "hip"}

Hip rows: ``bmd`` (g/cm^2), ``t_score``, ``who_class`` and ``screening_positive`` (BMD below the screening
threshold, 0.899 g/cm^2 by default), plus ``attn_<field>`` columns when the output dict carries per-field metadata
attention weights. Knee rows: ``class_name``, ``class_index``, ``probability`` (of the predicted class) and
``prob_<class>`` for every class. A study whose batch or output item carries an ``error`` message (e.g. set by
:class:`~monai_bone.transforms.SafeXrayd` for a file that cannot be loaded) gets a row with the message and no
prediction. With ``index_rejects`` (the ``rejects.csv`` of the index that built the inference datalist), every study
the index rejected gets an error row too, so every input image is accounted for in the predictions. Files that were
never image candidates -- rejected as ``not_dicom``/``not_image`` and named like a document (a ``.csv``, ``.json``,
``.txt``, ... beside the images, see :data:`NON_IMAGE_SUFFIXES`) -- stay in ``rejects.csv`` only.
"""

from __future__ import annotations

import contextlib
import csv
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from monai_bone.constants import CLINICAL_FIELDS, REFERENCE_MEAN, REFERENCE_SD, SCREENING_THRESHOLD, SYNTHETIC_NOTE
from monai_bone.metrics.screening import screening_positive, t_score, who_class
from monai_bone.metrics.table import resolve_class_names, to_probability
from monai_bone.tasks import get_task
from monai_bone.utils.io import atomic_write_csv, atomic_write_json
from monai_bone.utils.jsonsafe import json_safe
from monai_bone.utils.numbers import as_numbers, round_finite

from .study_rows import StudyRowHandler, row_fieldnames

if TYPE_CHECKING:
    from ignite.engine import Engine

__all__ = ["NON_IMAGE_SUFFIXES", "BonePredictionWriter"]

#: Suffixes of files that are not studies: rejected as not_dicom/not_image, they get no error row.
NON_IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".csv", ".tsv", ".json", ".txt", ".md", ".xml", ".html", ".pdf", ".yaml", ".yml", ".log", ".py", ".zip", ".gz"}
    | {".tar", ".dump", ".icc", ".ini", ".cfg", ".xlsx", ".xls", ".doc", ".docx"}
)
_NOT_AN_IMAGE = ("not_dicom", "not_image")


class BonePredictionWriter(StudyRowHandler):
    """Write per-study inference results (CSV + JSON) at the end of each inference run.

    Args:
        output_dir: folder for ``<filename>.csv`` and ``<filename>.json`` (created).
        task: ``"hip"`` (prediction = BMD in g/cm^2) or ``"knee"`` (prediction = logit(s) or probabilities).
        ref_mean: young-adult reference mean for T-scores (g/cm^2).
        ref_sd: young-adult reference SD (g/cm^2).
        labels: knee class names (default by class count: ``KNEE_LABELS_BINARY`` / ``KNEE_LABELS_THREE``).
        screening_threshold: hip screening BMD threshold (g/cm^2); ``screening_positive`` is BMD below it.
        logits: whether knee predictions are logits (sigmoid/softmax applied here) or probabilities.
        threshold: decision threshold of a binary (one-output) knee model.
        synthetic: whether the input data are synthetic (written into both files).
        filename: base name of the two files.
        pred_key: key of the prediction in ``engine.state.output``.
        attention_key: key of per-field metadata attention weights in ``engine.state.output`` (hip, optional): a
            ``(F,)`` vector, or ``(..., F)`` averaged over leading dimensions, or a dict holding it under
            ``"field_weights"``.
        fields: names of the attention fields, in the order of the weights (default ``CLINICAL_FIELDS``).
        image_key: see :class:`~monai_bone.handlers.report.StudyRowHandler`.
        id_key: see :class:`~monai_bone.handlers.report.StudyRowHandler`.
        error_key: see :class:`~monai_bone.handlers.report.StudyRowHandler`.
        relative_to: see :class:`~monai_bone.handlers.report.StudyRowHandler`.
        save_rank: see :class:`~monai_bone.handlers.report.StudyRowHandler`.
        name: see :class:`~monai_bone.handlers.report.StudyRowHandler`.
        index_rejects: ``rejects.csv`` written by the index (``path, reason, detail``, paths relative to its folder);
            each row becomes an error row ``rejected by the index (<reason>): <detail>``. ``None`` or a missing file:
            no such rows.

    Raises:
        ValueError: on an unknown task or a bad reference.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        task: str = "hip",
        ref_mean: float = REFERENCE_MEAN,
        ref_sd: float = REFERENCE_SD,
        labels: Sequence[str] | None = None,
        screening_threshold: float = SCREENING_THRESHOLD,
        logits: bool = True,
        threshold: float = 0.5,
        synthetic: bool = False,
        filename: str = "predictions",
        pred_key: str = "pred",
        attention_key: str = "field_weights",
        fields: Sequence[str] = CLINICAL_FIELDS,
        image_key: str = "image",
        id_key: str = "patient_id",
        error_key: str = "error",
        relative_to: str | os.PathLike | None = None,
        save_rank: int = 0,
        name: str | None = None,
        index_rejects: str | os.PathLike | None = None,
    ) -> None:
        super().__init__(output_dir, image_key, id_key, error_key, relative_to, save_rank, name)
        self.index_rejects = None if index_rejects in (None, "") else Path(index_rejects)
        self.spec = get_task(task)
        self.task = self.spec.name
        self.ref_mean = float(ref_mean)
        self.ref_sd = float(ref_sd)
        t_score(0.0, self.ref_mean, self.ref_sd)  # validates the reference
        self.labels = list(labels) if labels is not None else None
        self.screening_threshold = float(screening_threshold)
        self.logits = bool(logits)
        self.threshold = float(threshold)
        self.synthetic = bool(synthetic)
        self.filename = filename
        self.pred_key = pred_key
        self.attention_key = attention_key
        self.fields = [str(f) for f in fields]
        self.predictions: list[dict[str, Any]] = []

    def _attention(self, output_item: Mapping) -> dict[str, float]:
        att = output_item.get(self.attention_key)
        if isinstance(att, Mapping):
            att = att.get("field_weights")
        if att is None:
            return {}
        w = as_numbers(att)
        n = len(self.fields)
        if n and w.size and w.size % n == 0:
            w = w.reshape(-1, n).mean(axis=0)
            return {f"attn_{f}": round_finite(v) for f, v in zip(self.fields, w)}
        return {f"attn_{i}": round_finite(v) for i, v in enumerate(w)}

    def make_row(self, batch_item: Mapping, output_item: Mapping) -> dict[str, Any]:
        """One study's prediction (hip: BMD, T-score, WHO class, screening flag, attention; knee: class, probs)."""
        pred = as_numbers(output_item.get(self.pred_key))
        if pred.size == 0 or not np.all(np.isfinite(pred)):
            study = self._filename(batch_item, output_item)
            raise ValueError(f"no finite {self.pred_key!r} in the engine output for study {study!r}.")
        if self.spec.is_regression:
            if pred.size != 1:
                raise ValueError(f"hip prediction must be one BMD value per study, got {pred.size} values.")
            bmd = float(pred[0])
            t = t_score(bmd, self.ref_mean, self.ref_sd)
            row = {
                "bmd": round_finite(bmd),
                "t_score": round_finite(t),
                "who_class": who_class(t),
                "screening_positive": bool(screening_positive(bmd, self.screening_threshold)[0]),
            }
            row.update(self._attention(output_item))
            return row
        prob = to_probability(pred[None, :] if pred.size > 1 else pred, logits=self.logits)
        probs = np.array([1.0 - prob[0], prob[0]]) if prob.ndim == 1 else prob[0]
        names = resolve_class_names(self.labels, probs.size)
        idx = int(prob[0] >= self.threshold) if prob.ndim == 1 else int(np.argmax(probs))
        row = {"class_name": names[idx], "class_index": idx, "probability": round_finite(probs[idx])}
        row.update({f"prob_{n}": round_finite(p) for n, p in zip(names, probs)})
        return row

    def rejected_rows(self) -> list[dict[str, Any]]:
        """Error rows for the files listed in ``index_rejects`` (empty when there is no such file)."""
        if self.index_rejects is None or not self.index_rejects.is_file():
            return []
        base = self.index_rejects.parent
        rows = []
        with open(self.index_rejects, newline="", encoding="utf-8") as f:
            lines = (line for line in f if not line.startswith("#"))
            for r in csv.DictReader(lines):
                path = os.path.normpath(os.path.join(base, r.get("path") or ""))
                if self.relative_to is not None:
                    with contextlib.suppress(ValueError):  # another drive on Windows: keep the absolute path
                        path = os.path.relpath(path, os.fspath(self.relative_to))
                reason, detail = r.get("reason") or "rejected", r.get("detail") or ""
                if reason in _NOT_AN_IMAGE and Path(path).suffix.lower() in NON_IMAGE_SUFFIXES:
                    continue  # a document beside the images, not a study
                rows.append({"image": path, "patient_id": "", "error": f"rejected by the index ({reason}): {detail}"})
        return rows

    def write(self, rows: list[dict[str, Any]], engine: Engine) -> None:
        """Write ``<filename>.csv`` and ``<filename>.json`` (called on ``save_rank`` only)."""
        rows = list(rows) + self.rejected_rows()
        if self.spec.is_regression:
            first = ["image", "patient_id", "bmd", "t_score", "who_class", "screening_positive"]
        else:
            first = ["image", "patient_id", "class_name", "class_index", "probability"]
        columns = row_fieldnames(rows, first)
        if "error" in columns:  # keep the error message last
            columns = [c for c in columns if c != "error"] + ["error"]
        else:
            columns.append("error")
        self.output_dir.mkdir(parents=True, exist_ok=True)
        comment = SYNTHETIC_NOTE if self.synthetic else None
        atomic_write_csv(self.output_dir / f"{self.filename}.csv", rows, columns, comment=comment)
        n_errors = sum(1 for r in rows if r.get("error"))
        doc: dict[str, Any] = {"task": self.task, "synthetic": self.synthetic}
        if self.synthetic:
            doc["note"] = SYNTHETIC_NOTE
        if self.spec.is_regression:
            doc["reference"] = {"mean": self.ref_mean, "sd": self.ref_sd, "units": "g/cm^2"}
            doc["screening_threshold"] = self.screening_threshold
        else:
            doc["threshold"] = self.threshold
            if self.labels is not None:
                doc["labels"] = self.labels
        doc.update({"n": len(rows), "n_errors": n_errors, "predictions": rows})
        self.predictions = json_safe(rows)
        atomic_write_json(self.output_dir / f"{self.filename}.json", json_safe(doc))
        self.logger.info("%s inference: %d studies (%d errors) -> %s", self.task, len(rows), n_errors, self.output_dir)
