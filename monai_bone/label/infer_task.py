"""MONAI Label infer task of a monai-bone bundle: JSON predictions, no segmentation post-restore.

MONAI Label's generic ``BundleInferTask`` appends segmentation-style restore/write steps and returns a label image;
the monai-bone models return numbers (a class probability, a BMD), so :class:`BoneInferTask` implements MONAI Label's
``InferTask`` interface directly around a :class:`~monai_bone.label.predictor.BundlePredictor` and returns
``(None, result_json)`` -- MONAI Label then answers the request with the JSON alone.
"""

from __future__ import annotations

from typing import Any

from monailabel.interfaces.tasks.infer_v2 import InferTask, InferType

from .predictor import BundlePredictor

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
                if predictor.task == "hip"
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

    def __call__(self, request: dict[str, Any]) -> tuple[None, dict[str, Any]]:
        """Predict ``request["image"]`` (a resolved file or series folder) with the request's clinical params.

        Raises:
            monai_bone.label.request.PredictionError: with the 4xx status of an unusable request.
        """
        return None, self.predictor.predict(request["image"], request)
