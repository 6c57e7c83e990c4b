"""Synthetic cohorts: subjects sampled from the population model, with their labels. SYNTHETIC.

All data made here are SYNTHETIC (:data:`~monai_bone.constants.SYNTHETIC_NOTE`); the numbers are plausible, not
fitted to any real cohort.

Clinical fields (names and units from :data:`~monai_bone.constants.CLINICAL_FIELDS` /
:data:`~monai_bone.constants.FIELD_UNITS`) are drawn per subject: sex (Bernoulli), age at the radiograph (truncated
normal), age at the DXA scan (radiograph age + a small gap), height (normal by sex), BMI (normal by sex, clipped),
weight = BMI x height^2, alcohol units/week (zero-inflated gamma), activity hours/week (gamma), prudent diet score
(normal z-score), smoking (categorical by sex). Values are rounded as they are written (height 0.01 m, weight 0.1 kg,
BMI 0.01, ages 0.1 y, alcohol/activity 0.5, diet 0.01) *before* BMD is computed, so the files hold exactly the
inputs of the formula.

BMD is computed from the fields by the model in :mod:`monai_bone.synthetic.population` (formula, noise terms and the
oracle / clinical-only / image-only R^2 ceilings are documented there); its public names are re-exported here.

Tasks:

* ``"hip"`` (XAttn-BMD, Hertfordshire-like): age at radiograph 71.6-80.6 y (truncated normal, mean 76.1, SD 2.6),
  48.9 % female; subjects are drawn independently; ``label = 1`` when bmd < 0.899 g/cm^2.
* ``"knee"`` (KOP-like osteoporosis classification): age 45-88 y, 70 % female. Labels come from the T-score of the
  (measured) BMD with the reference :data:`~monai_bone.constants.REFERENCE_MEAN` / ``REFERENCE_SD`` and the WHO cuts.
  To be balanced like the KOP dataset (186 normal / 186 osteoporotic), candidates are drawn from the population model
  in order and accepted into fixed per-class quotas: with 2 classes osteopenia candidates are re-drawn (discarded)
  and the quotas are ``n - n//2`` normal and ``n//2`` osteoporosis; with 3 classes the quotas are thirds (remainder to
  normal, then osteopenia). ``label`` indexes :data:`~monai_bone.constants.KNEE_LABELS_BINARY` or
  ``KNEE_LABELS_THREE``. ``reference_accuracy`` in the summary is the balanced accuracy of classifying by the
  T-score of ``bmd_visible`` (cut at T = -1.75 between the two classes, WHO cuts for three).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from monai_bone.constants import (
    CLINICAL_FIELDS,
    DICOM_FIELDS,
    KNEE_LABELS_BINARY,
    KNEE_LABELS_THREE,
    SCREENING_THRESHOLD,
    WHO_CLASSES,
)
from monai_bone.synthetic.population import (
    BMD_FORMULA,
    CohortParams,
    bmd_clinical,
    default_params,
    draw_population,
    population_r2,
    reference_accuracy,
    t_score_of,
    who_class_index,
)
from monai_bone.tasks import get_task

__all__ = [
    "BMD_FORMULA",
    "TASKS",
    "TASK_CODES",
    "Cohort",
    "CohortParams",
    "Subject",
    "bmd_clinical",
    "default_params",
    "draw_population",
    "population_r2",
    "sample_cohort",
    "t_score_of",
    "who_class_index",
]

#: Integer code of each task the cohort model can draw, in the random-stream entropy (fixed: same seed, same cohort).
TASK_CODES: dict[str, int] = {"hip": 1, "knee": 2}
#: Tasks the cohort model knows and their PatientID prefixes (from the task registry).
TASKS: dict[str, str] = {name: get_task(name).synthetic_prefix for name in TASK_CODES}


@dataclass(frozen=True)
class Subject:
    """One synthetic subject: clinical fields (constants units), BMD components and labels."""

    patient_id: str
    index: int
    sex: str
    age_xray: float
    age_bmd: float
    height: float
    weight: float
    bmi: float
    alcohol: float
    activity: float
    diet_score: float
    smoking: str
    bmd_clinical: float
    bmd_visible: float
    bmd: float
    t_score: float
    who_class: str
    label: int

    def clinical(self) -> dict[str, Any]:
        """The :data:`~monai_bone.constants.CLINICAL_FIELDS` of this subject, in that order."""
        return {name: getattr(self, name) for name in CLINICAL_FIELDS}


@dataclass
class Cohort:
    """A sampled synthetic cohort: the subjects plus what produced them."""

    task: str
    seed: int
    n_classes: int
    params: CohortParams
    subjects: list[Subject] = field(default_factory=list)
    candidates_drawn: int = 0

    @property
    def labels(self) -> tuple[str, ...]:
        """Class names indexed by :attr:`Subject.label` (hip: ``("normal", "low_bmd")`` screening labels)."""
        if get_task(self.task).is_regression:
            return ("normal", "low_bmd")
        return KNEE_LABELS_BINARY if self.n_classes == 2 else KNEE_LABELS_THREE

    def __len__(self) -> int:
        return len(self.subjects)

    def bmd(self) -> np.ndarray:
        """Measured BMD of every subject (g/cm^2)."""
        return np.array([s.bmd for s in self.subjects], dtype=np.float64)

    def clinical_rows(self, fields: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Rows for ``clinical.csv``: ``PatientID`` plus ``fields`` (default: the clinical fields not in DICOM)."""
        if fields is None:
            fields = [f for f in CLINICAL_FIELDS if f not in DICOM_FIELDS]
        return [{"PatientID": s.patient_id, **{f: getattr(s, f) for f in fields}} for s in self.subjects]

    def ground_truth_rows(self) -> list[dict[str, Any]]:
        """Rows for ``ground_truth.csv``: ``PatientID, bmd, t_score, who_class, label``."""
        return [
            {"PatientID": s.patient_id, "bmd": s.bmd, "t_score": s.t_score, "who_class": s.who_class, "label": s.label}
            for s in self.subjects
        ]

    def summary(self) -> dict[str, Any]:
        """Counts and accuracy ceilings (population values from :func:`population_r2`, plus this sample's)."""
        bmd = self.bmd()
        ceil = population_r2(self.params)
        n = len(self.subjects)
        out: dict[str, Any] = {
            "subjects": n,
            "candidates_drawn": self.candidates_drawn,
            "female": sum(s.sex == "F" for s in self.subjects),
            "male": sum(s.sex == "M" for s in self.subjects),
            "below_threshold": int(np.sum(bmd < SCREENING_THRESHOLD)),
            "share_below_threshold": float(np.mean(bmd < SCREENING_THRESHOLD)) if n else 0.0,
            "who_class": {c: sum(s.who_class == c for s in self.subjects) for c in WHO_CLASSES},
            "label": {name: sum(s.label == i for s in self.subjects) for i, name in enumerate(self.labels)},
            "bmd_mean": float(np.mean(bmd)) if n else None,
            "bmd_sd": float(np.std(bmd)) if n else None,
            "age_xray_range": [min(s.age_xray for s in self.subjects), max(s.age_xray for s in self.subjects)]
            if n
            else None,
        }
        if n >= 3:
            vis = np.array([s.bmd_visible for s in self.subjects])
            clin = np.array([s.bmd_clinical for s in self.subjects])
            var = float(np.var(bmd))
            out["sample_oracle_r2"] = float(1 - np.mean((bmd - vis) ** 2) / var) if var > 0 else None
            out["sample_clinical_r2"] = float(1 - np.mean((bmd - clin) ** 2) / var) if var > 0 else None
            out["sample_image_only_r2"] = out["sample_oracle_r2"]  # E[bmd | image] = bmd_visible (see population.py)
        ceilings = {
            "oracle_r2": ceil["oracle_r2"],
            "clinical_r2": ceil["clinical_r2"],
            "image_only_r2": ceil["image_only_r2"],
            "population": ceil,
        }
        if get_task(self.task).is_classification:
            ceilings["reference_accuracy"] = reference_accuracy(self.params, self.n_classes)
        return {"counts": out, **ceilings}


