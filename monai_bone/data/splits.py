"""The locked test split of a datalist: patient-disjoint, stratified, seeded, and never read by training.

``monai-bone index --test-fraction F`` holds out about ``F`` of the *patients* (all of their studies) before the
cross-validation folds are assigned. Held-out records carry ``"split": "test"`` and ``"fold": null``; the others carry
``"split": "train"`` and a fold. The datalist header records ``test_fraction`` and ``test_seed``.

Stratification: each patient gets one stratum (the most common stratum of its studies: a BMD quantile bin for hip, the
class for knee); within each stratum the patients are shuffled with ``seed`` and the first ``round(F * n)`` go to the
test split (largest-remainder rounding so the total is ``round(F * n_patients)``).

Everything that learns from data reads the training split only: :func:`monai_bone.data.fold_records` parts
``train``/``val``/``all``, :func:`monai_bone.data.split_folds`, the clinical statistics fitted from them,
``monai-bone cv`` and the demo's baselines; ``fold_records(..., part="test")`` is the only way to the test records.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_TEST_FRACTION",
    "SPLIT_KEY",
    "TEST",
    "TRAIN",
    "assign_test_split",
    "is_test",
    "resolve_test_fraction",
    "split_counts",
    "training_split",
]

#: Record key of the split name.
SPLIT_KEY: str = "split"
TRAIN: str = "train"
TEST: str = "test"

#: Default test fraction of a labelled index (0 for an unlabelled, inference datalist).
DEFAULT_TEST_FRACTION: float = 0.2


def resolve_test_fraction(test_fraction: float | None, labelled: bool) -> float:
    """The test fraction to use: the default (0.2) for labelled data when not given, 0 for unlabelled data.

    Raises:
        ValueError: for a fraction outside ``[0, 1)``, or a positive fraction on unlabelled data.
    """
    if test_fraction is None:
        return DEFAULT_TEST_FRACTION if labelled else 0.0
    f = float(test_fraction)
    if not math.isfinite(f) or not 0.0 <= f < 1.0:
        raise ValueError(f"test fraction must be in [0, 1), got {test_fraction!r}")
    if f > 0 and not labelled:
        raise ValueError(
            "a test split needs labelled data (--task with a bmd/label column or class folders); use --test-fraction 0"
        )
    return f


def assign_test_split(
    groups: Sequence[str], strata: Sequence[int], fraction: float, seed: int = 0, min_train_groups: int = 1
) -> list[bool]:
    """Which records belong to the locked test split (patient-disjoint, stratified by patient stratum, seeded).

    Args:
        groups: patient (group) id per record: all records of a patient land on the same side.
        strata: stratum per record (BMD bin or class); a patient's stratum is its most common one.
        fraction: share of patients held out, in ``[0, 1)``; 0 holds out nothing.
        seed: shuffling seed.
        min_train_groups: patients the training side must keep (the number of folds).

    Returns:
        ``True`` for test records, per record.

    Raises:
        ValueError: when ``fraction`` is positive but leaves no test patient or fewer than ``min_train_groups``
            training patients.
    """
    if len(groups) != len(strata):
        raise ValueError(f"{len(groups)} groups but {len(strata)} strata")
    if fraction <= 0:
        return [False] * len(groups)
    per_group: dict[str, Counter] = defaultdict(Counter)
    for g, s in zip(groups, strata):
        per_group[str(g)][int(s)] += 1
    patients = sorted(per_group)
    n_test = int(round(fraction * len(patients)))
    if n_test < 1 or len(patients) - n_test < min_train_groups:
        raise ValueError(
            f"--test-fraction {fraction:g} of {len(patients)} patient(s) leaves {n_test} test and "
            f"{len(patients) - n_test} training patient(s) ({min_train_groups} needed for the folds); index more "
            "patients or change --test-fraction (0 turns the test split off)"
        )
    by_stratum: dict[int, list[str]] = defaultdict(list)
    for p in patients:
        by_stratum[per_group[p].most_common(1)[0][0]].append(p)
    rng = np.random.default_rng(seed)
    quota = {s: fraction * len(ps) for s, ps in by_stratum.items()}
    take = {s: int(math.floor(q)) for s, q in quota.items()}
    # largest remainder: hand the rounding leftovers to the strata closest to their next patient (seeded tie-break)
    order = sorted(quota, key=lambda s: (-(quota[s] - take[s]), rng.random()))
    for s in order[: n_test - sum(take.values())]:
        take[s] += 1
    held: set[str] = set()
    for s in sorted(by_stratum):
        ps = list(by_stratum[s])
        rng.shuffle(ps)
        held.update(ps[: take[s]])
    return [str(g) in held for g in groups]


def is_test(record: Mapping[str, Any]) -> bool:
    """Whether a datalist record belongs to the locked test split."""
    return record.get(SPLIT_KEY) == TEST


def training_split(records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The records a model may learn from: every record not in the locked test split."""
    return [r for r in records if not is_test(r)]


def split_counts(records: Sequence[Mapping[str, Any]], group_key: str = "patient_id") -> dict[str, int]:
    """``{"n_studies", "n_patients"}`` of some records (a record without a patient id counts as its own patient)."""
    ids = {str(r.get(group_key)) if r.get(group_key) not in (None, "") else f"image:{i}" for i, r in enumerate(records)}
    return {"n_studies": len(records), "n_patients": len(ids)}
