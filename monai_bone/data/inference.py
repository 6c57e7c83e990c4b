"""What ``inference.json`` runs on: a datalist JSON, or a folder of DICOM / image files indexed on the fly.

``input`` may be a datalist written by ``monai-bone index`` (labels, if any, are ignored by inference) or a folder,
which is indexed with :func:`monai_bone.data.datalist.build_datalist` into ``<work_dir>/inference_datalist.json``
(with its ``rejects.csv`` and ``warnings.csv``): the DICOM header supplies age, sex, height and weight, and optional
clinical CSV files supply the other fields. A single DICOM / PNG / JPEG file is accepted too, and so is a folder of
PNG/JPEG files with or without KOP class folders.

The index runs without a task, so a study is never rejected for a missing label (a BMD column or class folder, if
present, is carried along and ignored by inference). With ``pseudonymise`` (``--pseudonymise true``, salt from
``--salt`` or ``MONAI_BONE_SALT``) the folder is indexed like ``monai-bone index --pseudonymise``: PatientID and the
UIDs in every output are salted pseudonyms, and output files are named after pseudonyms, never after input names.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from monai_bone.data.datalist import build_datalist
from monai_bone.data.folds import datalist_info, load_records
from monai_bone.data.image_formats import IMAGE_SUFFIXES, PLAIN_IMAGE_SUFFIXES
from monai_bone.utils.options import as_bool

__all__ = ["IMAGE_SUFFIXES", "inference_records", "inference_source_kind", "prepare_inference_datalist"]

logger = logging.getLogger(__name__)


def prepare_inference_datalist(
    input: str | os.PathLike,
    work_dir: str | os.PathLike,
    clinical: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    key: str = "PatientID",
    pseudonymise: bool | str = False,
    salt: str | None = None,
) -> Path:
    """The datalist JSON that inference reads: ``input`` itself, or a new index of a folder or file.

    Args:
        input: a datalist JSON, a folder of DICOM/PNG/JPEG files, or one such file.
        work_dir: where the datalist of a folder or file is written (``inference_datalist.json``, with the index's
            ``rejects.csv`` and ``warnings.csv``).
        clinical: clinical CSV file(s) joined on ``key`` when indexing (ignored for a datalist).
        key: the join column of the clinical CSV files.
        pseudonymise: index a folder or file with salted pseudonyms for PatientID and the UIDs (as
            ``monai-bone index --pseudonymise``); a datalist input must then be a pseudonymised one already.
        salt: the pseudonym salt (default: the ``MONAI_BONE_SALT`` environment variable); never written.

    Returns:
        The datalist path.

    Raises:
        FileNotFoundError: when ``input`` does not exist.
        ValueError: when ``input`` is neither a datalist, a folder nor an image, or holds no usable image; with
            ``pseudonymise``, when there is no salt or a datalist input is not pseudonymised.
    """

    pseudonymise = as_bool(pseudonymise, "pseudonymise")
    if input is None or str(input).strip() == "":
        raise ValueError("no inference input given: set --input to a datalist JSON or a folder of DICOM files")
    src = Path(input).expanduser()
    if not src.exists():
        raise FileNotFoundError(f"inference input not found: {src}")
    if src.is_file() and src.suffix.lower() == ".json":
        if pseudonymise and not _is_pseudonymised(src):
            raise ValueError(
                f"{src}: pseudonymise was asked for but this datalist holds the original identifiers; index the "
                "images with `monai-bone index --pseudonymise` or give the image folder as input"
            )
        return src

    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    out = work / "inference_datalist.json"
    clinical_list = [] if clinical is None else [clinical] if isinstance(clinical, (str, os.PathLike)) else clinical
    clinical_list = [str(c) for c in clinical_list]
    source = src
    if src.is_file():
        if src.suffix.lower() not in IMAGE_SUFFIXES and not _looks_like_dicom(src):
            raise ValueError(f"{src}: not a datalist (.json), a folder, a DICOM file or an image ({IMAGE_SUFFIXES})")
        # the index reads folders: give it a private folder holding a link to (or a copy of) this one file
        source = work / "single_input"
        shutil.rmtree(source, ignore_errors=True)
        source.mkdir(parents=True)
        link = source / (f"study{src.suffix}" if pseudonymise else src.name)  # the name may carry a patient ID
        try:
            link.symlink_to(src.resolve())
        except OSError:
            shutil.copy2(src, link)
    build_datalist(
        str(source),
        str(out),
        clinical=clinical_list or None,
        key=key,
        task=None,
        folds=1,
        progress=False,
        source_kind=inference_source_kind(src),
        pseudonymise=pseudonymise,
        salt=salt,
    )
    return out


def _is_pseudonymised(datalist: Path) -> bool:
    try:
        return bool(datalist_info(datalist).get("pseudonymised"))
    except (OSError, ValueError):
        return False


def inference_source_kind(src: str | os.PathLike, limit: int = 5000) -> str | None:
    """Source kind to index unlabelled input with: ``"kop"`` for PNG/JPEG input (one file, or a folder holding only
    such files, with or without class folders), ``"dicom"`` for a single other file, else None (auto-detect).

    Args:
        src: the file or folder.
        limit: how many files of a folder are looked at.
    """
    src = Path(src)
    if src.is_file():
        return "kop" if src.suffix.lower() in PLAIN_IMAGE_SUFFIXES else "dicom"
    files = [p for p in itertools.islice(src.rglob("*"), limit) if p.is_file() and not p.name.startswith(".")]
    if files and all(p.suffix.lower() in PLAIN_IMAGE_SUFFIXES for p in files):
        return "kop"
    return None


def _looks_like_dicom(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(132)
    return len(head) == 132 and head[128:132] == b"DICM"


def inference_records(
    input: str | os.PathLike,
    work_dir: str | os.PathLike,
    clinical: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    key: str = "PatientID",
    pseudonymise: bool | str = False,
    salt: str | None = None,
) -> list[dict]:
    """Records to run inference on (see :func:`prepare_inference_datalist` for the arguments).

    Returns:
        Records with absolute ``image`` paths and the clinical fields the index found (None where missing).

    Raises:
        FileNotFoundError: when ``input`` does not exist.
        ValueError: when nothing usable is found.
    """
    path = prepare_inference_datalist(input, work_dir, clinical=clinical, key=key, pseudonymise=pseudonymise, salt=salt)
    records = load_records(path)
    if not records:
        raise ValueError(f"{path}: the datalist has no records")
    logger.info("inference on %d studies from %s", len(records), input)
    return records
