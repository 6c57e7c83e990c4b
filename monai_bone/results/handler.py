"""Ignite handler writing the DICOM results of bundle inference: one SR (and optionally a heat-map SC) per study.

Attach :class:`DicomResultsSaver` to the inference evaluator (``inference.json`` does it when ``write_sr`` is true).
For each study read from a DICOM file it writes, atomically, into ``output_dir``:

- ``<source SOPInstanceUID>_sr.dcm``: the Comprehensive 3D SR of :func:`monai_bone.results.sr.build_sr`;
- ``<source SOPInstanceUID>_heatmap.dcm``: when the study has a Grad-CAM map (``save_gradcam: true``) and
  ``write_heatmap`` is on, the Secondary Capture of :func:`monai_bone.results.heatmap.heatmap_secondary_capture`;
  the SR's measurement group is then attached to the outline of the map's most salient area.

and at the end ``dicom_outputs.json`` listing, per study, the source file, its Study/SOP Instance UIDs and the files
written (or why none was: a PNG/JPEG source has no DICOM study to attach an SR to; a study whose prediction failed
has no result). The prediction values come from the same row logic as :class:`~monai_bone.handlers.BonePredictionWriter`
(given the same settings), so the SR holds exactly the numbers of ``predictions.csv``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from monai_bone.constants import REFERENCE_MEAN, REFERENCE_SD, SCREENING_THRESHOLD, SYNTHETIC_NOTE
from monai_bone.handlers.explain_roi import roi_box_of
from monai_bone.handlers.prediction_writer import BonePredictionWriter
from monai_bone.handlers.study_rows import StudyRowHandler
from monai_bone.utils.io import atomic_write_json
from monai_bone.utils.jsonsafe import json_safe

from .algorithm import bundle_algorithm
from .heatmap import heat_to_source, heatmap_secondary_capture, top_region
from .sr import build_sr, write_dataset

if TYPE_CHECKING:
    from ignite.engine import Engine

__all__ = ["DICOM_OUTPUTS", "DicomResultsSaver", "is_synthetic_dataset"]

#: Manifest written at the end of a run.
DICOM_OUTPUTS: str = "dicom_outputs.json"


def is_synthetic_dataset(ds: Any) -> bool:
    """Whether a DICOM data set was written by the monai-bone synthetic generator (its ImageComments note)."""
    return SYNTHETIC_NOTE in str(getattr(ds, "ImageComments", "") or "")


class DicomResultsSaver(StudyRowHandler):
    """Write one DICOM SR (plus an optional heat-map Secondary Capture) per inferred DICOM study.

    Args:
        output_dir: folder of the DICOM files and ``dicom_outputs.json`` (created).
        task: ``"hip"`` or ``"knee"``.
        bundle_root: the bundle folder (name and version from ``configs/metadata.json``).
        weights: the weights file the bundle loaded (its sha256 goes into the SR).
        ref_mean, ref_sd, screening_threshold, labels, logits, threshold: as the bundle's
            :class:`~monai_bone.handlers.BonePredictionWriter` (pass the same config ids).
        synthetic: the input is synthetic (also detected per study from the DICOM header's synthetic note).
        spatial_size: the network input size (maps the heat map back to source pixels; with an ROI input the map is
            placed on the crop's window, read from the image meta's ``roi_box``).
        write_heatmap: also write the heat-map Secondary Capture when a Grad-CAM map exists.
        heat_key: output key of the Grad-CAM map (set by :class:`~monai_bone.handlers.GradCamSaver`).
        save_rank: the rank writing ``dicom_outputs.json`` (every rank writes the DICOM files of its studies).
        name: logger name.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        task: str,
        bundle_root: str | os.PathLike,
        weights: str | os.PathLike | None = None,
        ref_mean: float = REFERENCE_MEAN,
        ref_sd: float = REFERENCE_SD,
        screening_threshold: float = SCREENING_THRESHOLD,
        labels: Sequence[str] | None = None,
        logits: bool = True,
        threshold: float = 0.5,
        synthetic: bool = False,
        spatial_size: int = 224,
        write_heatmap: bool = True,
        heat_key: str = "gradcam_map",
        save_rank: int = 0,
        name: str | None = None,
    ) -> None:
        super().__init__(output_dir, save_rank=save_rank, name=name)
        self.rows_writer = BonePredictionWriter(
            output_dir,
            task=task,
            ref_mean=ref_mean,
            ref_sd=ref_sd,
            labels=labels,
            screening_threshold=screening_threshold,
            logits=logits,
            threshold=threshold,
        )
        self.task = task
        self.algorithm = bundle_algorithm(bundle_root, weights)
        self.reference = {"ref_mean": ref_mean, "ref_sd": ref_sd, "screening_threshold": screening_threshold}
        self.synthetic = bool(synthetic)
        self.spatial_size = int(spatial_size)
        self.write_heatmap = bool(write_heatmap)
        self.heat_key = heat_key

    def make_row(self, batch_item: Mapping, output_item: Mapping) -> dict[str, Any]:
        """Write the DICOM objects of one study; the row names them (or says why there are none).

        A study whose objects cannot be made (e.g. a header missing a UID) gets an ``error`` and is logged; the run
        goes on.
        """
        try:
            return self._write_study(batch_item, output_item)
        except (ValueError, KeyError, AttributeError, TypeError, OSError) as err:
            study = Path(self._filename(batch_item, output_item)).name
            self.logger.error("%s: DICOM results not written: %s", study, err)
            return {"error": f"DICOM results not written: {err}"}

    def _write_study(self, batch_item: Mapping, output_item: Mapping) -> dict[str, Any]:
        import pydicom
        from pydicom.errors import InvalidDicomError

        source_file = self._filename(batch_item, output_item)
        values = self.rows_writer.make_row(batch_item, output_item)
        try:
            header = pydicom.dcmread(source_file, stop_before_pixels=True)
            sop = str(header.SOPInstanceUID)
        except (InvalidDicomError, AttributeError, OSError, ValueError):
            return {"skipped": "the source is not a DICOM image: no study to attach an SR to"}
        synthetic = self.synthetic or is_synthetic_dataset(header)
        heat = output_item.get(self.heat_key)
        region, heat_src = None, None
        if heat is not None:
            shape = (int(header.Rows), int(header.Columns))
            # with an ROI the map covers only the crop's window of the source (RoiCrop's meta says where)
            heat_src = heat_to_source(np.asarray(heat), shape, self.spatial_size, roi_box_of(batch_item))
            region = top_region(heat_src)
        row: dict[str, Any] = {"study_uid": str(header.StudyInstanceUID), "sop_uid": sop}
        sr = build_sr(header, values, self.task, self.algorithm, synthetic, self.reference, region)
        row["sr"] = str(write_dataset(sr, self.output_dir / f"{sop}_sr.dcm"))
        row["sr_uid"] = str(sr.SOPInstanceUID)
        if heat_src is not None and self.write_heatmap:
            sc = heatmap_secondary_capture(pydicom.dcmread(source_file), heat_src, self.algorithm, self.task, synthetic)
            row["heatmap"] = str(write_dataset(sc, self.output_dir / f"{sop}_heatmap.dcm"))
        return row

    def write(self, rows: list[dict[str, Any]], engine: Engine) -> None:
        """Write ``dicom_outputs.json`` (on ``save_rank``)."""
        doc = {
            "task": self.task,
            "algorithm": {"name": self.algorithm.name, "version": self.algorithm.version},
            "weights_sha256": self.algorithm.weights_sha256,
            "n_sr": sum(1 for r in rows if r.get("sr")),
            "studies": rows,
        }
        self.output_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(Path(self.output_dir) / DICOM_OUTPUTS, json_safe(doc))
        self.logger.info("%s: %d DICOM SR files -> %s", self.task, doc["n_sr"], self.output_dir)
