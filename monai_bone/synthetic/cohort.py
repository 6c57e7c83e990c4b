"""Synthetic cohort model: clinical fields and femoral-neck BMD with a known, stated accuracy ceiling.

All data made here are SYNTHETIC (:data:`~monai_bone.constants.SYNTHETIC_NOTE`); the numbers are plausible, not
fitted to any real cohort.

Clinical fields (names and units from :data:`~monai_bone.constants.CLINICAL_FIELDS` /
:data:`~monai_bone.constants.FIELD_UNITS`) are drawn per subject: sex (Bernoulli), age at the radiograph (truncated
normal), age at the DXA scan (radiograph age + a small gap), height (normal by sex), BMI (normal by sex, clipped),
weight = BMI x height^2, alcohol units/week (zero-inflated gamma), activity hours/week (gamma), prudent diet score
(normal z-score), smoking (categorical by sex). Values are rounded as they are written (height 0.01 m, weight 0.1 kg,
BMI 0.01, ages 0.1 y, alcohol/activity 0.5, diet 0.01) *before* BMD is computed, so the files hold exactly the
inputs of the formula.

BMD model (g/cm^2, femoral neck, Lunar-like scale)::

    bmd          = f(clinical) + u_visible + e_invisible
    f(clinical)  = b0 + b_male*[sex=M] + b_age*(age_bmd - age_ref) + b_bmi*(bmi - bmi_ref)
                   + b_height*(height - height_ref) + b_current*[smoking=current] + b_former*[smoking=former]
                   + b_activity*(ln(1 + activity) - ln(1 + activity_ref)) - b_alcohol*max(alcohol - alcohol_limit, 0)
                   + b_diet*diet_score
    u_visible    ~ N(0, sigma_visible^2)    subject bone quality not explained by the clinical fields; it is *shown
                                            in the radiograph* (the phantom renders bmd_visible = f + u_visible as
                                            trabecular density and cortical thickness)
    e_invisible  ~ N(0, sigma_invisible^2)  DXA measurement error and everything else no input can see

BMD falls with age, is higher in men and with BMI/height, lower with smoking, low activity and heavy drinking.

Accuracy ceilings (:func:`population_r2`), both population quantities computed from the formula with a fixed
200 000-subject Monte-Carlo sample of the clinical distribution (not from the small cohort itself):

* ``oracle_r2 = 1 - sigma_invisible^2 / var(bmd)`` -- the R^2 of the best possible predictor E[bmd | clinical, image]
  = f + u_visible; no model can exceed it in expectation.
* ``clinical_r2 = var(f) / var(bmd)`` -- the R^2 of the best clinical-only predictor, so image information is worth
  ``oracle_r2 - clinical_r2``.
* ``image_only_r2 = var(f + u_visible) / var(bmd)`` -- the R^2 of the best image-only ("image texture only")
  predictor E[bmd | image] = bmd_visible: the phantom renders ``bmd_visible`` whole (trabecular texture and
  cortical thickness), so with ``f`` and ``u_visible`` independent it *equals* ``oracle_r2``: a perfect reader of the
  bone structure needs no clinical field. The clinical fields can only help an imperfect reader (they carry
  ``clinical_r2`` of the variance, and BMI/pose change how the bone looks).

Each ceiling is also given for the sampled cohort itself (``sample_*``: ``1 - mean((bmd - predictor)^2) / var(bmd)``
with the predictors ``bmd_visible``, ``bmd_clinical`` and ``bmd_visible``).

For the knee task the class quotas change the BMD spread of the sampled cohort; the stated R^2 refer to the
unselected population (:meth:`Cohort.summary` also reports the sample's own ``sample_oracle_r2``).

With the defaults the hip population has oracle R^2 = 0.84, clinical R^2 = 0.38 and 57 % of subjects below the
screening threshold 0.899 g/cm^2 (T = -1); the knee population oracle R^2 = 0.87, clinical R^2 = 0.49.

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

import dataclasses
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from monai_bone.constants import (
    CLINICAL_FIELDS,
    DICOM_FIELDS,
    KNEE_LABELS_BINARY,
    KNEE_LABELS_THREE,
    REFERENCE_MEAN,
    REFERENCE_SD,
    SCREENING_THRESHOLD,
    T_OSTEOPOROSIS,
    T_SCREENING,
    WHO_CLASSES,
)

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

#: Tasks the cohort model knows and their PatientID prefixes.
TASKS: dict[str, str] = {"hip": "SYN-H", "knee": "SYN-K"}
#: Integer code of each task in the random-stream entropy.
TASK_CODES: dict[str, int] = {"hip": 1, "knee": 2}
_MC_SEED = 20240607
_MC_SIZE = 200_000

#: The BMD formula as written into cohort.json (coefficients are listed separately under ``parameters``).
BMD_FORMULA: str = (
    "bmd = f + u_visible + e_invisible; f = b0 + b_male*[sex=M] + b_age*(age_bmd - age_ref) + b_bmi*(bmi - bmi_ref) "
    "+ b_height*(height - height_ref) + b_current*[smoking=current] + b_former*[smoking=former] "
    "+ b_activity*(ln(1+activity) - ln(1+activity_ref)) - b_alcohol*max(alcohol - alcohol_limit, 0) "
    "+ b_diet*diet_score; u_visible ~ N(0, sigma_visible^2) is rendered in the image (bmd_visible = f + u_visible "
    "drives trabecular density and cortical thickness); e_invisible ~ N(0, sigma_invisible^2) is DXA error nobody "
    "can see; oracle_r2 = 1 - sigma_invisible^2/var(bmd); clinical_r2 = var(f)/var(bmd) (population values from a "
    "200000-subject Monte-Carlo sample of the clinical distribution)"
)


@dataclass(frozen=True)
class CohortParams:
    """Parameters of the population model (defaults: the hip cohort; see :func:`default_params`).

    Units follow :data:`~monai_bone.constants.FIELD_UNITS`; BMD coefficients are in g/cm^2 per unit of the field.
    """

    task: str = "hip"
    female_share: float = 0.489
    age_mean: float = 76.1
    age_sd: float = 2.6
    age_range: tuple[float, float] = (71.6, 80.6)
    age_gap_mean: float = 0.2
    age_gap_sd: float = 0.4
    height_f: tuple[float, float] = (1.60, 0.060)
    height_m: tuple[float, float] = (1.73, 0.065)
    bmi_f: tuple[float, float] = (27.5, 4.8)
    bmi_m: tuple[float, float] = (27.2, 3.6)
    bmi_range: tuple[float, float] = (16.0, 48.0)
    alcohol_zero_f: float = 0.35
    alcohol_zero_m: float = 0.15
    alcohol_mean_f: float = 6.0
    alcohol_mean_m: float = 13.0
    alcohol_shape: float = 1.2
    activity_mean_f: float = 4.0
    activity_mean_m: float = 5.0
    activity_shape: float = 1.6
    diet_mean_f: float = 0.15
    diet_mean_m: float = -0.15
    smoking_f: tuple[float, float, float] = (0.60, 0.32, 0.08)
    smoking_m: tuple[float, float, float] = (0.35, 0.55, 0.10)
    b0: float = 0.865
    b_male: float = 0.07
    b_age: float = -0.0065
    age_ref: float = 75.0
    b_bmi: float = 0.0105
    bmi_ref: float = 27.0
    b_height: float = 0.25
    height_ref: float = 1.66
    b_current: float = -0.045
    b_former: float = -0.015
    b_activity: float = 0.03
    activity_ref: float = 4.5
    b_alcohol: float = 0.002
    alcohol_limit: float = 14.0
    b_diet: float = 0.01
    sigma_visible: float = 0.080
    sigma_invisible: float = 0.047

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (tuples become lists)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}


def default_params(task: str) -> CohortParams:
    """Default population parameters of ``task`` (``"hip"`` or ``"knee"``).

    Raises:
        ValueError: for an unknown task.
    """
    if task == "hip":
        return CohortParams(task="hip")
    if task == "knee":
        return CohortParams(
            task="knee",
            female_share=0.70,
            age_mean=63.0,
            age_sd=10.0,
            age_range=(45.0, 88.0),
            height_f=(1.57, 0.065),
            height_m=(1.70, 0.070),
            bmi_f=(26.5, 4.8),
            bmi_m=(26.0, 3.8),
        )
    raise ValueError(f"unknown task {task!r}; expected one of {sorted(TASKS)}")


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


def t_score_of(bmd: np.ndarray | float, ref_mean: float = REFERENCE_MEAN, ref_sd: float = REFERENCE_SD) -> np.ndarray:
    """T-score ``(bmd - ref_mean) / ref_sd``, rounded to 6 decimals so that class cuts are exact at the anchors."""
    return np.round((np.asarray(bmd, dtype=np.float64) - ref_mean) / ref_sd, 6)


def who_class_index(t: np.ndarray | float) -> np.ndarray:
    """WHO class index into :data:`~monai_bone.constants.WHO_CLASSES`: 0 normal (T >= -1), 1 osteopenia, 2 osteoporosis
    (T <= -2.5)."""
    t = np.asarray(t, dtype=np.float64)
    return np.where(t >= T_SCREENING, 0, np.where(t <= T_OSTEOPOROSIS, 2, 1)).astype(np.int64)


def bmd_clinical(fields: dict[str, np.ndarray], params: CohortParams) -> np.ndarray:
    """The clinical part ``f`` of the BMD formula (module docstring), vectorised over subjects.

    Args:
        fields: arrays ``sex`` ("F"/"M"), ``age_bmd``, ``bmi``, ``height``, ``smoking``, ``activity``, ``alcohol``,
            ``diet_score``.
        params: population parameters.

    Returns:
        ``f`` in g/cm^2 (float64).
    """
    p = params
    male = (np.asarray(fields["sex"]) == "M").astype(np.float64)
    smoking = np.asarray(fields["smoking"])
    return (
        p.b0
        + p.b_male * male
        + p.b_age * (np.asarray(fields["age_bmd"], np.float64) - p.age_ref)
        + p.b_bmi * (np.asarray(fields["bmi"], np.float64) - p.bmi_ref)
        + p.b_height * (np.asarray(fields["height"], np.float64) - p.height_ref)
        + p.b_current * (smoking == "current")
        + p.b_former * (smoking == "former")
        + p.b_activity * (np.log1p(np.asarray(fields["activity"], np.float64)) - math.log1p(p.activity_ref))
        - p.b_alcohol * np.maximum(np.asarray(fields["alcohol"], np.float64) - p.alcohol_limit, 0.0)
        + p.b_diet * np.asarray(fields["diet_score"], np.float64)
    )


def _truncnorm(
    rng: np.random.Generator, mean: np.ndarray | float, sd: float, lo: float, hi: float, n: int
) -> np.ndarray:
    """Normal draws truncated to [lo, hi] by redrawing out-of-range values (deterministic for a given generator)."""
    mean = np.broadcast_to(np.asarray(mean, np.float64), (n,))
    out = rng.normal(mean, sd)
    for _ in range(100):
        bad = (out < lo) | (out > hi)
        if not bad.any():
            break
        out[bad] = rng.normal(mean[bad], sd)
    return np.clip(out, lo, hi)


def draw_population(params: CohortParams, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Draw ``n`` independent subjects from the population model (no class balancing).

    Args:
        params: population parameters.
        n: number of subjects.
        rng: numpy random generator (consumed in a fixed order, so results are reproducible).

    Returns:
        Arrays for every clinical field plus ``bmd_clinical``, ``u_visible``, ``e_invisible``, ``bmd_visible``,
        ``bmd`` (rounded to 1e-4 g/cm^2), ``t_score`` and ``who`` (WHO class index).
    """
    p = params
    n = int(n)
    male = rng.random(n) >= p.female_share
    sex = np.where(male, "M", "F")
    age_xray = np.round(_truncnorm(rng, p.age_mean, p.age_sd, p.age_range[0], p.age_range[1], n), 1)
    gap = np.clip(rng.normal(p.age_gap_mean, p.age_gap_sd, n), -1.5, 1.5)
    age_bmd = np.round(age_xray + gap, 1)
    h_mean = np.where(male, p.height_m[0], p.height_f[0])
    h_sd = np.where(male, p.height_m[1], p.height_f[1])
    height = np.round(np.clip(rng.normal(h_mean, h_sd), 1.35, 2.05), 2)
    b_mean = np.where(male, p.bmi_m[0], p.bmi_f[0])
    b_sd = np.where(male, p.bmi_m[1], p.bmi_f[1])
    bmi_draw = np.clip(rng.normal(b_mean, b_sd), *p.bmi_range)
    weight = np.round(bmi_draw * height**2, 1)
    bmi = np.round(weight / height**2, 2)
    a_zero = rng.random(n) < np.where(male, p.alcohol_zero_m, p.alcohol_zero_f)
    a_mean = np.where(male, p.alcohol_mean_m, p.alcohol_mean_f)
    alcohol = rng.gamma(p.alcohol_shape, a_mean / p.alcohol_shape)
    alcohol = np.where(a_zero, 0.0, np.round(np.clip(alcohol, 0.0, 100.0) * 2) / 2)
    act_mean = np.where(male, p.activity_mean_m, p.activity_mean_f)
    activity = np.round(np.clip(rng.gamma(p.activity_shape, act_mean / p.activity_shape), 0.0, 40.0) * 2) / 2
    diet = np.round(np.clip(rng.normal(np.where(male, p.diet_mean_m, p.diet_mean_f), 1.0), -4.0, 4.0), 2)
    r = rng.random(n)
    probs = np.where(male[:, None], np.asarray(p.smoking_m)[None], np.asarray(p.smoking_f)[None])
    cum = np.cumsum(probs, axis=1)
    smoking = np.where(r < cum[:, 0], "never", np.where(r < cum[:, 1], "former", "current"))
    fields = {
        "age_xray": age_xray,
        "age_bmd": age_bmd,
        "height": height,
        "weight": weight,
        "bmi": bmi,
        "alcohol": alcohol,
        "activity": activity,
        "diet_score": diet,
        "sex": sex,
        "smoking": smoking,
    }
    f = bmd_clinical(fields, p)
    u = rng.normal(0.0, p.sigma_visible, n)
    e = rng.normal(0.0, p.sigma_invisible, n)
    bmd = np.round(f + u + e, 4)
    t = t_score_of(bmd)
    fields.update(
        bmd_clinical=f, u_visible=u, e_invisible=e, bmd_visible=f + u, bmd=bmd, t_score=t, who=who_class_index(t)
    )
    return fields


