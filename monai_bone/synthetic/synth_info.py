"""cohort.json and the realism.csv ground-truth sidecar of a synthetic cohort (``synth.synthesize``).

``realism.csv`` (first line ``# <synthetic note>``) has one row per image file: ``PatientID``, ``file`` (relative
path), and the image's realism factors (:data:`REALISM_COLUMNS`; :mod:`monai_bone.synthetic.realism` defines them):
booleans as 0/1, lists joined by ``;``. KOP exports add the file encoding (``format``, ``mode``, ``scale``,
``quality``) and ``duplicate_of`` for re-encoded copies; DICOM exports add ``photometric``. The simple preset
leaves the realism columns empty.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from monai_bone._version import __version__
from monai_bone.constants import (
    CLINICAL_FIELDS,
    FIELD_UNITS,
    REFERENCE_MEAN,
    REFERENCE_SD,
    SCREENING_THRESHOLD,
    SYNTHETIC_NOTE,
)
from monai_bone.synthetic.cohort import BMD_FORMULA, Cohort
from monai_bone.synthetic.kop_export import KopStyle
from monai_bone.synthetic.phantom import FIELD_OF_VIEW_MM, PhantomImage
from monai_bone.synthetic.realism import FACTOR_KEYS, RealismRates
from monai_bone.tasks import get_task
from monai_bone.utils.io import atomic_write_csv

__all__ = [
    "MONOCHROME1_SHARE",
    "REALISM_COLUMNS",
    "WINDOW_SHARE",
    "cohort_json",
    "log_summary",
    "realism_counts",
    "realism_row",
    "write_realism_csv",
]

logger = logging.getLogger(__name__)

#: Per-image columns of realism.csv taken from the phantom's realism factors, in order.
REALISM_COLUMNS: tuple[str, ...] = (
    "laterality",
    *FACTOR_KEYS,
    "oa_grade",
    "metal_kind",
    "burned_in",
    "collimated_sides",
    "voi_function",
    "kvp",
    "mas",
    "spr",
    "gain",
    "offset",
    "unsharp_amount",
    "unsharp_mm",
    "tone",
    "tone_param",
    "rotation_deg",
    "femoral_rotation_deg",
    "abduction_deg",
    "knee_rotation_deg",
    "rows",
    "cols",
    "pixel_spacing_mm",
    "aspect",
    "zoom",
    "marrow",
    "texture_amplitude",
    "cortical_density",
    "anisotropy",
    "roi_row",
    "roi_col",
)
_FILE_COLUMNS = ("photometric", "format", "mode", "scale", "quality", "duplicate_of")
#: Share of DICOM files written MONOCHROME1 (exactly ``round(share * n)`` files).
MONOCHROME1_SHARE: float = 0.15
#: Probability that a ``"simple"``-preset DICOM file carries its own WindowCenter/WindowWidth (the others get the
#: writer's 1st-99th percentile window: a DX "For Presentation" file must carry a VOI transform).
WINDOW_SHARE: float = 0.5


def _cell(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (list, tuple)):
        return ";".join(str(v) for v in value)
    return value


def realism_row(image: PhantomImage) -> dict[str, Any]:
    """The realism.csv columns of one rendered image (empty for the simple preset)."""
    factors = image.params.get("realism")
    if not factors:
        return {"laterality": image.laterality}
    return {k: _cell(factors.get(k, "")) for k in REALISM_COLUMNS}


def realism_counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    """How many original images (not duplicates) carry each boolean realism factor."""
    originals = [r for r in rows if not r.get("duplicate_of")]
    return {k: sum(int(r.get(k) or 0) for r in originals) for k in FACTOR_KEYS}


def write_realism_csv(path: str | os.PathLike, rows: list[dict[str, Any]]) -> Path:
    """Write the realism.csv sidecar (module docstring)."""
    extra = [c for c in _FILE_COLUMNS if any(c in r for r in rows)]
    columns = ["PatientID", "file", *extra, *REALISM_COLUMNS]
    atomic_write_csv(path, [{c: r.get(c, "") for c in columns} for r in rows], columns, comment=SYNTHETIC_NOTE)
    return Path(path)


def cohort_json(
    cohort: Cohort,
    *,
    size: int,
    fmt: str,
    clinical_fields: list[str],
    preset: str = "realistic",
    rates: RealismRates | None = None,
    kop_style: KopStyle | None = None,
) -> dict[str, Any]:
    """The ``cohort.json`` dictionary of a synthesised cohort (before the per-file counts are added).

    Longer than most functions because it is one literal dictionary: the file's documented layout, read top to bottom.
    """
    realistic = preset == "realistic"

    summary = cohort.summary()
    task = cohort.task
    info: dict[str, Any] = {
        "synthetic": True,
        "note": SYNTHETIC_NOTE,
        "generator": f"monai-bone {__version__}",
        "task": task,
        "seed": cohort.seed,
        "n": len(cohort),
        "format": fmt,
        "size": size,
        "n_classes": cohort.n_classes,
        "labels": list(cohort.labels),
        "label_rule": (
            f"label = 1 when bmd < {SCREENING_THRESHOLD} g/cm^2 (screening threshold, T = -1)"
            if get_task(task).is_regression
            else "label = index into labels of the WHO class of the T-score; "
            + (
                "osteopenia candidates re-drawn, quotas n - n//2 normal, n//2 osteoporosis"
                if cohort.n_classes == 2
                else "quotas of n/3 per class (remainder to normal, then osteopenia)"
            )
        ),
        "formula": BMD_FORMULA,
        "t_score": {"reference_mean": REFERENCE_MEAN, "reference_sd": REFERENCE_SD, "formula": "(bmd - mean) / sd"},
        "oracle_r2": summary["oracle_r2"],
        "clinical_r2": summary["clinical_r2"],
        "image_only_r2": summary["image_only_r2"],
        "sample_ceilings": {
            k: summary["counts"].get(f"sample_{k}") for k in ("oracle_r2", "clinical_r2", "image_only_r2")
        },
        "oracle_method": "population values: var(f) from a fixed 200000-subject Monte-Carlo sample of the clinical "
        "distribution, noise variances exact; oracle_r2 = 1 - sigma_invisible^2/var(bmd) (best predictor "
        "E[bmd | clinical, image] = f + u_visible), clinical_r2 = var(f)/var(bmd) (best clinical-only predictor f), "
        "image_only_r2 = var(f + u_visible)/var(bmd) (best image-only predictor bmd_visible = f + u_visible, which "
        "the phantom renders whole as bone structure, so it equals oracle_r2); sample_ceilings: the same predictors "
        "on this cohort, 1 - mean((bmd - predictor)^2)/var(bmd)",
        "population": summary["population"],
        "parameters": {
            "cohort": cohort.params.to_dict(),
            "preset": preset,
            "field_of_view_mm": "varies (realism.csv)" if realistic else FIELD_OF_VIEW_MM[task],
            "pixel_spacing_mm": "varies (realism.csv)" if realistic else round(FIELD_OF_VIEW_MM[task] / size, 6),
            "monochrome1_share": MONOCHROME1_SHARE if fmt == "dicom" else 0.0,
            "window_share": (1.0 if realistic else WINDOW_SHARE) if fmt == "dicom" else 0.0,
            "png_bits": 8 if fmt == "kop" else None,
            "realism_rates": (rates or RealismRates()).to_dict() if realistic else None,
            "kop_style": (kop_style or KopStyle()).to_dict() if realistic and fmt == "kop" else None,
        },
        "counts": summary["counts"],
        "fields": {"clinical_csv": clinical_fields, "units": {f: FIELD_UNITS[f] for f in CLINICAL_FIELDS}},
        "files": {
            "images": "dicom/<PatientID>/<PatientID>_AP.dcm"
            if fmt == "dicom"
            else (
                "<label>/<PatientID>.jpg|.png (8-bit, JPEG grey or RGB, PNG grey, varying sizes; duplicates "
                "<PatientID>_dup.*)"
                if realistic
                else "<label>/<PatientID>.png (8-bit grayscale)"
            ),
            "realism": "realism.csv",
            "clinical": "clinical.csv",
            "ground_truth": "ground_truth.csv",
        },
    }
    if "reference_accuracy" in summary:
        info["reference_accuracy"] = summary["reference_accuracy"]
        info["reference_accuracy_method"] = (
            "balanced accuracy of classifying by the T-score of bmd_visible (cut at T = -1.75 for 2 classes, WHO cuts "
            "for 3), Monte-Carlo on the population model"
        )
    return info


def log_summary(info: dict[str, Any], out: Path) -> None:
    c = info["counts"]
    logger.info(
        "SYNTHETIC %s cohort (not real patients): %d subjects (%d F / %d M), seed %d, %s -> %s",
        info["task"],
        c["subjects"],
        c["female"],
        c["male"],
        info["seed"],
        info["format"],
        out,
    )
    logger.info(
        "SYNTHETIC BMD: below %.3f g/cm^2: %d (%.1f %%); WHO classes %s; labels %s",
        SCREENING_THRESHOLD,
        c["below_threshold"],
        100.0 * c["share_below_threshold"],
        c["who_class"],
        c["label"],
    )
    logger.info(
        "SYNTHETIC accuracy ceiling: oracle R^2 %.3f (clinical-only %.3f, image-only %.3f)%s; images: %s",
        info["oracle_r2"],
        info["clinical_r2"],
        info["image_only_r2"],
        f", reference accuracy {info['reference_accuracy']:.3f}" if "reference_accuracy" in info else "",
        f"{c['photometric']}, BitsStored {c['bits_stored']}" if "photometric" in c else "8-bit class folders",
    )
