"""MONAI Label infer task of a monai-bone bundle: JSON predictions, no segmentation post-restore.

MONAI Label's generic ``BundleInferTask`` appends segmentation-style restore/write steps and returns a label image;
the monai-bone models return numbers (a class probability, a BMD), so :class:`BoneInferTask` implements MONAI Label's
``InferTask`` interface directly around a :class:`~monai_bone.label.predictor.BundlePredictor` and returns
``(None, result_json)`` -- MONAI Label then answers the request with the JSON alone.

With ``"sr": true`` in the request ``params`` the task also writes the DICOM SR of the prediction (a Comprehensive 3D
SR, :func:`monai_bone.results.build_sr`, for a DICOM input) and returns it as the result file: ``output=image``
downloads the SR, ``output=all`` gives the JSON and the SR in one multipart answer, and the JSON names it under
``"sr"`` -- a viewer can show a number or a class only through such an object.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import pydicom
from monailabel.interfaces.tasks.infer_v2 import InferTask, InferType
from pydicom.errors import InvalidDicomError

from monai_bone.results import build_sr, bundle_algorithm, write_dataset

from .predictor import BundlePredictor
from .request import PredictionError, find_study_file

__all__ = ["BoneInferTask"]


class BoneInferTask(InferTask):
    """Classification-type infer task serving one bundle.

    Args:
        predictor: the loaded bundle.
        description: shown by MONAI Label clients (default from the task).

    Request parameters (``params`` of ``POST /infer/<model>``): hip clinical values by field name, top level or under
    ``"clinical"`` (see :func:`monai_bone.label.request.clinical_from_request`); other keys are ignored.
    """

    def __init__(self, predictor: BundlePredictor, description: str | None = None) -> None:
        if description is None:
            description = (
                "Femoral-neck BMD (g/cm^2), T-score, WHO class and per-field metadata attention from a hip radiograph "
                "plus clinical fields (DICOM header and request params)"
                if predictor.spec.is_regression
                else "Osteoporosis vs normal from a knee radiograph (DenseNet169 + channel/spatial attention)"
            )
        super().__init__(
            type=InferType.CLASSIFICATION,
            labels=predictor.labels,
            dimension=2,
            description=description,
            config={"clinical_fields": ",".join(predictor.fields)} if predictor.fields else None,
        )
        self.predictor = predictor

    def info(self) -> dict[str, Any]:
        """MONAI Label's task info plus what the bundle predicts (``/info/`` lists it under ``models``)."""
        return {**super().info(), "monai_bone": self.predictor.info()}

    def is_valid(self) -> bool:
        """A loaded predictor is always valid (loading fails loudly at start-up instead)."""
        return True

    def __call__(self, request: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
        """Predict ``request["image"]`` (a resolved file or series folder) with the request's clinical params.

        Returns:
            ``(None, result)``, or ``(SR file, result)`` when the request asks for ``"sr": true``.

        Raises:
            monai_bone.label.request.PredictionError: with the 4xx status of an unusable request (400 for an SR
                asked of a PNG/JPEG input).
        """
        result = self.predictor.predict(request["image"], request)
        if str(request.get("sr", "")).lower() not in ("true", "1", "yes"):
            return None, result
        path = self.write_sr(request["image"], result)
        result["sr"] = {"file": os.path.basename(path), "media_type": "application/dicom"}
        return path, result

    def write_sr(self, image: str, result: dict[str, Any]) -> str:
        """Write the SR of ``result`` (made on ``image``) to a temporary file; MONAI Label deletes it once sent."""
        source = find_study_file(image)
        try:
            header = pydicom.dcmread(source, stop_before_pixels=True)
        except (InvalidDicomError, OSError):
            raise PredictionError(f"{source.name}: an SR needs a DICOM input (this is not DICOM)", 400) from None
        writer = self.predictor.writer
        reference = {
            "ref_mean": writer.ref_mean,
            "ref_sd": writer.ref_sd,
            "screening_threshold": writer.screening_threshold,
        }
        algorithm = bundle_algorithm(self.predictor.bundle_dir)
        sr = build_sr(header, result, self.predictor.task, algorithm, bool(result.get("synthetic")), reference)
        fd, path = tempfile.mkstemp(prefix="monai_bone_sr_", suffix=".dcm")
        os.close(fd)
        return str(write_dataset(sr, path))