def population_r2(params: CohortParams, n_mc: int = _MC_SIZE, seed: int = _MC_SEED) -> dict[str, float]:
    """Population accuracy ceilings of the model (see the module docstring).

    ``var(f)`` is taken from a fixed Monte-Carlo sample of the clinical distribution; the two noise variances are
    exact, so ``oracle_r2 = 1 - s_e^2 / (var(f) + s_u^2 + s_e^2)`` and ``clinical_r2 = var(f) / (...)``.

    Args:
        params: population parameters.
        n_mc: Monte-Carlo sample size.
        seed: Monte-Carlo seed (fixed: the result is a property of ``params``, not of any cohort seed).

    Returns:
        ``{"oracle_r2", "clinical_r2", "image_only_r2", "bmd_mean", "bmd_sd", "share_below_threshold",
        "n_monte_carlo"}`` for the unselected population.
    """
    return dict(_population_r2(params, int(n_mc), int(seed)))


@functools.lru_cache(maxsize=16)
def _population_r2(params: CohortParams, n_mc: int, seed: int) -> dict[str, float]:
    pop = draw_population(params, n_mc, np.random.default_rng(seed))
    var_f = float(np.var(pop["bmd_clinical"]))
    var_total = var_f + params.sigma_visible**2 + params.sigma_invisible**2
    return {
        "oracle_r2": 1.0 - params.sigma_invisible**2 / var_total,
        "clinical_r2": var_f / var_total,
        "image_only_r2": (var_f + params.sigma_visible**2) / var_total,
        "bmd_mean": float(np.mean(pop["bmd"])),
        "bmd_sd": float(math.sqrt(var_total)),
        "share_below_threshold": float(np.mean(pop["bmd"] < SCREENING_THRESHOLD)),
        "n_monte_carlo": int(n_mc),
    }


