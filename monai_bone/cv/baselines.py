"""Non-imaging baselines of the hip ablation table: the OST index and a clinical-only scikit-learn model.

Both are fitted on the training folds only and predict BMD (g/cm^2) for the held-out fold, so they sit in the same
table as the networks. Missing clinical values are never imputed silently:

- :class:`OSTBaseline` needs weight and age; a record missing either gets the training-fold mean BMD (the honest
  "no information" prediction), and the number of such records is logged.
- :class:`ClinicalBaseline` ``"ridge"``: numeric fields are median-imputed *with a missing-indicator column* and
  standardised, categorical fields are one-hot encoded with "missing" as its own category, then ridge regression with
  the penalty chosen by internal cross-validation. ``"gbm"``: histogram gradient boosting, which routes missing values
  natively (learned per split) and treats sex and smoking as categorical.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from monai_bone.constants import CATEGORICAL_CODES, CLINICAL_FIELDS

__all__ = ["BASELINE_MODELS", "ClinicalBaseline", "OSTBaseline", "clinical_matrix", "ost_index"]

logger = logging.getLogger(__name__)

#: Names accepted by :class:`ClinicalBaseline`.
BASELINE_MODELS: tuple[str, ...] = ("ridge", "gbm")


def _value(record: Mapping[str, Any], key: str) -> float:
    v = record.get(key)
    if v is None or (isinstance(v, str) and not v.strip()):
        return math.nan
    if key in CATEGORICAL_CODES:
        return float(CATEGORICAL_CODES[key].get(str(v), math.nan)) if isinstance(v, str) else float(v)
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def ost_index(weight: Any, age: Any) -> np.ndarray:
    """Osteoporosis Self-assessment Tool index, ``0.2 * (weight_kg - age_years)`` (lower = higher risk).

    Args:
        weight: body weight in kg (scalar or array); NaN where missing.
        age: age in years, same shape; NaN where missing.

    Returns:
        The index as a float array (NaN where either input is missing).
    """
    return 0.2 * (np.asarray(weight, dtype=float) - np.asarray(age, dtype=float))


def _targets(y: Any) -> np.ndarray:
    arr = np.asarray(y, dtype=float).reshape(-1)
    if arr.size == 0:
        raise ValueError("cannot fit a baseline on an empty training fold")
    if not np.all(np.isfinite(arr)):
        raise ValueError("training targets contain NaN or infinite values; drop records without a BMD first")
    return arr


class OSTBaseline:
    """OST index mapped to BMD by a least-squares line fitted on the training fold.

    Args:
        age_keys: record keys tried in order for the age (default: age at the radiograph, then at the DXA scan).
        weight_key: record key of the weight in kg.
    """

    def __init__(self, age_keys: Sequence[str] = ("age_xray", "age_bmd"), weight_key: str = "weight") -> None:
        self.age_keys = tuple(age_keys)
        self.weight_key = weight_key
        self.slope: float = math.nan
        self.intercept: float = math.nan
        self.fallback: float = math.nan

    def index(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """OST index of each record (NaN when weight or every age key is missing)."""
        ages = []
        for r in records:
            age = math.nan
            for k in self.age_keys:
                age = _value(r, k)
                if not math.isnan(age):
                    break
            ages.append(age)
        return ost_index([_value(r, self.weight_key) for r in records], ages)

    def fit(self, records: Sequence[Mapping[str, Any]], y: Any) -> OSTBaseline:
        """Fit ``bmd = intercept + slope * OST`` on records with an OST index.

        Args:
            records: training records.
            y: their BMD (g/cm^2).

        Returns:
            self.

        Raises:
            ValueError: on empty or non-finite targets, or when fewer than two records have weight and age.
        """
        t = _targets(y)
        x = self.index(records)
        ok = np.isfinite(x)
        if ok.sum() < 2 or np.ptp(x[ok]) == 0:
            raise ValueError(f"OST baseline needs weight and age on at least two distinct records; got {ok.sum()}")
        self.slope, self.intercept = (float(v) for v in np.polyfit(x[ok], t[ok], deg=1))
        self.fallback = float(t.mean())
        return self

    def predict(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Predicted BMD; records without weight or age get the training-fold mean BMD."""
        if math.isnan(self.slope):
            raise RuntimeError("OSTBaseline.predict called before fit")
        x = self.index(records)
        missing = ~np.isfinite(x)
        if missing.any():
            logger.info("OST baseline: %d of %d records lack weight or age; mean BMD used", missing.sum(), len(x))
        return np.where(missing, self.fallback, self.intercept + self.slope * np.nan_to_num(x))


