"""What a bundle export packs: the allow-list of bundle files (configs, docs, weights, licence) and the refusal of
text files that give a patient name or birth date (used by :func:`monai_bone.bundle.export.export_bundle`)."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from monai_bone.bundle.manifest import BundleIntegrityError

__all__ = ["collect_bundle_files"]

logger = logging.getLogger(__name__)

#: Suffixes packed from ``configs/`` and ``docs/`` (anything else there is skipped with a warning).
_CONFIG_SUFFIXES = (".json", ".yaml", ".yml", ".conf")
_DOC_SUFFIXES = (".md", ".rst", ".txt", ".png", ".svg", ".jpg", ".jpeg")
_TEXT_SUFFIXES = (".json", ".yaml", ".yml", ".conf", ".md", ".rst", ".txt", "")
#: Files under ``models/`` that are packed when present (model.ts is always regenerated from model.pt).
_MODEL_FILES = ("model.pt", "clinical_stats.json", "localiser.pt", "localiser.pt.json")  # localiser: ROI mode
_TOP_FILES = ("LICENSE", "large_files.yml")
#: An identifying DICOM attribute (keyword or tag form) followed by a value (``PatientName = DOE^JANE``,
#: ``"00100030": "19400101"``); a mere mention in prose ("PatientName is never stored") is not a value.
_IDENTIFYING = re.compile(
    r"(PatientName|PatientBirthDate|\b0010,?00[13]0\b|\(0010,\s*00[13]0\))[\"']?\s*[:=]\s*[\"']?([^\s\"',}\]]*)",
    re.IGNORECASE,
)
_EMPTY_VALUES = {"", "null", "none", "[]", "{}"}


def _needs_clinical_stats(bundle_dir: Path) -> bool:
    for name in ("inference.json", "inference.yaml", "train.json", "train.yaml"):
        cfg = bundle_dir / "configs" / name
        if cfg.is_file() and "clinical_stats" in cfg.read_text(encoding="utf-8", errors="replace"):
            return True
    return False


def collect_bundle_files(bundle_dir: str | os.PathLike) -> dict[str, Path]:
    """List the files of a bundle folder that an export packs (``model.ts`` excluded: it is regenerated).

    Args:
        bundle_dir: the bundle folder (holding ``configs/``, ``models/``, ``docs/``, ``LICENSE``).

    Returns:
        Mapping from archive path (POSIX, relative) to the file on disk, sorted by archive path.

    Raises:
        FileNotFoundError: the folder, ``configs/metadata.json``, ``configs/inference.json``, ``models/model.pt``,
            ``LICENSE`` or (when the configs use it) ``models/clinical_stats.json`` is missing.
        BundleIntegrityError: a text file holds a value for an identifying DICOM attribute (PatientName /
            PatientBirthDate).
    """
    root = Path(bundle_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: bundle folder not found")
    required = ["configs/metadata.json", "models/model.pt", "LICENSE"]
    if not any((root / "configs" / n).is_file() for n in ("inference.json", "inference.yaml")):
        required.append("configs/inference.json")
    if _needs_clinical_stats(root):
        required.append("models/clinical_stats.json")
    for rel in required:
        if not (root / rel).is_file():
            hint = " (train the bundle first)" if rel.startswith("models/") else ""
            raise FileNotFoundError(f"{root / rel}: required bundle file not found{hint}")

    files: dict[str, Path] = {}
    skipped: list[str] = []
    for sub, suffixes in (("configs", _CONFIG_SUFFIXES), ("docs", _DOC_SUFFIXES)):
        folder = root / sub
        if not folder.is_dir():
            continue
        for p in sorted(folder.rglob("*")):
            if p.is_symlink() or not p.is_file():
                continue
            rel = p.relative_to(root).as_posix()
            if p.suffix.lower() in suffixes and not p.name.startswith("."):
                files[rel] = p
            else:
                skipped.append(rel)
    for name in _MODEL_FILES:
        if (root / "models" / name).is_file():
            files[f"models/{name}"] = root / "models" / name
    for name in _TOP_FILES:
        if (root / name).is_file():
            files[name] = root / name
    if skipped:
        logger.warning("not packed (only configs, docs, weights and licence are shared): %s", ", ".join(skipped))

    for p in files.values():
        if p.suffix.lower() in _TEXT_SUFFIXES:
            text = p.read_text(encoding="utf-8", errors="replace")
            for m in _IDENTIFYING.finditer(text):
                if m.group(2).lower() not in _EMPTY_VALUES:
                    raise BundleIntegrityError(
                        f"{p}: holds a value for the identifying DICOM attribute {m.group(1)!r}; refusing to export a "
                        "bundle that could carry patient names or birth dates"
                    )
    return dict(sorted(files.items()))
