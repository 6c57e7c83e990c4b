"""Region-of-interest landmarks from the synthetic generator's ``realism.csv`` into datalist records. SYNTHETIC.

``monai-bone synth`` records, per image, the femoral-neck midpoint (hip) or the knee joint centre (knee) in pixels of
the stored image (``roi_row``, ``roi_col``; :mod:`monai_bone.synthetic.phantom_real`). :func:`read_landmarks` reads them
keyed by the image's relative path; :func:`attach_landmarks` copies them into datalist records (matched by the
record's image path relative to the cohort folder) for training and evaluating the ROI localiser
(:mod:`monai_bone.engines.localiser`). Real datasets carry no such sidecar: there the localiser trained on synthetic
landmarks (or a user's own annotations in the same two columns) locates the region.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from pathlib import Path

__all__ = ["attach_landmarks", "read_landmarks"]

_MAX_BYTES = 64 * 1024 * 1024


def read_landmarks(path: str | os.PathLike) -> dict[str, tuple[float, float]]:
    """``{relative image path: (roi_row, roi_col)}`` from a ``realism.csv`` (``#`` lines are comments).

    Raises:
        ValueError: the file is too large or lacks the ``file``/``roi_row``/``roi_col`` columns (names the file).
    """
    p = Path(path)
    if p.stat().st_size > _MAX_BYTES:
        raise ValueError(f"{p}: larger than {_MAX_BYTES} bytes; not a realism.csv")
    with p.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(line for line in f if not line.startswith("#"))
        cols = set(reader.fieldnames or ())
        if not {"file", "roi_row", "roi_col"} <= cols:
            raise ValueError(f"{p}: needs the columns file, roi_row, roi_col (a realistic-preset realism.csv)")
        out: dict[str, tuple[float, float]] = {}
        for row in reader:
            try:
                rc = (float(row["roi_row"]), float(row["roi_col"]))
            except (TypeError, ValueError):
                continue
            if all(math.isfinite(v) for v in rc):
                out[Path(row["file"]).as_posix()] = rc
    return out


def attach_landmarks(
    records: Sequence[dict], realism_csv: str | os.PathLike, root: str | os.PathLike | None = None
) -> list[dict]:
    """Copies of ``records`` with ``roi_row``/``roi_col`` from ``realism_csv`` where the image matches.

    Args:
        records: datalist records (``image`` absolute or relative to ``root``).
        realism_csv: the cohort's ``realism.csv``.
        root: the cohort folder the CSV's ``file`` paths are relative to (default: the CSV's folder).

    Returns:
        New record dictionaries (inputs are not modified); records without a landmark are returned unchanged.
    """
    table = read_landmarks(realism_csv)
    base = Path(root) if root is not None else Path(realism_csv).parent
    out = []
    for r in records:
        rec = dict(r)
        image = Path(str(r.get("image", "")))
        try:
            rel = image.resolve().relative_to(base.resolve()).as_posix() if image.is_absolute() else image.as_posix()
        except ValueError:
            rel = image.as_posix()
        if rel in table:
            rec["roi_row"], rec["roi_col"] = table[rel]
        out.append(rec)
    return out