def clinical_matrix(records: Sequence[Mapping[str, Any]], fields: Sequence[str] = CLINICAL_FIELDS) -> np.ndarray:
    """Records → ``(N, F)`` float matrix in ``fields`` order; categorical fields as their codes, NaN where missing."""
    return np.array([[_value(r, f) for f in fields] for r in records], dtype=float).reshape(len(records), len(fields))


class ClinicalBaseline:
    """Clinical-only BMD model (no image), fitted per fold with explicit missing-value handling.

    Args:
        model: ``"ridge"`` (imputation + missing indicators + one-hot, ``RidgeCV``) or ``"gbm"``
            (``HistGradientBoostingRegressor`` with native missing-value support).
        fields: clinical fields used as features.
        seed: random state of the gradient boosting model.

    Raises:
        ValueError: for an unknown ``model``.
    """

    def __init__(self, model: str = "ridge", fields: Sequence[str] = CLINICAL_FIELDS, seed: int = 0) -> None:
        if model not in BASELINE_MODELS:
            raise ValueError(f"model must be one of {BASELINE_MODELS}, got {model!r}")
        self.model = model
        self.fields = tuple(fields)
        self.seed = seed
        self.estimator: Any = None
        self.columns: list[int] = []

    def _build(self, n: int) -> Any:
        from sklearn.compose import ColumnTransformer
        from sklearn.ensemble import HistGradientBoostingRegressor
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import RidgeCV
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import OneHotEncoder, StandardScaler

        kept = [self.fields[c] for c in self.columns]
        cat = [i for i, f in enumerate(kept) if f in CATEGORICAL_CODES]
        num = [i for i, f in enumerate(kept) if f not in CATEGORICAL_CODES]
        if self.model == "gbm":
            return HistGradientBoostingRegressor(
                learning_rate=0.05,
                max_iter=200,
                max_leaf_nodes=8,
                min_samples_leaf=max(3, min(20, n // 10)),
                l2_regularization=1.0,
                categorical_features=cat or None,
                random_state=self.seed,
            )
        numeric = make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler())
        categorical = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
        pre = ColumnTransformer([("num", numeric, num), ("cat", categorical, cat)], remainder="drop")
        return make_pipeline(pre, RidgeCV(alphas=np.logspace(-3, 3, 13)))

    def fit(self, records: Sequence[Mapping[str, Any]], y: Any) -> ClinicalBaseline:
        """Fit on the training-fold records and their BMD.

        Raises:
            ValueError: on empty or non-finite targets or a length mismatch.
        """
        t = _targets(y)
        x = clinical_matrix(records, self.fields)
        if x.shape[0] != t.shape[0]:
            raise ValueError(f"{x.shape[0]} records but {t.shape[0]} targets")
        # a field missing in every training record carries no information (and breaks histogram binning)
        self.columns = [c for c in range(x.shape[1]) if np.isfinite(x[:, c]).any()]
        dropped = [self.fields[c] for c in range(x.shape[1]) if c not in self.columns]
        if dropped:
            logger.info("clinical baseline: fields missing in every training record are unused: %s", dropped)
        if not self.columns:
            raise ValueError("no clinical field has a value in the training fold")
        self.estimator = self._build(len(t)).fit(x[:, self.columns], t)
        return self

    def predict(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Predicted BMD (g/cm^2) of each record."""
        if self.estimator is None:
            raise RuntimeError("ClinicalBaseline.predict called before fit")
        x = clinical_matrix(records, self.fields)[:, self.columns]
        return np.asarray(self.estimator.predict(x), dtype=float)