def _draw_class_quotas(
    params: CohortParams, n: int, n_classes: int, rng: np.random.Generator
) -> tuple[dict[str, np.ndarray], int]:
    """Candidates drawn in order and accepted into the per-class quotas (module docstring, knee).

    Returns:
        The accepted subjects' population arrays and the number of candidates drawn.
    """
    if n_classes == 2:
        quotas = {0: n - n // 2, 2: n // 2}
    else:
        base, rest = divmod(n, 3)
        quotas = {0: base + (rest > 0), 1: base + (rest > 1), 2: base}
    wanted = {c: q for c, q in quotas.items() if q > 0}
    parts: list[dict[str, np.ndarray]] = []
    picks: list[np.ndarray] = []
    drawn = 0
    for _ in range(10_000):
        if not wanted:
            break
        batch = draw_population(params, max(256, 4 * n), rng)
        keep = np.zeros(len(batch["bmd"]), dtype=bool)
        for i, c in enumerate(batch["who"]):
            if c in wanted:
                keep[i] = True
                wanted[c] -= 1
                if wanted[c] == 0:
                    del wanted[c]
                if not wanted:
                    drawn += i + 1
                    break
        else:
            drawn += len(batch["bmd"])
        parts.append(batch)
        picks.append(np.flatnonzero(keep))
    if wanted:  # pragma: no cover - only with absurd params
        raise ValueError(f"could not fill the knee class quotas {quotas} with params {params}")
    return {k: np.concatenate([p[k][idx] for p, idx in zip(parts, picks)]) for k in parts[0]}, drawn


def sample_cohort(task: str, n: int, seed: int = 0, n_classes: int = 2, params: CohortParams | None = None) -> Cohort:
    """Sample a synthetic cohort of ``n`` subjects.

    Args:
        task: ``"hip"`` (independent draws, screening label) or ``"knee"`` (class quotas, module docstring).
        n: number of subjects (>= 1).
        seed: random seed; the same seed gives the same cohort, different seeds different cohorts.
        n_classes: knee only: 2 (normal/osteoporosis, osteopenia re-drawn) or 3 (with osteopenia). Must be 2 for hip.
        params: population parameters; default :func:`default_params` of ``task``.

    Returns:
        The :class:`Cohort`; PatientIDs are ``SYN-H-0001`` / ``SYN-K-0001`` style.

    Raises:
        ValueError: for an unknown task, ``n < 1``, a bad ``n_classes`` or params of another task.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {sorted(TASKS)}")
    if int(n) < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if n_classes not in (2, 3):
        raise ValueError(f"n_classes must be 2 or 3, got {n_classes}")
    spec = get_task(task)
    if spec.is_regression and n_classes != 2:
        raise ValueError("n_classes applies to the knee task only (hip labels are the 0.899 g/cm^2 screening label)")
    params = params or default_params(task)
    if params.task != task:
        raise ValueError(f"params are for task {params.task!r}, not {task!r}")
    n = int(n)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), TASK_CODES[task], 0]))

    if spec.is_regression:  # independent draws; the label is the screening label
        pop = draw_population(params, n, rng)
        chosen = np.arange(n)
        labels = (pop["bmd"] < SCREENING_THRESHOLD).astype(np.int64)
        drawn = n
    else:
        pop, drawn = _draw_class_quotas(params, n, n_classes, rng)
        chosen = np.arange(len(pop["bmd"]))
        who = pop["who"]
        labels = np.where(who == 2, 1, 0) if n_classes == 2 else who.copy()

    width = max(4, len(str(n)))
    prefix = spec.synthetic_prefix
    subjects = []
    for k, i in enumerate(chosen):
        subjects.append(
            Subject(
                patient_id=f"{prefix}-{k + 1:0{width}d}",
                index=k,
                sex=str(pop["sex"][i]),
                age_xray=float(pop["age_xray"][i]),
                age_bmd=float(pop["age_bmd"][i]),
                height=float(pop["height"][i]),
                weight=float(pop["weight"][i]),
                bmi=float(pop["bmi"][i]),
                alcohol=float(pop["alcohol"][i]),
                activity=float(pop["activity"][i]),
                diet_score=float(pop["diet_score"][i]),
                smoking=str(pop["smoking"][i]),
                bmd_clinical=round(float(pop["bmd_clinical"][i]), 6),
                bmd_visible=round(float(pop["bmd_visible"][i]), 6),
                bmd=float(pop["bmd"][i]),
                t_score=float(pop["t_score"][i]),
                who_class=WHO_CLASSES[int(pop["who"][i])],
                label=int(labels[i]),
            )
        )
    return Cohort(
        task=task, seed=int(seed), n_classes=n_classes, params=params, subjects=subjects, candidates_drawn=drawn
    )
