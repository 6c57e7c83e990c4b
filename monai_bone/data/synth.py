"""Write a synthetic cohort to disk: DX DICOM files or KOP-style PNG class folders, plus CSV/JSON ground truth.

Everything written here is SYNTHETIC and labelled so: DICOM ImageComments, the ``# ...`` first line of each CSV,
a ``Comment`` text chunk in each PNG and ``"synthetic": true`` / ``"note"`` in ``cohort.json`` carry
:data:`~monai_bone.constants.SYNTHETIC_NOTE`.

Output folder of :func:`synthesize` (see ``docs/interfaces.md``):

* ``fmt="dicom"``: ``dicom/<PatientID>/<PatientID>_AP.dcm`` -- DX For Presentation, BodyPartExamined HIP/KNEE,
  PatientAge/Sex/Size/Weight, PixelSpacing + ImagerPixelSpacing, BitsStored 12-16, ~15 % MONOCHROME1 (exactly
  ``round(0.15 n)`` files), identity RescaleSlope/Intercept on every file, WindowCenter/Width on about half.
* ``fmt="kop"`` (knee only): ``normal/<PatientID>.png``, ``osteoporosis/<PatientID>.png`` (``osteopenia/`` with
  3 classes) -- **8-bit** grayscale PNG, bone bright, scaled from the 0.5-99.5th percentile of the image (the KOP
  dataset itself is 8-bit). The file stem is the PatientID.
* ``clinical.csv``: ``PatientID`` + the clinical fields a DICOM header does not supply (``age_bmd, bmi, alcohol,
  activity, diet_score, smoking``); for ``fmt="kop"`` (no header) all :data:`~monai_bone.constants.CLINICAL_FIELDS`.
* ``ground_truth.csv``: ``PatientID, bmd, t_score, who_class, label``.
* ``cohort.json``: seed, parameters, formula, oracle R^2, counts, ``"synthetic": true``.

Reproducibility: every random draw comes from ``numpy.random.SeedSequence([seed, task code, ...])`` and no wall
clock, host name or path is written into a file, so the same arguments give byte-identical outputs.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, PngImagePlugin
from tqdm.auto import tqdm

from monai_bone.constants import (
    CLINICAL_FIELDS,
    DICOM_FIELDS,
    FIELD_UNITS,
    REFERENCE_MEAN,
    REFERENCE_SD,
    SCREENING_THRESHOLD,
    SYNTHETIC_NOTE,
)
from monai_bone.data.cohort import BMD_FORMULA, TASK_CODES, TASKS, Cohort, Subject, sample_cohort
from monai_bone.data.dicom_writer import write_dx
from monai_bone.data.phantom import FIELD_OF_VIEW_MM, PhantomImage, render_phantom
from monai_bone.utils.io import atomic_write_bytes, atomic_write_csv, atomic_write_json

__all__ = [
    "BODY_PARTS",
    "FORMATS",
    "MONOCHROME1_SHARE",
    "WINDOW_SHARE",
    "render_subject",
    "synthesize",
    "to_png_bytes",
    "uid_seed_for",
    "write_subject_dx",
]

logger = logging.getLogger(__name__)

#: Output formats of :func:`synthesize`.
FORMATS: tuple[str, ...] = ("dicom", "kop")
#: BodyPartExamined per task.
BODY_PARTS: dict[str, str] = {"hip": "HIP", "knee": "KNEE"}
#: Share of DICOM files written MONOCHROME1 (exactly ``round(share * n)`` files).
MONOCHROME1_SHARE: float = 0.15
#: Probability that a DICOM file carries WindowCenter/WindowWidth.
WINDOW_SHARE: float = 0.5
_OUTPUT_FILES = ("clinical.csv", "ground_truth.csv", "cohort.json")


def uid_seed_for(task: str, seed: int) -> str:
    """UID entropy of a synthetic cohort (distinct per task and seed)."""
    return f"monai-bone-synth-{task}-{int(seed)}"


def render_subject(
    subject: Subject, task: str, size: int = 1024, seed: int = 0, return_masks: bool = False
) -> PhantomImage:
    """Render the phantom radiograph of one cohort subject exactly as :func:`synthesize` does.

    Args:
        subject: a subject from :func:`~monai_bone.data.cohort.sample_cohort` (its ``index`` picks the stream).
        task: ``"hip"`` or ``"knee"``.
        size: image side in pixels.
        seed: the cohort seed.
        return_masks: also return bone/trabecular/soft-tissue masks.

    Returns:
        The :class:`~monai_bone.data.phantom.PhantomImage` (deterministic for the same arguments).
    """
    ss = np.random.SeedSequence([int(seed), TASK_CODES[task], int(subject.index), 1])
    return render_phantom(task, subject.bmd_visible, subject.bmi, size=size, seed=ss, return_masks=return_masks)


def write_subject_dx(
    path: str | os.PathLike,
    subject: Subject,
    image: PhantomImage,
    *,
    task: str,
    seed: int = 0,
    photometric: str = "MONOCHROME2",
    window: bool = False,
    uid_seed: str | None = None,
) -> Path:
    """Write one subject's rendered phantom as a DX DICOM file (the same tags :func:`synthesize` writes).

    Writing the same ``image`` once with ``photometric="MONOCHROME2"`` and once with ``"MONOCHROME1"`` gives two
    files whose stored values are exact inverses (``2**BitsStored - 1 - value``); pass different ``uid_seed`` values
    when both files must coexist in one indexed folder.

    Args:
        path: destination ``.dcm`` file.
        subject: the subject (PatientID, age, sex, height, weight).
        image: its rendered phantom.
        task: ``"hip"`` or ``"knee"`` (BodyPartExamined).
        seed: the cohort seed (default UID entropy).
        photometric: ``"MONOCHROME2"`` or ``"MONOCHROME1"``.
        window: write the image's suggested WindowCenter/WindowWidth.
        uid_seed: UID entropy; default :func:`uid_seed_for` ``(task, seed)``.

    Returns:
        The path written.
    """
    return write_dx(
        path,
        image.pixels,
        patient_id=subject.patient_id,
        body_part=BODY_PARTS[task],
        sex=subject.sex,
        age_years=subject.age_xray,
        height_m=subject.height,
        weight_kg=subject.weight,
        photometric=photometric,
        bits_stored=image.bits_stored,
        pixel_spacing_mm=image.pixel_spacing_mm,
        uid_seed=uid_seed or uid_seed_for(task, seed),
        laterality=image.laterality,
        rescale=(1.0, 0.0),
        window=image.window if window else None,
    )


def to_png_bytes(pixels: np.ndarray, percentiles: tuple[float, float] = (0.5, 99.5)) -> bytes:
    """Encode a MONOCHROME2-convention image as an 8-bit grayscale PNG labelled synthetic.

    Args:
        pixels: 2-D array (any numeric dtype), bone bright.
        percentiles: intensity percentiles mapped to 0 and 255.

    Returns:
        PNG file bytes (deterministic; a ``Comment`` text chunk holds the synthetic-data note).
    """
    arr = np.asarray(pixels, dtype=np.float32)
    lo, hi = np.percentile(arr, percentiles)
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    img8 = np.clip(np.rint((arr - lo) * scale), 0, 255).astype(np.uint8)
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", SYNTHETIC_NOTE)
    info.add_text("Software", "monai-bone synthetic phantom")
    buf = io.BytesIO()
    Image.fromarray(img8, mode="L").save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def _prepare_out_dir(out: Path, overwrite: bool) -> None:
    """Create ``out``; refuse a non-empty folder unless ``overwrite`` and it holds a previous synthetic cohort."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"output path {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        marker = out / "cohort.json"
        if not overwrite:
            raise ValueError(f"output folder {out} is not empty; choose a new folder or pass overwrite=True")
        try:
            previous = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            previous = None
        if not (isinstance(previous, dict) and previous.get("synthetic") is True):
            raise ValueError(
                f"refusing to overwrite {out}: it does not hold a monai-bone synthetic cohort (cohort.json)"
            )
        for name in ("dicom", "normal", "osteopenia", "osteoporosis"):
            if (out / name).is_dir():
                shutil.rmtree(out / name)
        for name in _OUTPUT_FILES:
            (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)


def synthesize(
    task: str,
    n: int,
    out_dir: str | os.PathLike,
    seed: int = 0,
    size: int = 1024,
    fmt: str = "dicom",
    n_classes: int = 2,
    progress: bool = True,
    *,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Sample a synthetic cohort, render its radiographs and write the output folder (module docstring).

    Args:
        task: ``"hip"`` or ``"knee"``.
        n: number of subjects (>= 1).
        out_dir: output folder (created; must be empty unless ``overwrite``).
        seed: random seed: the same seed gives byte-identical files, different seeds different cohorts.
        size: image side in pixels (>= 64; 512-2048 typical).
        fmt: ``"dicom"`` or ``"kop"`` (knee only).
        n_classes: knee only, 2 or 3 classes (:func:`~monai_bone.data.cohort.sample_cohort`).
        progress: show a tqdm progress bar.
        overwrite: replace a previous synthetic cohort in ``out_dir`` (only one with a synthetic cohort.json).

    Returns:
        The dictionary written to ``cohort.json``.

    Raises:
        ValueError: for bad arguments or an unusable output folder.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {sorted(TASKS)}")
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")
    if fmt == "kop" and task != "knee":
        raise ValueError("format 'kop' (class folders of PNG, like the Knee Osteoporosis dataset) is for task 'knee'")
    if int(size) < 64:
        raise ValueError(f"size must be at least 64 pixels, got {size}")
    size, seed = int(size), int(seed)
    cohort = sample_cohort(task, n, seed=seed, n_classes=n_classes)
    out = Path(out_dir)
    _prepare_out_dir(out, overwrite)

    code = TASK_CODES[task]
    assign = np.random.default_rng(np.random.SeedSequence([seed, code, 2]))
    n_mono1 = int(round(MONOCHROME1_SHARE * len(cohort))) if fmt == "dicom" else 0
    mono1 = set(assign.permutation(len(cohort))[:n_mono1].tolist())
    with_window = assign.random(len(cohort)) < WINDOW_SHARE

    photometric_counts: Counter[str] = Counter()
    bits_counts: Counter[int] = Counter()
    windowed = 0
    for k, subject in enumerate(
        tqdm(cohort.subjects, desc=f"synth {task} (SYNTHETIC)", unit="img", disable=not progress, leave=False)
    ):
        image = render_subject(subject, task, size=size, seed=seed)
        bits_counts[image.bits_stored] += 1
        if fmt == "dicom":
            photometric = "MONOCHROME1" if k in mono1 else "MONOCHROME2"
            photometric_counts[photometric] += 1
            windowed += bool(with_window[k])
            path = out / "dicom" / subject.patient_id / f"{subject.patient_id}_AP.dcm"
            write_subject_dx(
                path, subject, image, task=task, seed=seed, photometric=photometric, window=bool(with_window[k])
            )
        else:
            label_name = cohort.labels[subject.label]
            atomic_write_bytes(out / label_name / f"{subject.patient_id}.png", to_png_bytes(image.pixels))

    clinical_fields = list(CLINICAL_FIELDS) if fmt == "kop" else [f for f in CLINICAL_FIELDS if f not in DICOM_FIELDS]
    atomic_write_csv(
        out / "clinical.csv",
        cohort.clinical_rows(clinical_fields),
        ["PatientID", *clinical_fields],
        comment=SYNTHETIC_NOTE,
    )
    atomic_write_csv(
        out / "ground_truth.csv",
        cohort.ground_truth_rows(),
        ["PatientID", "bmd", "t_score", "who_class", "label"],
        comment=SYNTHETIC_NOTE,
    )
    info = _cohort_json(cohort, size=size, fmt=fmt, clinical_fields=clinical_fields)
    info["counts"]["images"] = len(cohort)
    if fmt == "dicom":
        info["counts"].update(
            {
                "photometric": dict(sorted(photometric_counts.items())),
                "bits_stored": {str(b): c for b, c in sorted(bits_counts.items())},
                "with_window": windowed,
            }
        )
    else:
        info["counts"]["class_folders"] = dict(info["counts"]["label"])
    atomic_write_json(out / "cohort.json", info)
    _log_summary(info, out)
    return info


def _cohort_json(cohort: Cohort, *, size: int, fmt: str, clinical_fields: list[str]) -> dict[str, Any]:
    from monai_bone import __version__

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
            if task == "hip"
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
        "oracle_method": "population values: var(f) from a fixed 200000-subject Monte-Carlo sample of the clinical "
        "distribution, noise variances exact; oracle_r2 = 1 - sigma_invisible^2/var(bmd), "
        "clinical_r2 = var(f)/var(bmd)",
        "population": summary["population"],
        "parameters": {
            "cohort": cohort.params.to_dict(),
            "field_of_view_mm": FIELD_OF_VIEW_MM[task],
            "pixel_spacing_mm": round(FIELD_OF_VIEW_MM[task] / size, 6),
            "monochrome1_share": MONOCHROME1_SHARE if fmt == "dicom" else 0.0,
            "window_share": WINDOW_SHARE if fmt == "dicom" else 0.0,
            "png_bits": 8 if fmt == "kop" else None,
        },
        "counts": summary["counts"],
        "fields": {"clinical_csv": clinical_fields, "units": {f: FIELD_UNITS[f] for f in CLINICAL_FIELDS}},
        "files": {
            "images": "dicom/<PatientID>/<PatientID>_AP.dcm"
            if fmt == "dicom"
            else "<label>/<PatientID>.png (8-bit grayscale)",
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


def _log_summary(info: dict[str, Any], out: Path) -> None:
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
        "SYNTHETIC accuracy ceiling: oracle R^2 %.3f (clinical-only %.3f)%s; images: %s",
        info["oracle_r2"],
        info["clinical_r2"],
        f", reference accuracy {info['reference_accuracy']:.3f}" if "reference_accuracy" in info else "",
        f"{c['photometric']}, BitsStored {c['bits_stored']}" if "photometric" in c else "8-bit PNG class folders",
    )
