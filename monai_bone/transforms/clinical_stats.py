"""Normalisation statistics of the clinical metadata fields, fitted on training records only.

Numeric fields are standardised with their training mean and standard deviation (population SD, ``ddof=0``, as
``sklearn.preprocessing.StandardScaler``). Categorical fields (:data:`~monai_bone.constants.CATEGORICAL_CODES`) are
first encoded as numbers by those codes and then standardised the same way. Missing values (``None``, NaN, empty
strings, unknown category codes) are skipped when fitting and stay missing (NaN) when encoding.

The statistics are saved as JSON next to a trained model, so that inference normalises exactly as training did.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from monai_bone.constants import CATEGORICAL_CODES, CLINICAL_FIELDS, FIELD_UNITS
from monai_bone.utils.io import atomic_write_json

__all__ = ["STATS_FORMAT", "ClinicalStats", "check_fields", "encode_field"]

logger = logging.getLogger(__name__)

#: ``format`` value of the JSON written by :meth:`ClinicalStats.save`.
STATS_FORMAT = "monai_bone.ClinicalStats"
_STATS_VERSION = 1
_MISSING_STRINGS = frozenset({"", "nan", "na", "n/a", "none", "null", "missing", "unknown"})


def check_fields(fields: Sequence[str]) -> tuple[str, ...]:
    """Validate clinical field names against :data:`~monai_bone.constants.CLINICAL_FIELDS`.

    Args:
        fields: field names (order kept).

    Returns:
        The fields as a tuple.

    Raises:
        ValueError: when a field is unknown, repeated, or the list is empty.
    """
    if isinstance(fields, str):
        fields = (fields,)
    fields = tuple(fields)
    unknown = [f for f in fields if f not in CLINICAL_FIELDS]
    if unknown:
        raise ValueError(f"unknown clinical field(s) {unknown}; known fields are {list(CLINICAL_FIELDS)}")
    if not fields:
        raise ValueError("at least one clinical field is required")
    if len(set(fields)) != len(fields):
        raise ValueError(f"repeated clinical field(s) in {list(fields)}")
    return fields


def encode_field(field: str, value: Any, on_unknown: Callable[[str, Any], None] | None = None) -> float:
    """Encode one clinical value as a float; NaN when it is missing or not understood.

    Numeric fields accept numbers and numeric strings; ``None``, NaN/inf and empty or ``"NA"``-like strings are
    missing. Categorical fields accept the codes of :data:`~monai_bone.constants.CATEGORICAL_CODES` (case-insensitive,
    e.g. ``"F"``/``"f"``) or their numeric values; anything else is unknown.

    Args:
        field: a clinical field name.
        value: the raw value from a record.
        on_unknown: called with ``(field, value)`` when a present value is not understood (unknown category,
            non-numeric string); the value is then treated as missing.

    Returns:
        The encoded value, NaN when missing or unknown.
    """
    if value is None:
        return float("nan")
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in _MISSING_STRINGS:
            return float("nan")
    else:
        text = None
    codes = CATEGORICAL_CODES.get(field)
    if codes is not None:
        if text is not None:
            for code, number in codes.items():
                if code.lower() == text.lower():
                    return float(number)
        else:
            try:
                number = float(value)
            except (TypeError, ValueError):
                number = float("nan")
            if math.isnan(number):
                return float("nan")
            if number in codes.values():
                return number
        if on_unknown is not None:
            on_unknown(field, value)
        return float("nan")
    try:
        number = float(text if text is not None else value)
    except (TypeError, ValueError):
        if on_unknown is not None:
            on_unknown(field, value)
        return float("nan")
    return number if math.isfinite(number) else float("nan")


def _warn_unknown(field: str, value: Any) -> None:
    logger.warning("clinical field %r: value %r is not understood; treated as missing", field, value)


class ClinicalStats:
    """Per-field mean and standard deviation of the clinical fields (categorical fields by their numeric codes).

    Create with :meth:`fit` (training records only) or :meth:`load`/:meth:`from_dict`; apply with
    :meth:`normalise` or through :class:`~monai_bone.transforms.ClinicalVector`.

    Args:
        mean: ``{field: mean}``; the key order is the field order.
        std: ``{field: standard deviation}`` (same fields, finite and positive).
        count: ``{field: number of non-missing training values}`` (informational).
        n_records: number of training records (informational).
        zero_variance: fields that were constant in the training records (their ``std`` was set to 1).

    Raises:
        ValueError: for unknown fields, mismatched mean/std fields, non-finite means or non-positive/non-finite SDs.
    """

    def __init__(
        self,
        mean: Mapping[str, float],
        std: Mapping[str, float],
        count: Mapping[str, int] | None = None,
        n_records: int | None = None,
        zero_variance: Sequence[str] = (),
    ) -> None:
        fields = check_fields(tuple(mean))
        if set(std) != set(fields):
            raise ValueError(f"mean and std must have the same fields, got {sorted(mean)} and {sorted(std)}")
        for f in fields:
            m, s = float(mean[f]), float(std[f])
            if not math.isfinite(m):
                raise ValueError(f"clinical field {f!r}: mean must be finite, got {mean[f]!r}")
            if not (math.isfinite(s) and s > 0):
                raise ValueError(f"clinical field {f!r}: standard deviation must be finite and > 0, got {std[f]!r}")
        self.fields: tuple[str, ...] = fields
        self.mean: dict[str, float] = {f: float(mean[f]) for f in fields}
        self.std: dict[str, float] = {f: float(std[f]) for f in fields}
        self.count: dict[str, int] = {f: int(count[f]) for f in fields if f in count} if count else {}
        self.n_records = None if n_records is None else int(n_records)
        self.zero_variance: tuple[str, ...] = tuple(f for f in zero_variance if f in fields)

    @classmethod
    def fit(cls, records: Iterable[Mapping[str, Any]], fields: Sequence[str] = CLINICAL_FIELDS) -> ClinicalStats:
        """Fit the statistics on ``records`` -- pass the training records only (never validation or test records).

        A field that is constant in the records (standard deviation 0, or a single value) gets ``std = 1`` with a
        logged warning, so its standardised value is 0 (centred), as ``sklearn``'s ``StandardScaler`` does.

        Args:
            records: mappings from field name to raw value (datalist items, CSV rows).
            fields: the clinical fields to fit.

        Returns:
            The fitted statistics.

        Raises:
            ValueError: for unknown fields, no records, or a field with no value in any record.
        """
        fields = check_fields(fields)
        records = list(records)
        if not records:
            raise ValueError("cannot fit clinical statistics on zero records")
        mean: dict[str, float] = {}
        std: dict[str, float] = {}
        count: dict[str, int] = {}
        constant: list[str] = []
        for f in fields:
            values = np.array([encode_field(f, r.get(f), _warn_unknown) for r in records], dtype=np.float64)
            values = values[np.isfinite(values)]
            if values.size == 0:
                raise ValueError(
                    f"clinical field {f!r} has no value in the {len(records)} training records; drop it from `fields`"
                )
            mean[f] = float(values.mean())
            sd = float(values.std(ddof=0))
            if not sd > 1e-12 * max(1.0, abs(mean[f])):
                logger.warning(
                    "clinical field %r is constant (%g) in the %d training values; using std 1 (values centred only)",
                    f,
                    mean[f],
                    values.size,
                )
                sd = 1.0
                constant.append(f)
            std[f] = sd
            count[f] = int(values.size)
        return cls(mean, std, count=count, n_records=len(records), zero_variance=constant)

    def normalise(self, field: str, value: float) -> float:
        """Standardise an encoded value of ``field``: ``(value - mean) / std`` (NaN stays NaN)."""
        return (value - self.mean[field]) / self.std[field]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (inverse of :meth:`from_dict`)."""
        return {
            "format": STATS_FORMAT,
            "version": _STATS_VERSION,
            "fields": list(self.fields),
            "mean": dict(self.mean),
            "std": dict(self.std),
            "count": dict(self.count),
            "n_records": self.n_records,
            "ddof": 0,
            "zero_variance": list(self.zero_variance),
            "categorical_codes": {f: dict(CATEGORICAL_CODES[f]) for f in self.fields if f in CATEGORICAL_CODES},
            "units": {f: FIELD_UNITS[f] for f in self.fields},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClinicalStats:
        """Rebuild statistics from :meth:`to_dict` output.

        Raises:
            ValueError: when the dict is not clinical statistics, names unknown fields, has invalid means/SDs, or was
                written with different categorical codes than :data:`~monai_bone.constants.CATEGORICAL_CODES`.
        """
        if not isinstance(data, Mapping) or data.get("format", STATS_FORMAT) != STATS_FORMAT:
            raise ValueError(f"not {STATS_FORMAT} data")
        if "mean" not in data or "std" not in data:
            raise ValueError("clinical statistics need 'mean' and 'std'")
        version = int(data.get("version", _STATS_VERSION))
        if version > _STATS_VERSION:
            raise ValueError(f"clinical statistics version {version} is newer than this monai-bone ({_STATS_VERSION})")
        fields = check_fields(data.get("fields", list(data["mean"])))
        mean, std = data["mean"], data["std"]
        missing = [f for f in fields if f not in mean or f not in std]
        if missing:
            raise ValueError(f"clinical statistics lack mean/std for {missing}")
        for f, codes in dict(data.get("categorical_codes", {})).items():
            expected = CATEGORICAL_CODES.get(f)
            if expected is None or {k: float(v) for k, v in dict(codes).items()} != expected:
                raise ValueError(
                    f"clinical statistics were fitted with categorical codes {codes!r} for {f!r}, "
                    f"but this monai-bone uses {expected!r}"
                )
        return cls(
            {f: mean[f] for f in fields},
            {f: std[f] for f in fields},
            count=data.get("count") or None,
            n_records=data.get("n_records"),
            zero_variance=data.get("zero_variance", ()),
        )

    def save(self, path: str | os.PathLike) -> Path:
        """Write :meth:`to_dict` as JSON, atomically.

        Returns:
            The path written.
        """
        return atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> ClinicalStats:
        """Read statistics written by :meth:`save`.

        Raises:
            FileNotFoundError: when ``path`` does not exist.
            ValueError: naming the file, when it is not valid JSON clinical statistics.
        """
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"{path}: cannot read clinical statistics ({err})") from None
        try:
            return cls.from_dict(data)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ClinicalStats):
            return NotImplemented
        return (self.fields, self.mean, self.std) == (other.fields, other.mean, other.std)

    def __repr__(self) -> str:
        parts = ", ".join(f"{f}={self.mean[f]:.4g}±{self.std[f]:.4g}" for f in self.fields)
        return f"ClinicalStats({parts}; n_records={self.n_records})"
