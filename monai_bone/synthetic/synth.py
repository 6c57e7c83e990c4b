"""Write a synthetic cohort to disk: DX DICOM files or KOP-style PNG class folders, plus CSV/JSON ground truth.

Everything written here is SYNTHETIC and labelled so: DICOM ImageComments, the ``# ...`` first line of each CSV,
a ``Comment`` text chunk in each PNG and ``"synthetic": true`` / ``"note"`` in ``cohort.json`` carry
:data:`~monai_bone.constants.SYNTHETIC_NOTE`.

Output folder of :func:`synthesize` (see ``docs/interfaces.md``):

Phantoms come from the ``"realistic"`` preset by default (:mod:`monai_bone.synthetic.phantom_real`: BMD in bone
structure, acquisition/processing/pose/findings varying per image, :mod:`monai_bone.synthetic.realism`);
``preset="simple"`` keeps the earlier fixed-field look (fast, BMD visible in brightness) for speed tests. Knee cohorts
have 3 classes (normal / osteopenia / osteoporosis) by default with the realistic preset.

* ``fmt="dicom"``: ``dicom/<PatientID>/<PatientID>_AP.dcm`` -- DX For Presentation (valid for ``dciodvfy``),
  BodyPartExamined HIP/KNEE, PatientAge/Sex/Size/Weight, PixelSpacing + ImagerPixelSpacing, BitsStored 12-16, ~15 %
  MONOCHROME1 (exactly ``round(0.15 n)`` files), identity RescaleSlope/Intercept, a VOI window on every file
  (realistic: the image's window, LINEAR or SIGMOID, sometimes with a VOI LUT Sequence holding the tone curve;
  BurnedInAnnotation YES for images with a marker or text).
* ``fmt="kop"`` (knee only): class folders ``normal/``, ``osteopenia/``, ``osteoporosis/`` of 8-bit images, bone
  bright, scaled from the 0.5-99.5th percentile; the file stem is the PatientID. Realistic preset: mixed JPEG (grey
  or RGB) and PNG, varying sizes, a few re-encoded duplicates ``<PatientID>_dup.*``
  (:mod:`monai_bone.synthetic.kop_export`); simple preset: one grey PNG per subject.
* ``clinical.csv``: ``PatientID`` + the clinical fields a DICOM header does not supply (``age_bmd, bmi, alcohol,
  activity, diet_score, smoking``); for ``fmt="kop"`` (no header) all :data:`~monai_bone.constants.CLINICAL_FIELDS`.
* ``ground_truth.csv``: ``PatientID, bmd, t_score, who_class, label``.
* ``realism.csv``: the ground-truth sidecar, one row per image file with its realism factors
  (:mod:`monai_bone.synthetic.synth_info`).
* ``cohort.json``: seed, parameters (preset, realism rates), formula, the accuracy ceilings (oracle, clinical-only,
  image-only R^2; population and sample), counts (including each realism factor), ``"synthetic": true``.

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
    SYNTHETIC_NOTE,
)
from monai_bone.synthetic.cohort import TASK_CODES, TASKS, Subject, sample_cohort
from monai_bone.synthetic.dicom_writer import write_dx
from monai_bone.synthetic.kop_export import KopStyle, draw_kop_style, encode_kop, to_8bit
from monai_bone.synthetic.phantom import PRESETS, PhantomImage, render_phantom
from monai_bone.synthetic.realism import RealismRates
from monai_bone.synthetic.synth_info import (
    MONOCHROME1_SHARE,
    WINDOW_SHARE,
    cohort_json,
    log_summary,
    realism_counts,
    realism_row,
    write_realism_csv,
)
from monai_bone.tasks import get_task
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
#: BodyPartExamined per task (the first accepted body part of the task registry: HIP, KNEE).
BODY_PARTS: dict[str, str] = {name: get_task(name).body_parts[0] for name in TASKS}
_OUTPUT_FILES = ("clinical.csv", "ground_truth.csv", "cohort.json", "realism.csv")


def uid_seed_for(task: str, seed: int) -> str:
    """UID entropy of a synthetic cohort (distinct per task and seed)."""
    return f"monai-bone-synth-{task}-{int(seed)}"


def render_subject(
    subject: Subject,
    task: str,
    size: int = 1024,
    seed: int = 0,
    return_masks: bool = False,
    preset: str = "realistic",
    rates: RealismRates | None = None,
) -> PhantomImage:
    """Render the phantom radiograph of one cohort subject exactly as :func:`synthesize` does.

    Args:
        subject: a subject from :func:`~monai_bone.synthetic.cohort.sample_cohort` (its ``index`` picks the stream).
        task: ``"hip"`` or ``"knee"``.
        size: image side in pixels.
        seed: the cohort seed.
        return_masks: also return bone/trabecular/soft-tissue masks.
        preset: phantom preset (:data:`~monai_bone.synthetic.phantom.PRESETS`).
        rates: realistic preset: rates of the realism factors.

    Returns:
        The :class:`~monai_bone.synthetic.phantom.PhantomImage` (deterministic for the same arguments).
    """
    ss = np.random.SeedSequence([int(seed), TASK_CODES[task], int(subject.index), 1])
    return render_phantom(
        task,
        subject.bmd_visible,
        subject.bmi,
        size=size,
        seed=ss,
        return_masks=return_masks,
        preset=preset,
        rates=rates,
    )


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
        window: write the image's suggested WindowCenter/WindowWidth (always for the realistic preset; otherwise
            the writer's percentile window).
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
        window=image.window if window or image.params.get("preset") == "realistic" else None,
        voi_function=image.voi_function,
        voi_lut=image.voi_lut,
        burned_in=image.burned_in,
    )


def to_png_bytes(pixels: np.ndarray, percentiles: tuple[float, float] = (0.5, 99.5)) -> bytes:
    """Encode a MONOCHROME2-convention image as an 8-bit grayscale PNG labelled synthetic.

    Args:
        pixels: 2-D array (any numeric dtype), bone bright.
        percentiles: intensity percentiles mapped to 0 and 255.

    Returns:
        PNG file bytes (deterministic; a ``Comment`` text chunk holds the synthetic-data note).
    """
    img8 = to_8bit(pixels, percentiles)
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
    n_classes: int | None = None,
    progress: bool = True,
    *,
    overwrite: bool = False,
    preset: str = "realistic",
    rates: RealismRates | None = None,
    kop_style: KopStyle | None = None,
) -> dict[str, Any]:
    """Sample a synthetic cohort, render its radiographs and write the output folder (module docstring).

    Args:
        task: ``"hip"`` or ``"knee"``.
        n: number of subjects (>= 1).
        out_dir: output folder (created; must be empty unless ``overwrite``).
        seed: random seed: the same seed gives byte-identical files, different seeds different cohorts.
        size: image side in pixels (>= 64; 512-2048 typical); the long side for the realistic preset.
        fmt: ``"dicom"`` or ``"kop"`` (knee only).
        n_classes: knee only, 2 or 3 classes (:func:`~monai_bone.synthetic.cohort.sample_cohort`); default 3 for the
            knee with the realistic preset (normal / osteopenia / osteoporosis), 2 otherwise.
        progress: show a tqdm progress bar.
        overwrite: replace a previous synthetic cohort in ``out_dir`` (only one with a synthetic cohort.json).
        preset: phantom preset, ``"realistic"`` (default) or ``"simple"``
            (:data:`~monai_bone.synthetic.phantom.PRESETS`).
        rates: realistic preset: rates of the realism factors (default
            :class:`~monai_bone.synthetic.realism.RealismRates`).
        kop_style: realistic preset with ``fmt="kop"``: file variation (default
            :class:`~monai_bone.synthetic.kop_export.KopStyle`).

    Returns:
        The dictionary written to ``cohort.json``.

    Raises:
        ValueError: for bad arguments or an unusable output folder.

    Longer than most functions: the per-subject loop keeps the cohort-level random assignments (MONOCHROME1 share,
    window, duplicates) and the counters for ``cohort.json`` in one place; rendering and writing are helpers.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {sorted(TASKS)}")
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")
    if preset not in PRESETS:
        raise ValueError(f"unknown phantom preset {preset!r}; expected one of {PRESETS}")
    spec = get_task(task)
    if fmt == "kop" and not spec.is_classification:
        raise ValueError("format 'kop' (class folders of PNG, like the Knee Osteoporosis dataset) is for task 'knee'")
    if int(size) < 64:
        raise ValueError(f"size must be at least 64 pixels, got {size}")
    if n_classes is None:
        n_classes = 3 if spec.is_classification and preset == "realistic" else 2
    size, seed = int(size), int(seed)
    realistic = preset == "realistic"
    rates = rates or RealismRates()
    kop_style = kop_style or KopStyle()
    cohort = sample_cohort(task, n, seed=seed, n_classes=n_classes)
    out = Path(out_dir)
    _prepare_out_dir(out, overwrite)

    code = TASK_CODES[task]
    assign = np.random.default_rng(np.random.SeedSequence([seed, code, 2]))
    n_mono1 = int(round(MONOCHROME1_SHARE * len(cohort))) if fmt == "dicom" else 0
    mono1 = set(assign.permutation(len(cohort))[:n_mono1].tolist())
    with_window = assign.random(len(cohort)) < WINDOW_SHARE
    n_dup = int(kop_style.duplicates * len(cohort)) if fmt == "kop" and realistic else 0
    duplicated = set(assign.permutation(len(cohort))[:n_dup].tolist())

    photometric_counts: Counter[str] = Counter()
    bits_counts: Counter[int] = Counter()
    sidecar: list[dict[str, Any]] = []
    for k, subject in enumerate(
        tqdm(cohort.subjects, desc=f"synth {task} (SYNTHETIC)", unit="img", disable=not progress, leave=False)
    ):
        image = render_subject(subject, task, size=size, seed=seed, preset=preset, rates=rates)
        bits_counts[image.bits_stored] += 1
        row: dict[str, Any] = {"PatientID": subject.patient_id}
        if fmt == "dicom":
            photometric = "MONOCHROME1" if k in mono1 else "MONOCHROME2"
            photometric_counts[photometric] += 1
            path = out / "dicom" / subject.patient_id / f"{subject.patient_id}_AP.dcm"
            write_subject_dx(
                path, subject, image, task=task, seed=seed, photometric=photometric, window=bool(with_window[k])
            )
            row.update(file=path.relative_to(out).as_posix(), photometric=photometric)
        elif realistic:
            folder = out / cohort.labels[subject.label]
            stream = np.random.default_rng(np.random.SeedSequence([seed, code, int(subject.index), 3]))
            encoding = draw_kop_style(stream, kop_style)
            data, suffix = encode_kop(image.pixels, encoding)
            atomic_write_bytes(folder / f"{subject.patient_id}{suffix}", data)
            row.update(file=f"{folder.name}/{subject.patient_id}{suffix}", **encoding)
            if k in duplicated:  # a re-encoded copy under another name, as the public downloads hold
                again = draw_kop_style(stream, kop_style)
                data, dup_suffix = encode_kop(image.pixels, again)
                name = f"{subject.patient_id}_dup{dup_suffix}"
                atomic_write_bytes(folder / name, data)
                sidecar.append({"PatientID": subject.patient_id, "file": f"{folder.name}/{name}", **again})
                sidecar[-1]["duplicate_of"] = row["file"]
        else:
            label_name = cohort.labels[subject.label]
            atomic_write_bytes(out / label_name / f"{subject.patient_id}.png", to_png_bytes(image.pixels))
            row["file"] = f"{label_name}/{subject.patient_id}.png"
        row.update(realism_row(image))
        sidecar.insert(len(sidecar) - (1 if k in duplicated else 0), row)

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
    write_realism_csv(out / "realism.csv", sidecar)
    info = cohort_json(
        cohort, size=size, fmt=fmt, clinical_fields=clinical_fields, preset=preset, rates=rates, kop_style=kop_style
    )
    info["counts"]["images"] = len(sidecar)
    info["counts"]["realism"] = realism_counts(sidecar)
    if fmt == "dicom":
        info["counts"].update(
            {
                "photometric": dict(sorted(photometric_counts.items())),
                "bits_stored": {str(b): c for b, c in sorted(bits_counts.items())},
                "with_window": len(cohort),
            }
        )
    else:
        info["counts"]["class_folders"] = dict(info["counts"]["label"])
        info["counts"]["duplicates"] = n_dup
    atomic_write_json(out / "cohort.json", info)
    log_summary(info, out)
    return info
