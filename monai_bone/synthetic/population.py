"""The synthetic population model: clinical fields -> femoral-neck BMD, and its stated accuracy ceilings. SYNTHETIC.

Clinical fields are drawn by :func:`draw_population` (distributions in :mod:`monai_bone.synthetic.cohort`);
:mod:`monai_bone.synthetic.cohort` samples cohorts from this model.

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
unselected population (:meth:`~monai_bone.synthetic.cohort.Cohort.summary` also reports the sample's own
``sample_oracle_r2``).

With the defaults the hip population has oracle R^2 = 0.84, clinical R^2 = 0.38 and 57 % of subjects below the
screening threshold 0.899 g/cm^2 (T = -1); the knee population oracle R^2 = 0.87, clinical R^2 = 0.49.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from monai_bone.constants import (
    REFERENCE_MEAN,
    REFERENCE_SD,
    SCREENING_THRESHOLD,
    T_OSTEOPOROSIS,
    T_SCREENING,
)

__all__ = [
    "BMD_FORMULA",
    "POPULATION_TASKS",
    "CohortParams",
    "bmd_clinical",
    "default_params",
    "draw_population",
    "population_r2",
    "reference_accuracy",
    "t_score_of",
    "who_class_index",
]

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


#: Default population of each task the model can draw (hip: Hertfordshire-like, knee: KOP-like; cohort docstring).
_DEFAULT_PARAMS: dict[str, CohortParams] = {
    "hip": CohortParams(task="hip"),
    "knee": CohortParams(
        task="knee",
        female_share=0.70,
        age_mean=63.0,
        age_sd=10.0,
        age_range=(45.0, 88.0),
        height_f=(1.57, 0.065),
        height_m=(1.70, 0.070),
        bmi_f=(26.5, 4.8),
        bmi_m=(26.0, 3.8),
    ),
}
#: Tasks with default population parameters (:func:`default_params`).
POPULATION_TASKS: tuple[str, ...] = tuple(_DEFAULT_PARAMS)


def default_params(task: str) -> CohortParams:
    """Default population parameters of ``task`` (``"hip"`` or ``"knee"``; frozen, so shared safely).

    Raises:
        ValueError: for an unknown task.
    """
    if task not in _DEFAULT_PARAMS:
        raise ValueError(f"unknown task {task!r}; expected one of {sorted(POPULATION_TASKS)}")
    return _DEFAULT_PARAMS[task]


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
def reference_accuracy(params: CohortParams, n_classes: int, n_mc: int = _MC_SIZE, seed: int = _MC_SEED) -> float:
    """Balanced accuracy of classifying knee subjects by the T-score of ``bmd_visible`` (see synthetic.cohort)."""
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
