"""The trivial image baseline: scikit-learn on simple image statistics (plus the clinical fields for hip).

A network row means something only when it beats what a student writes in ten lines. Each image is loaded and
normalised exactly as the networks see it (:class:`~monai_bone.transforms.LoadXray` +
:class:`~monai_bone.transforms.XrayNormalise`, bone bright in ``[0, 1]``), shrunk to ``size`` × ``size`` (area
interpolation), and described by :data:`N_FEATURES` numbers: the mean and SD of each block of a ``grid`` × ``grid``
grid, the 5/25/50/75/95th percentiles, and the global mean and SD -- no learning, no masks, no anatomy.

- hip (:class:`ImageStatsBaseline` ``task="hip"``): ridge regression (penalty by internal CV) on those statistics
  plus the clinical fields (median imputation with missing indicators, one-hot categoricals; as
  :class:`~monai_bone.cv.baselines.ClinicalBaseline`);
- knee (``task="knee"``): logistic regression (penalty by internal CV) on the statistics, predicting the
  probability of the last class (osteoporosis) vs the rest.

Fitted on the training folds only, like every other row.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from monai_bone.constants import CATEGORICAL_CODES, CLINICAL_FIELDS
from monai_bone.tasks import get_task
from monai_bone.transforms import LoadXray, XrayNormalise

from .baselines import _targets, clinical_matrix

__all__ = ["GRID", "N_FEATURES", "PERCENTILES", "ImageStatsBaseline", "image_statistics"]

logger = logging.getLogger(__name__)

#: Block grid side and percentiles of :func:`image_statistics`.
GRID: int = 4
PERCENTILES: tuple[float, ...] = (5.0, 25.0, 50.0, 75.0, 95.0)
#: Number of statistics per image: block means and SDs, percentiles, global mean and SD.
N_FEATURES: int = 2 * GRID * GRID + len(PERCENTILES) + 2


@functools.lru_cache(maxsize=8192)
def _cached_statistics(path: str, mtime_ns: int, size: int) -> tuple[float, ...]:
    img = XrayNormalise()(LoadXray()(path))
    x = torch.as_tensor(np.asarray(img), dtype=torch.float32)
    x = x.reshape(-1, *x.shape[-2:]).mean(dim=0)[None, None]  # channels averaged (RGB JPEGs)
    small = torch.nn.functional.interpolate(x, size=(size, size), mode="area")[0, 0].numpy().astype(np.float64)
    b = size // GRID
    blocks = small[: b * GRID, : b * GRID].reshape(GRID, b, GRID, b).transpose(0, 2, 1, 3).reshape(GRID * GRID, -1)
    feats = [*blocks.mean(axis=1), *blocks.std(axis=1), *np.percentile(small, PERCENTILES), small.mean(), small.std()]
    return tuple(float(v) for v in feats)


def image_statistics(path: str | os.PathLike, size: int = 64) -> np.ndarray:
    """The :data:`N_FEATURES` trivial statistics of one radiograph (cached per file and modification time).

    Args:
        path: DICOM, PNG or JPEG file.
        size: side of the shrunk image (a multiple of :data:`GRID`).

    Returns:
        ``(N_FEATURES,)`` float array.
    """
    if size < GRID or size % GRID:
        raise ValueError(f"size must be a positive multiple of {GRID}, got {size}")
    p = os.fspath(path)
    return np.asarray(_cached_statistics(p, os.stat(p).st_mtime_ns, int(size)), dtype=float)


class ImageStatsBaseline:
    """Ridge (hip) or logistic regression (knee) on :func:`image_statistics` (+ clinical fields for hip).

    Args:
        task: ``"hip"`` (predicts BMD) or ``"knee"`` (predicts the probability of the positive class).
        size: side of the shrunk image.
        fields: clinical fields added for hip (``()`` for image statistics alone).
        seed: random state.

    Raises:
        ValueError: for an unknown task.
    """

    def __init__(
        self, task: str = "hip", size: int = 64, fields: Sequence[str] = CLINICAL_FIELDS, seed: int = 0
    ) -> None:
        self.spec = get_task(task)  # ValueError for an unknown task
        self.task = self.spec.name
        self.size = int(size)
        self.fields = tuple(fields) if self.spec.uses_clinical else ()
        self.seed = seed
        self.estimator: Any = None
        self.columns: list[int] = []

    def features(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """``(N, N_FEATURES + len(fields))``: image statistics, then the clinical fields (NaN where missing)."""
        img = np.stack([image_statistics(r["image"], self.size) for r in records]) if records else np.zeros((0, 0))
        if not self.fields:
            return img
        return np.hstack([img, clinical_matrix(records, self.fields)])

    def _build(self, min_class: int = 3) -> Any:
        # scikit-learn is costly to import and only fitting needs it
        from sklearn.compose import ColumnTransformer
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import LogisticRegression, LogisticRegressionCV, RidgeCV
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import OneHotEncoder, StandardScaler

        names = [f"img{i}" for i in range(N_FEATURES)] + list(self.fields)
        kept = [names[c] for c in self.columns]
        cat = [i for i, f in enumerate(kept) if f in CATEGORICAL_CODES]
        num = [i for i, f in enumerate(kept) if f not in CATEGORICAL_CODES]
        numeric = make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler())
        parts = [("num", numeric, num)]
        if cat:
            parts.append(("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), cat))
        pre = ColumnTransformer(parts, remainder="drop")
        if self.spec.is_regression:
            return make_pipeline(pre, RidgeCV(alphas=np.logspace(-3, 3, 13)))
        if min_class < 2:  # too few studies of a class for an internal CV of the penalty: a fixed one
            return make_pipeline(pre, LogisticRegression(C=1.0, max_iter=2000, random_state=self.seed))
        cv = min(3, min_class)
        return make_pipeline(pre, LogisticRegressionCV(Cs=10, cv=cv, max_iter=2000, random_state=self.seed))

    def fit(self, records: Sequence[Mapping[str, Any]], y: Any) -> ImageStatsBaseline:
        """Fit on training records: hip ``y`` = BMD; knee ``y`` = 0/1 (positive class).

        Raises:
            ValueError: on empty or non-finite targets, a length mismatch, or a knee fold with one class.
        """
        t = _targets(y)
        x = self.features(records)
        if x.shape[0] != t.shape[0]:
            raise ValueError(f"{x.shape[0]} records but {t.shape[0]} targets")
        if self.spec.is_classification and np.unique(t).size < 2:
            raise ValueError(f"the {self.task} image-statistics baseline needs both classes in the training fold")
        self.columns = [c for c in range(x.shape[1]) if np.isfinite(x[:, c]).any()]
        min_class = int(np.bincount(t.astype(int)).min()) if self.spec.is_classification else 3
        self.estimator = self._build(min_class).fit(x[:, self.columns], t if self.spec.is_regression else t.astype(int))
        return self

    def predict(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Hip: predicted BMD; knee: probability of the positive class."""
        if self.estimator is None:
            raise RuntimeError("ImageStatsBaseline.predict called before fit")
        x = self.features(records)[:, self.columns]
        if self.spec.is_regression:
            return np.asarray(self.estimator.predict(x), dtype=float)
        return np.asarray(self.estimator.predict_proba(x)[:, 1], dtype=float)
