"""What one run of the index did: :class:`IndexSummary` (``seen == used + rejected``) and the CSV columns it wrote."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["REJECT_COLUMNS", "WARNING_COLUMNS", "IndexSummary"]

#: Columns of ``rejects.csv`` and ``warnings.csv``.
REJECT_COLUMNS: tuple[str, ...] = ("path", "reason", "detail")
WARNING_COLUMNS: tuple[str, ...] = ("path", "patient_id", "field", "code", "source", "original", "corrected", "detail")


@dataclass
class IndexSummary:
    """What :func:`build_datalist` did: ``seen == used + rejected`` always.

    Attributes:
        seen: files found in the source (the index's own outputs and input CSVs excluded).
        used: records written to the datalist.
        rejected: rows written to ``rejects.csv``.
        reasons: reject count per reason code.
        warnings: rows written to ``warnings.csv``.
        patients: distinct patients (fold groups) among the used records.
        task: ``"hip"``, ``"knee"`` or ``None``.
        labelled: whether records are required to carry a label.
        synthetic: every used file is labelled synthetic.
        num_folds: number of folds.
        fold_sizes: records per fold.
        source: the source folder (or DICOMweb URL); source_kind: ``"dicom"``, ``"kop"`` or ``"dicomweb"``.
        datalist, rejects_csv, warnings_csv: the files written.
    """

    seen: int
    used: int
    rejected: int
    reasons: dict[str, int]
    warnings: int
    patients: int
    task: str | None
    labelled: bool
    synthetic: bool
    num_folds: int
    fold_sizes: dict[int, int]
    source: Path | str
    source_kind: str
    datalist: Path
    rejects_csv: Path
    warnings_csv: Path
    test_fraction: float = 0.0
    test_studies: int = 0
    test_patients: int = 0

    def __post_init__(self) -> None:
        if self.seen != self.used + self.rejected or sum(self.reasons.values()) != self.rejected:
            raise RuntimeError(
                f"index accounting is off: seen {self.seen} != used {self.used} + rejected {self.rejected} "
                f"(reasons {self.reasons})"
            )

    def lines(self) -> list[str]:
        """Human-readable summary lines."""
        out = [
            f"index of {self.source} ({self.source_kind}): files seen {self.seen} = used {self.used} "
            f"+ rejected {self.rejected}"
        ]
        if self.reasons:
            out.append("  rejected by reason: " + ", ".join(f"{k} {v}" for k, v in sorted(self.reasons.items())))
        out.append(f"  warnings: {self.warnings} (field corrections/disagreements, see {self.warnings_csv.name})")
        folds = ", ".join(str(self.fold_sizes.get(i, 0)) for i in range(self.num_folds))
        out.append(f"  patients: {self.patients}; {self.num_folds} fold(s) of sizes [{folds}]")
        if self.test_fraction > 0:
            out.append(
                f"  locked test split: {self.test_studies} studies of {self.test_patients} patients "
                f"(--test-fraction {self.test_fraction:g}; never used for training, selection or statistics)"
            )
        task = self.task or "none (inference datalist)"
        out.append(f"  task: {task}; labelled: {'yes' if self.labelled else 'no'}; synthetic: {self.synthetic}")
        out.append(f"  wrote {self.datalist}, {self.rejects_csv.name}, {self.warnings_csv.name}")
        return out

    def one_line(self) -> str:
        """The accounting in one line: ``files seen N = used U + rejected R (reason counts); W warnings``."""
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(self.reasons.items()))
        return (
            f"index of {self.source}: files seen {self.seen} = used {self.used} + rejected {self.rejected}"
            + (f" ({reasons})" if reasons else "")
            + f"; {self.warnings} warning(s); wrote {self.datalist}"
        )

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dictionary."""
        return {
            "seen": self.seen,
            "used": self.used,
            "rejected": self.rejected,
            "reasons": dict(self.reasons),
            "warnings": self.warnings,
            "patients": self.patients,
            "task": self.task,
            "labelled": self.labelled,
            "synthetic": self.synthetic,
            "num_folds": self.num_folds,
            "fold_sizes": {str(k): v for k, v in self.fold_sizes.items()},
            "source": os.fspath(self.source),
            "source_kind": self.source_kind,
            "datalist": os.fspath(self.datalist),
            "rejects_csv": os.fspath(self.rejects_csv),
            "warnings_csv": os.fspath(self.warnings_csv),
            "test_fraction": self.test_fraction,
            "test_studies": self.test_studies,
            "test_patients": self.test_patients,
        }