@functools.lru_cache(maxsize=16)
def _reference_accuracy(params: CohortParams, n_classes: int, n_mc: int = _MC_SIZE, seed: int = _MC_SEED) -> float:
    """Balanced accuracy of classifying knee subjects by the T-score of ``bmd_visible`` (module docstring)."""
    pop = draw_population(params, n_mc, np.random.default_rng(seed + 1))
    t_vis = np.asarray(t_score_of(pop["bmd_visible"]))
    true = pop["who"]
    if n_classes == 2:
        keep = true != 1
        true = np.where(true[keep] == 2, 1, 0)
        pred = (t_vis[keep] <= (T_SCREENING + T_OSTEOPOROSIS) / 2).astype(np.int64)
        classes = (0, 1)
    else:
        pred = who_class_index(t_vis)
        classes = (0, 1, 2)
    recalls = [float(np.mean(pred[true == c] == c)) for c in classes if np.any(true == c)]
    return float(np.mean(recalls))


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
        if self.task == "hip":
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
            out["sample_image_only_r2"] = out["sample_oracle_r2"]  # E[bmd | image] = bmd_visible (module docstring)
        ceilings = {
            "oracle_r2": ceil["oracle_r2"],
            "clinical_r2": ceil["clinical_r2"],
            "image_only_r2": ceil["image_only_r2"],
            "population": ceil,
        }
        if self.task == "knee":
            ceilings["reference_accuracy"] = _reference_accuracy(self.params, self.n_classes)
        return {"counts": out, **ceilings}


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
    if task == "hip" and n_classes != 2:
        raise ValueError("n_classes applies to the knee task only (hip labels are the 0.899 g/cm^2 screening label)")
    params = params or default_params(task)
    if params.task != task:
        raise ValueError(f"params are for task {params.task!r}, not {task!r}")
    n = int(n)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), TASK_CODES[task], 0]))

    if task == "hip":
        pop = draw_population(params, n, rng)
        chosen = np.arange(n)
        labels = (pop["bmd"] < SCREENING_THRESHOLD).astype(np.int64)
        drawn = n
    else:
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
        pop = {k: np.concatenate([p[k][idx] for p, idx in zip(parts, picks)]) for k in parts[0]}
        chosen = np.arange(len(pop["bmd"]))
        who = pop["who"]
        labels = np.where(who == 2, 1, 0) if n_classes == 2 else who.copy()

    width = max(4, len(str(n)))
    prefix = TASKS[task]
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
