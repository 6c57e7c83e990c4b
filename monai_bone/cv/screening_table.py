"""Operating points and calibration of every CV row: ``operating_points.csv`` / ``operating_points.md``.

For each row's pooled out-of-fold predictions (:mod:`monai_bone.metrics.operating_points`):

- hip: sensitivity/specificity at the fixed cuts (BMD < 0.899 g/cm² = T −1; BMD ≤ T −2.5), at thresholds chosen on
  the other folds only (Youden; ≥ 90 % sensitivity) for both targets, sensitivity at specificity 0.80 and 0.90, the
  calibration slope/intercept and Bland–Altman bias and limits of agreement with 95 % CIs and the proportional-bias
  test;
- knee: the same threshold readouts on the probability, Brier score and expected calibration error;
- hip clinical comparators at the same operating points (:func:`clinical_screening_rows`): OSTA risk categories
  (OST < −4 high, −4…−1 medium, > −1 low) and a clinical logistic model.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from monai_bone.constants import REFERENCE_MEAN, REFERENCE_SD, SCREENING_THRESHOLD, SYNTHETIC_NOTE, T_OSTEOPOROSIS
from monai_bone.metrics.operating_points import (
    bland_altman_ci,
    brier_ece,
    calibration_line,
    cross_fitted_operating_points,
    rates_at_cut,
    sensitivity_at_specificity,
)
from monai_bone.metrics.screening import screening_positive
from monai_bone.tasks import get_task
from monai_bone.utils.io import atomic_write_csv, atomic_write_text
from monai_bone.utils.numbers import format_number

from .baselines import ClinicalBaseline, OSTBaseline, clinical_matrix
from .variant_summary import VariantResult

__all__ = ["OSTA_CUTS", "clinical_screening_rows", "operating_point_rows", "write_operating_points"]

_OSTEOPOROSIS_BMD = REFERENCE_MEAN + T_OSTEOPOROSIS * REFERENCE_SD


def _target_rows(name: str, score, positive, folds, fixed_cut: float | None) -> dict[str, Any]:
    row: dict[str, Any] = {"target": name, "n_positive": int(np.sum(positive))}
    if fixed_cut is not None:
        row["fixed_sensitivity"], row["fixed_specificity"] = rates_at_cut(score, positive, fixed_cut)
    for rule, vals in cross_fitted_operating_points(score, positive, folds).items():
        row[f"{rule}_sensitivity"], row[f"{rule}_specificity"] = vals["sensitivity"], vals["specificity"]
    for spec in (0.8, 0.9):
        row[f"sens_at_spec{int(spec * 100)}"] = sensitivity_at_specificity(score, positive, spec)
    return row


def operating_point_rows(task: str, res: VariantResult) -> list[dict[str, Any]]:
    """The operating-point and calibration rows of one CV row (one per screening target)."""
    pred = np.concatenate([np.asarray(f.pred, dtype=float).reshape(-1) for f in res.folds])
    true = np.concatenate([np.asarray(f.true, dtype=float).reshape(-1) for f in res.folds])
    folds = np.concatenate([np.full(len(f.true), f.fold) for f in res.folds])
    ids = [str(i) for f in res.folds for i in (f.ids if len(f.ids) == len(f.true) else [""] * len(f.true))]
    base = {
        "variant": res.name,
        "split": "train folds (out-of-fold)",
        "n_studies": int(pred.size),
        "n_patients": len({i or f"study:{k}" for k, i in enumerate(ids)}),
        "selected_on_split": False,
    }
    if get_task(task).is_regression:
        cal = {**calibration_line(pred, true), **bland_altman_ci(pred, true)}
        low = screening_positive(true, SCREENING_THRESHOLD)  # the same rule (and boundary tolerance) as the tables
        osteo = screening_positive(true, _OSTEOPOROSIS_BMD, True)
        rows = [  # score = -pred: "score >= cut" is "predicted BMD <= threshold"
            _target_rows(f"BMD < {SCREENING_THRESHOLD}", -pred, low, folds, -SCREENING_THRESHOLD),
            _target_rows(f"BMD <= {_OSTEOPOROSIS_BMD:.3f} (T -2.5)", -pred, osteo, folds, -_OSTEOPOROSIS_BMD),
        ]
    else:
        positive = true >= 0.5
        cal = brier_ece(pred, positive)
        rows = [_target_rows("osteoporosis (p >= 0.5 fixed)", pred, positive, folds, 0.5)]
    return [{**base, **r, **cal} for r in rows]


def _f(v: Any) -> str:
    return format_number(v, ".3f")


def write_operating_points(
    task: str,
    results: Sequence[VariantResult],
    out_dir: Path,
    synthetic: bool,
    extra_rows: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Path]:
    """Write ``operating_points.csv`` and ``operating_points.md`` for every row (plus ``extra_rows``, e.g. OSTA)."""
    rows = [r for res in results for r in operating_point_rows(task, res)] + [dict(r) for r in extra_rows]
    columns = list(dict.fromkeys(k for r in rows for k in r))
    md = io.StringIO()
    md.write(f"# Operating points and calibration ({task}){' — SYNTHETIC DATA' if synthetic else ''}\n\n")
    md.write(
        "Pooled out-of-fold predictions (training split). Thresholds 'youden' and 'sens90' are chosen for each "
        "held-out fold on the other folds' predictions only; 'sens@spec' reads the pooled ROC curve.\n\n"
    )
    keys = ["fixed_sensitivity", "fixed_specificity", "youden_sensitivity", "youden_specificity"]
    keys += ["sens90_sensitivity", "sens90_specificity", "sens_at_spec80", "sens_at_spec90"]
    keys += (
        ["slope", "intercept", "bias", "loa_lower", "loa_upper", "proportional_p"]
        if get_task(task).is_regression
        else ["brier", "ece"]
    )
    md.write("| variant | target | " + " | ".join(keys) + " |\n|" + "---|" * (2 + len(keys)) + "\n")
    for r in rows:
        md.write(f"| {r['variant']} | {r['target']} | " + " | ".join(_f(r.get(k)) for k in keys) + " |\n")
    return {
        "operating_points_csv": atomic_write_csv(
            out_dir / "operating_points.csv", rows, columns, comment=SYNTHETIC_NOTE if synthetic else None
        ),
        "operating_points_md": atomic_write_text(out_dir / "operating_points.md", md.getvalue()),
    }


#: OSTA risk categories on the OST index ``0.2 × (weight − age)``: high < −4, medium −4…−1, low > −1.
OSTA_CUTS: tuple[float, float] = (-4.0, -1.0)


def clinical_screening_rows(
    folds: Sequence[tuple[Sequence[Mapping[str, Any]], Sequence[Mapping[str, Any]]]], seed: int = 0
) -> list[dict[str, Any]]:
    """Clinical screening comparators at the same operating points (hip): OSTA categories and a clinical logistic model.

    Args:
        folds: ``(train_records, held_out_records)`` per CV fold.
        seed: random state.

    Returns:
        Operating-point rows (as :func:`operating_point_rows`) for ``osta`` (fixed rules: "high" = OST < −4 and "high
        or medium" = OST ≤ −1 called positive) and ``clinical_logistic`` (logistic regression on the clinical fields
        fitted per target on the training folds; thresholds chosen on the other folds).
    """
    # scikit-learn is costly to import (~1 s): only when the clinical comparators are asked for
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    targets = ((f"BMD < {SCREENING_THRESHOLD}", lambda b: screening_positive(b, SCREENING_THRESHOLD)),)
    targets += ((f"BMD <= {_OSTEOPOROSIS_BMD:.3f} (T -2.5)", lambda b: screening_positive(b, _OSTEOPOROSIS_BMD, True)),)
    out: list[dict[str, Any]] = []
    ost = np.concatenate([OSTBaseline().index(val) for _, val in folds])
    bmd = np.concatenate([[float(r["bmd"]) for r in val] for _, val in folds])
    fold_ids = np.concatenate([np.full(len(val), j) for j, (_, val) in enumerate(folds)])
    for name, rule in targets:
        positive = rule(bmd)
        known = np.nan_to_num(ost, nan=np.inf)  # no weight or age: never called positive
        for label, called in (
            ("osta high (OST < -4)", known < OSTA_CUTS[0]),
            ("osta high+medium (OST <= -1)", known <= OSTA_CUTS[1]),
        ):
            out.append(
                {
                    "variant": label,
                    "target": name,
                    "n_positive": int(positive.sum()),
                    "fixed_sensitivity": float((called & positive).sum() / max(positive.sum(), 1)),
                    "fixed_specificity": float((~called & ~positive).sum() / max((~positive).sum(), 1)),
                }
            )
        prob = []
        for train, val in folds:
            y = rule(np.array([float(r["bmd"]) for r in train]))
            if y.all() or not y.any():
                prob.append(np.full(len(val), float(y.mean())))
                continue
            clin = ClinicalBaseline("ridge", seed=seed)
            clin.columns = list(range(len(clin.fields)))
            pre = clin._build(len(train)).steps[0][1]  # the clinical preprocessing (imputation, indicators, one-hot)
            model = make_pipeline(pre, LogisticRegression(max_iter=2000, random_state=seed))
            model.fit(clinical_matrix(train, clin.fields), y)
            prob.append(model.predict_proba(clinical_matrix(val, clin.fields))[:, 1])
        p = np.concatenate(prob)
        out.append({"variant": "clinical_logistic", **_target_rows(name, p, positive, fold_ids, 0.5)})
    return out
