"""The datalist format (written by ``monai-bone index``, read by the bundles) and its cross-validation folds.

Written by :func:`dump_datalist` (:func:`monai_bone.data.datalist.build_datalist` commits the text with its
``rejects.csv`` and ``warnings.csv``): ``{"task", "synthetic", "num_folds", "seed", "test_fraction", "test_seed",
"clinical_fields", "run_id", "labels", "source", "source_kind", "key", ..., "training": [records]}`` (see
``docs/interfaces.md``), loadable by ``monai.data.load_decathlon_datalist(path, data_list_key="training")``; ``image``
paths are relative to the datalist's folder and every record has the same keys. Read by :func:`datalist_info` and
:func:`load_records`; folds are assigned by :mod:`monai_bone.data.fold_assign`.

A datalist written by ``monai-bone index`` stores a ``fold`` number in every record. Training on fold ``k`` means
validating on the records whose ``fold`` is ``k`` and training on all others; the split never mixes a patient between
the two parts because the index assigns folds per patient.

Records of the locked test split (``"split": "test"``, :mod:`monai_bone.data.splits`) have no fold and are invisible
to every part but ``part="test"``: training, validation, ``all`` and :func:`split_folds` never return them.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from monai_bone.constants import KNEE_LABELS_BINARY, KNEE_LABELS_THREE
from monai_bone.data.splits import TEST, is_test, split_counts, training_split

__all__ = [
    "DATALIST_KEY",
    "class_names",
    "datalist_info",
    "default_eval_part",
    "dump_datalist",
    "fold_records",
    "has_test_split",
    "has_value",
    "load_records",
    "split_folds",
    "split_summary",
    "target_stats",
]

logger = logging.getLogger(__name__)

_PARTS = ("train", "val", "all", "test")

_STRICT_JSON = json.JSONEncoder(allow_nan=False)

#: Key of the record list in the datalist JSON (``load_decathlon_datalist(..., data_list_key=DATALIST_KEY)``).
DATALIST_KEY: str = "training"


def datalist_info(datalist: str | os.PathLike) -> dict[str, Any]:
    """Read the top-level fields of a datalist JSON (task, folds, labels, clinical fields, synthetic flag).

    Args:
        datalist: path of a datalist JSON written by ``monai-bone index``.

    Returns:
        The datalist dictionary without its record lists (``training``, ``validation``, ``test``).

    Raises:
        FileNotFoundError: when ``datalist`` does not exist.
        ValueError: when the file is not a JSON object.
    """
    data = _datalist_doc(Path(datalist))
    return {k: v for k, v in data.items() if k not in (DATALIST_KEY, "validation", "test")}


def _datalist_doc(path: Path) -> dict[str, Any]:
    """The datalist JSON object, or a clear error naming ``path``."""
    if not path.is_file():
        raise FileNotFoundError(f"datalist not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not a valid JSON datalist ({err})") from err
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a datalist must be a JSON object with a 'training' list")
    return data


def dump_datalist(doc: dict[str, Any]) -> str:
    """JSON text with the top-level keys indented and one record per line.

    Readable and diff-friendly like an indented file, but each record goes through the C JSON encoder (an indented
    dump runs the pure-Python encoder, which costs as much as reading the DICOM headers of a large cohort).
    """
    encode = _STRICT_JSON.encode  # one encoder (json.dumps with allow_nan=False builds a new one per call)
    parts = [f"  {json.dumps(k)}: {encode(v)}" for k, v in doc.items() if k != DATALIST_KEY]
    rows = ",\n".join(f"    {encode(r)}" for r in doc[DATALIST_KEY])
    parts.append(f"  {json.dumps(DATALIST_KEY)}: [\n{rows}\n  ]" if rows else f"  {json.dumps(DATALIST_KEY)}: []")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def load_records(datalist: str | os.PathLike, key: str = DATALIST_KEY) -> list[dict]:
    """Load the records of a datalist with absolute ``image`` paths.

    Args:
        datalist: path of a datalist JSON; relative image paths are resolved against its folder.
        key: the record list to read.

    Returns:
        The records (a new list of new dictionaries).

    Raises:
        FileNotFoundError: when ``datalist`` does not exist.
        ValueError: when the file is not a datalist, has no ``key`` list, or a record has no ``image``.
    """
    # costly import (monai loads torch): here, so that `monai-bone index`, which only writes datalists, does not pay it
    from monai.data import load_decathlon_datalist

    path = Path(datalist)
    listed = _datalist_doc(path).get(key)  # clear errors for a missing or malformed file
    if listed is not None and not isinstance(listed, list):
        raise ValueError(f"{path}: '{key}' must be a list of records, got {type(listed).__name__}")
    for i, rec in enumerate(listed or []):
        if not isinstance(rec, dict) or not isinstance(rec.get("image"), str) or not rec.get("image"):
            raise ValueError(f"{path}: record {i} of '{key}' has no 'image' path")
    try:
        return load_decathlon_datalist(path, is_segmentation=False, data_list_key=key)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err


def has_value(record: dict, key: str) -> bool:
    """Whether ``record[key]`` holds a usable value (present, not None, not NaN, not an empty string)."""
    value = record.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return False
    return not (isinstance(value, float) and math.isnan(value))


def split_folds(
    records: Sequence[dict], val_fold: int | Sequence[int], fold_key: str = "fold", source: str = "datalist"
) -> tuple[list[dict], list[dict]]:
    """Split records into a training part (other folds) and a validation part (``val_fold``).

    Args:
        records: datalist records, each with an integer ``fold_key``.
        val_fold: the fold number(s) to validate on.
        fold_key: the record key holding the fold number.
        source: name of the data source, used in error messages.

    Returns:
        ``(train_records, val_records)``.

    Raises:
        ValueError: when a record has no fold, or ``val_fold`` is not one of the folds present, or the split
            leaves no training record.
    """
    wanted = {int(f) for f in ([val_fold] if isinstance(val_fold, (int, str)) else val_fold)}
    records = training_split(records)  # the locked test split is never part of a CV split
    folds: set[int] = set()
    for i, rec in enumerate(records):
        if not has_value(rec, fold_key):
            raise ValueError(
                f"{source}: record {i} ({rec.get('image', '?')}) has no '{fold_key}'; "
                "re-index the data with `monai-bone index --folds K`"
            )
        folds.add(int(rec[fold_key]))
    missing = wanted - folds
    if missing:
        raise ValueError(f"{source}: val_fold {sorted(missing)} not found; folds present are {sorted(folds)}")
    train = [dict(r) for r in records if int(r[fold_key]) not in wanted]
    val = [dict(r) for r in records if int(r[fold_key]) in wanted]
    if not train:
        raise ValueError(f"{source}: no training records left once fold(s) {sorted(wanted)} are held out")
    return train, val


def fold_records(
    datalist: str | os.PathLike,
    val_fold: int | Sequence[int] | None = 0,
    part: str = "train",
    require: str | None = None,
    fold_key: str = "fold",
) -> list[dict]:
    """Records of one part of a cross-validation split, ready for a MONAI dataset.

    Args:
        datalist: path of a datalist JSON written by ``monai-bone index``.
        val_fold: fold number(s) held out for validation; ``None`` uses every record for ``part="train"`` and none
            for ``part="val"``.
        part: ``"train"`` (all folds but ``val_fold``), ``"val"`` (``val_fold`` only), ``"all"`` (every fold) or
            ``"test"`` (the locked test split only; the other parts never contain a test record).
        require: a record key the part must have (the training target, ``"bmd"`` or ``"label"``); records without it
            are left out with a warning, and a part that would be empty raises.
        fold_key: the record key holding the fold number.

    Returns:
        The selected records with absolute ``image`` paths.

    Raises:
        ValueError: for an unknown ``part``, a bad fold, or no record with ``require``.
        FileNotFoundError: when ``datalist`` does not exist.
    """
    if part not in _PARTS:
        raise ValueError(f"part must be one of {_PARTS}, got {part!r}")
    records = load_records(datalist)
    if part == "test":
        selected = [r for r in records if is_test(r)]
        if not selected:
            raise ValueError(
                f"{datalist}: no locked test split (re-index with `monai-bone index ... --test-fraction 0.2`), or "
                "score the validation fold with eval_part 'val'"
            )
    elif part == "all":
        selected = training_split(records)
    elif val_fold is None:
        selected = training_split(records) if part == "train" else []
    else:
        train, val = split_folds(records, val_fold, fold_key=fold_key, source=str(datalist))  # test excluded
        selected = train if part == "train" else val
    if require is not None and selected:
        kept = [r for r in selected if has_value(r, require)]
        if not kept:
            raise ValueError(
                f"{datalist}: no {part} record has a '{require}' value; join the ground truth CSV when indexing "
                "(`monai-bone index ... --clinical <ground truth csv>`)"
            )
        if len(kept) < len(selected):
            logger.warning(
                "%s: %d of %d %s records have no '%s' and are left out",
                datalist,
                len(selected) - len(kept),
                len(selected),
                part,
                require,
            )
        selected = kept
    logger.info("%s: %d %s records (val_fold=%s)", datalist, len(selected), part, val_fold)
    return selected


def target_stats(records: Sequence[dict], key: str, default: tuple[float, float] = (0.0, 1.0)) -> tuple[float, float]:
    """Mean and standard deviation of a numeric target over records (e.g. training BMD), for output scaling.

    Args:
        records: the training records.
        key: the target key (``"bmd"``).
        default: returned when fewer than two records carry the key, or the SD is 0.

    Returns:
        ``(mean, sd)`` as floats.
    """
    values = [float(r[key]) for r in records if has_value(r, key)]
    if len(values) < 2:
        return float(default[0]), float(default[1])
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return (mean, sd) if sd > 0 else (mean, float(default[1]))


def class_names(datalist: str | os.PathLike, num_classes: int) -> list[str]:
    """Class names of a classification datalist, checked against the bundle's ``num_classes``.

    Args:
        datalist: datalist JSON (its ``labels`` list, when present, names the classes in label-index order).
        num_classes: number of classes the network is built for (2: binary, one logit; 3: three logits).

    Returns:
        The class names: the datalist's, else ``KNEE_LABELS_BINARY`` / ``KNEE_LABELS_THREE``.

    Raises:
        ValueError: when ``num_classes`` is not 2 or 3 (without datalist names) or differs from the datalist's
            number of labels.
    """
    labels = datalist_info(datalist).get("labels")
    if labels:
        if len(labels) != int(num_classes):
            raise ValueError(
                f"{datalist} has {len(labels)} classes {list(labels)} but the bundle is set to num_classes="
                f"{num_classes}; pass --num_classes {len(labels)}"
            )
        return [str(x) for x in labels]
    if int(num_classes) == 2:
        return list(KNEE_LABELS_BINARY)
    if int(num_classes) == 3:
        return list(KNEE_LABELS_THREE)
    raise ValueError(f"num_classes must be 2 or 3 without class names in the datalist, got {num_classes}")


def has_test_split(datalist: str | os.PathLike) -> bool:
    """Whether the datalist holds a locked test split (any record with ``"split": "test"``)."""
    return any(is_test(r) for r in load_records(datalist))


def default_eval_part(datalist: str | os.PathLike) -> str:
    """``"test"`` when the datalist has a locked test split, else ``"val"`` (what ``evaluate.json`` scores)."""
    return TEST if has_test_split(datalist) else "val"


def split_summary(records: Sequence[dict], part: str, selected_on_split: bool) -> dict[str, Any]:
    """What a number was computed on: ``{"split", "n_studies", "n_patients", "selected_on_split"}``.

    Args:
        records: the scored records.
        part: the split scored (``"test"``, ``"val"``, ...).
        selected_on_split: whether a model choice (best-epoch checkpoint, hyper-parameters, thresholds) looked at
            these records; such figures are optimistic.
    """
    return {"split": str(part), **split_counts(records), "selected_on_split": bool(selected_on_split)}
