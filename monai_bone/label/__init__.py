"""MONAI Label serving of the monai-bone bundles.

- :class:`BundlePredictor` -- one-study prediction with a bundle's own ``inference.json`` (no MONAI Label needed).
- :mod:`monai_bone.label.app` -- the MONAI Label app (``BoneLabelApp``) and its infer task; import it only where
  ``monailabel`` is installed (``pip install "monai-bone[label]"``).
- :mod:`monai_bone.label.server` -- preparing and starting ``monailabel start_server`` (``monai-bone label serve``).
"""

from __future__ import annotations

from .predictor import WRITER_SETTINGS, BundlePredictor, resolve_bundle
from .request import PredictionError, StudyInput, clinical_from_request, find_study_file, study_input

__all__ = [
    "WRITER_SETTINGS",
    "BundlePredictor",
    "PredictionError",
    "StudyInput",
    "clinical_from_request",
    "find_study_file",
    "resolve_bundle",
    "study_input",
]
