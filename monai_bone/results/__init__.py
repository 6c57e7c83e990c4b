"""Results out of monai-bone into the hospital: DICOM SR and heat-map objects, and the PACS round trip.

- :mod:`~monai_bone.results.sr` -- Comprehensive 3D SR (TID 1500) of one prediction, built with highdicom.
- :mod:`~monai_bone.results.heatmap` -- Grad-CAM heat map in source geometry, its salient region, a Secondary Capture.
- :mod:`~monai_bone.results.handler` -- :class:`DicomResultsSaver`, the Ignite handler ``inference.json`` attaches
  when ``write_sr`` is true.
- :mod:`~monai_bone.results.shards` -- sharded, resumable ``torchrun`` inference (``multi_gpu_inference.json``).
- :mod:`~monai_bone.results.watch` -- ``monai-bone watch``: poll a DICOMweb server, infer, store the results back.
"""

from __future__ import annotations

from .algorithm import AlgorithmInfo, bundle_algorithm
from .handler import DICOM_OUTPUTS, DicomResultsSaver, is_synthetic_dataset
from .heatmap import heat_to_source, heatmap_secondary_capture, top_region
from .shards import ShardedPredictionWriter, distributed_datalist, shard_records
from .sr import build_sr, read_sr_values, write_dataset

__all__ = [
    "DICOM_OUTPUTS",
    "AlgorithmInfo",
    "DicomResultsSaver",
    "ShardedPredictionWriter",
    "build_sr",
    "distributed_datalist",
    "bundle_algorithm",
    "heat_to_source",
    "heatmap_secondary_capture",
    "is_synthetic_dataset",
    "read_sr_values",
    "shard_records",
    "top_region",
    "write_dataset",
]
