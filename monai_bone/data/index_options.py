"""The options of one index run (:func:`monai_bone.data.datalist.build_datalist`'s keyword arguments) as one value.

:class:`IndexOptions` carries what ``monai-bone index`` was asked to do, checked once (:meth:`IndexOptions.check`)
before any file is read; :func:`monai_bone.data.datalist.build_datalist` builds it from its keyword arguments and
hands it to the planning step instead of relaying each argument by position.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from monai_bone.tasks import task_names

__all__ = ["DIRECT_IDENTIFIERS", "TASKS", "IndexOptions"]

#: Tasks the index knows (the task registry, :mod:`monai_bone.tasks`).
TASKS: tuple[str, ...] = task_names()

#: DICOM keywords that identify a person directly; refused as join keys (and never read by the index).
DIRECT_IDENTIFIERS: frozenset[str] = frozenset(
    {
        "PatientName",
        "PatientBirthDate",
        "PatientBirthTime",
        "PatientBirthName",
        "PatientMotherBirthName",
        "OtherPatientNames",
        "PatientAddress",
        "PatientTelephoneNumbers",
        "ResponsiblePerson",
        "ReferringPhysicianName",
    }
)


def _check_task(name: str | None, what: str) -> None:
    if name is not None and name not in TASKS:
        raise ValueError(f"{what} must be one of {TASKS} or None, got {name!r}")


@dataclass(frozen=True)
class IndexOptions:
    """What one index run was asked to do (the meaning of each field: :func:`~monai_bone.data.datalist.build_datalist`).

    ``source``, ``out`` and ``clinical`` (the files) are not part of it.
    """

    key: str = "PatientID"
    task: str | None = None
    folds: int = 10
    seed: int = 0
    progress: bool = True
    source_kind: str | None = None
    cache: str | os.PathLike | None = None
    pseudonymise: bool = False
    salt: str | None = None
    mapping: str | os.PathLike | None = None
    image_task: str | None = None
    body_parts: Sequence[str] | None = None
    views: Sequence[str] | None = None
    bilateral: str | None = None
    workers: int | None = None
    test_fraction: float | None = None
    dedup: bool | None = None

    @property
    def guard_task(self) -> str | None:
        """The task whose body part / view rules the images are checked against (``image_task``, else ``task``)."""
        return self.image_task if self.image_task is not None else self.task

    def check(self) -> IndexOptions:
        """Raise ``ValueError`` for an unknown task, bad ``folds``, a refused join key or a mapping without
        ``pseudonymise``; returns ``self``."""
        _check_task(self.task, "task")
        folds = self.folds
        if isinstance(folds, bool) or not isinstance(folds, (int, np.integer)) or folds < 1:
            raise ValueError(f"folds must be an integer >= 1, got {folds!r}")
        if not self.key or self.key in DIRECT_IDENTIFIERS:
            raise ValueError(f"key {self.key!r} is not allowed: use PatientID or another non-identifying keyword")
        if self.mapping is not None and not self.pseudonymise:
            raise ValueError("a pseudonym mapping file was asked for without pseudonymise (--pseudonymise)")
        _check_task(self.guard_task, "image_task")
        return self
