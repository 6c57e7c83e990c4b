"""Image sources the index can scan: a DICOM folder, a KOP-style image folder, or a DICOMweb server.

A source lists candidate files (:meth:`ImageSource.files`) and reads one file's header into a uniform
:class:`SourceImage` (:meth:`ImageSource.read`) or raises :class:`~monai_bone.data.dicom_records.RejectError`.

* ``"dicom"`` -- :class:`DicomFolderSource`: every regular file under the folder, recursively, whatever its name or
  extension (many archives store DICOM without ``.dcm``); each one is read header-only by
  :func:`~monai_bone.data.dicom_header.read_header`.
* ``"kop"`` -- :class:`ImageFolderSource`: the layout of the Knee Osteoporosis (KOP) image dataset and of
  ``synthesize(..., fmt="kop")``: class folders named after :data:`~monai_bone.constants.KNEE_LABELS_THREE`
  (``normal/``, ``osteopenia/``, ``osteoporosis/``, any case, possibly below e.g. ``train/``) holding plain
  image files (PNG/JPEG/TIFF/BMP, :mod:`monai_bone.data.image_formats`).
  The class of a file is its nearest ancestor folder with a class name; the patient/key value is the file stem.

* ``"dicomweb"`` -- :class:`~monai_bone.data.sources.dicomweb.DicomwebSource` (for a URL such as
  ``http://HOST:PORT/dicom-web``): DX/CR instances found with QIDO-RS are retrieved with WADO-RS into a cache folder
  and then read exactly like a DICOM folder.

:func:`open_source` picks the kind (auto-detected unless given).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monai_bone.constants import KNEE_LABELS_BINARY, KNEE_LABELS_THREE, SYNTHETIC_NOTE
from monai_bone.data.dicom_header import read_header, sniff_file_type
from monai_bone.data.dicom_records import FieldWarning, RejectError
from monai_bone.data.duplicates import pixel_hash as decoded_pixel_hash
from monai_bone.data.image_formats import PIL_FORMATS, PLAIN_IMAGE_SUFFIXES

__all__ = [
    "SOURCE_KINDS",
    "DicomFolderSource",
    "ImageFolderSource",
    "ImageSource",
    "SourceImage",
    "detect_source_kind",
]

logger = logging.getLogger(__name__)

#: Source kinds :func:`open_source` knows (``"dicomweb"`` for URLs, the others for folders).
SOURCE_KINDS: tuple[str, ...] = ("dicom", "kop", "dicomweb")


@dataclass
class SourceImage:
    """One usable image as the index sees it (from a DICOM header or an image file header).

    Attributes:
        path: the file.
        key_values: values of the join key(s) asked for (``None`` when absent).
        patient_id: patient identifier (DICOM PatientID, or the file stem for image folders).
        study_instance_uid, sop_instance_uid: DICOM identifiers (``None`` for image folders).
        modality: DICOM modality (``None`` for image folders).
        photometric: ``MONOCHROME1``/``MONOCHROME2`` (grayscale image files are ``MONOCHROME2``; colour ones ``RGB``).
        body_part: DICOM BodyPartExamined (upper case) or ``None``.
        view_position: DICOM ViewPosition (upper case) or ``None``.
        synthetic: the file says it is synthetic (DICOM ImageComments / PNG text chunk / JPEG comment holds the note).
        clinical: clinical fields the file itself carries (DICOM header; empty for image folders).
        class_name: class folder name (lower case) for image folders, else ``None``.
        warnings: field-level problems found while reading the header.
        pixel_hash: perceptual hash of the pixels (:mod:`monai_bone.data.duplicates`) when the read asked for it.
    """

    path: Path
    key_values: dict[str, str | None]
    patient_id: str | None
    study_instance_uid: str | None = None
    sop_instance_uid: str | None = None
    modality: str | None = None
    photometric: str | None = None
    body_part: str | None = None
    synthetic: bool = False
    clinical: dict[str, Any] = field(default_factory=dict)
    class_name: str | None = None
    warnings: list[FieldWarning] = field(default_factory=list)
    view_position: str | None = None
    pixel_hash: Any = None


class ImageSource:
    """Base class of sources: a root folder, a list of candidate files and a per-file header reader.

    Args:
        root: the source folder.
        exclude: files to leave out of the listing (e.g. the index's own outputs and input CSVs inside the folder).

    Raises:
        FileNotFoundError: when ``root`` does not exist.
        ValueError: when ``root`` is not a folder.
    """

    kind: str = ""
    #: Service URL of a remote source (its files are a local cache under ``root``); ``None`` for folders.
    url: str | None = None

    def __init__(self, root: str | os.PathLike, exclude: Collection[str | os.PathLike] = ()) -> None:
        self.root = Path(root)
        if not self.root.exists():
            raise FileNotFoundError(f"source {self.root} does not exist")
        if not self.root.is_dir():
            raise ValueError(f"source {self.root} is not a folder")
        self.exclude = {os.path.realpath(p) for p in exclude}

    def files(self) -> list[Path]:
        """All candidate files under the root, recursively, in a stable order (a folder's files, then its sub-folders,
        each sorted by name).

        Regular files and symlinks to files are listed, broken symlinks too (they are rejected as unreadable);
        symlinked folders are not followed; FIFOs, sockets and devices are skipped.
        """
        excluded_names = {os.path.basename(p) for p in self.exclude}
        found: list[Path] = []

        def visit(folder: str) -> None:
            try:
                with os.scandir(folder) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError as err:
                logger.warning("cannot list folder %s: %s", folder, err)
                return
            subfolders = []
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    subfolders.append(entry.path)
                    continue
                if not (entry.is_file() or entry.is_symlink()):
                    logger.debug("skipping %s (not a regular file)", entry.path)
                    continue
                if entry.name in excluded_names and os.path.realpath(entry.path) in self.exclude:
                    continue
                found.append(Path(entry.path))
            for sub in subfolders:
                visit(sub)

        visit(os.fspath(self.root))
        return found

    def read(self, path: Path, keys: Sequence[str] = ("PatientID",), pixel_hash: bool = False) -> SourceImage:
        """Read one file's header (and, with ``pixel_hash``, the duplicate hash of its pixels in the same read);
        raise :class:`~monai_bone.data.dicom_records.RejectError` when it is unusable."""
        raise NotImplementedError

    @property
    def labels(self) -> tuple[str, ...] | None:
        """Class names the folder layout defines (image folders), else ``None``."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.root)!r})"


class DicomFolderSource(ImageSource):
    """A folder of DICOM files (any names, any depth), read header-only.

    Args:
        root: the folder.
        exclude: files to leave out.
    """

    kind = "dicom"

    def read(self, path: Path, keys: Sequence[str] = ("PatientID",), pixel_hash: bool = False) -> SourceImage:
        """Header read through :func:`~monai_bone.data.dicom_header.read_header` (pixels only for ``pixel_hash``).

        Raises:
            RejectError: when the file is not a usable radiograph.
        """
        header = read_header(path, keys=keys, pixel_hash=pixel_hash)
        return SourceImage(
            path=header.path,
            key_values=header.keys,
            patient_id=header.patient_id,
            study_instance_uid=header.study_instance_uid,
            sop_instance_uid=header.sop_instance_uid,
            modality=header.modality,
            photometric=header.photometric,
            body_part=header.body_part,
            synthetic=header.synthetic,
            clinical=header.clinical,
            warnings=header.warnings,
            view_position=header.view_position,
            pixel_hash=header.pixel_hash,
        )


class ImageFolderSource(ImageSource):
    """A KOP-style image folder: class folders (``normal``, ``osteopenia``, ``osteoporosis``) of image files.

    The label set is :data:`~monai_bone.constants.KNEE_LABELS_THREE` when an ``osteopenia`` folder exists, else
    :data:`~monai_bone.constants.KNEE_LABELS_BINARY`. The key value of a file (for the clinical CSV join) and its
    patient id are the file stem.

    Args:
        root: the folder.
        exclude: files to leave out.
    """

    kind = "kop"

    def __init__(self, root: str | os.PathLike, exclude: Collection[str | os.PathLike] = ()) -> None:
        super().__init__(root, exclude)
        self._classes = _class_folders(self.root)

    @property
    def labels(self) -> tuple[str, ...]:
        """The label set implied by the class folders present."""
        return KNEE_LABELS_THREE if "osteopenia" in self._classes else KNEE_LABELS_BINARY

    def class_of(self, path: Path) -> str | None:
        """Nearest ancestor folder (inside the root) with a class name, lower case; ``None`` when there is none."""
        try:
            parts = path.relative_to(self.root).parts[:-1]
        except ValueError:
            return None
        for part in reversed(parts):
            if part.lower() in KNEE_LABELS_THREE:
                return part.lower()
        return None

    def read(self, path: Path, keys: Sequence[str] = ("PatientID",), pixel_hash: bool = False) -> SourceImage:
        """Open the image header with PIL (no pixel decoding unless ``pixel_hash``) and attach its class folder.

        The class (or its absence) is not checked here: whether a missing class is a reject depends on the task.

        Raises:
            RejectError: ``not_image`` for files PIL cannot identify or formats other than PNG/JPEG/TIFF/BMP,
                ``unreadable`` for I/O errors.
        """
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as img:
                fmt, mode, size = img.format, img.mode, img.size
                info_text = " ".join(str(v) for v in img.info.values() if isinstance(v, str))
                if isinstance(img.info.get("comment"), bytes):  # JPEG COM marker
                    info_text += " " + img.info["comment"].decode("utf-8", "replace")
        except UnidentifiedImageError:
            raise RejectError("not_image", f"not a PNG/JPEG/TIFF/BMP image ({sniff_file_type(path)})") from None
        except OSError as err:
            raise RejectError("unreadable", f"cannot read image: {err}") from None
        if fmt not in PIL_FORMATS:
            accepted = ", ".join(sorted(PIL_FORMATS))
            raise RejectError("not_image", f"image format {fmt} is not accepted ({accepted})")
        if min(size) < 1:
            raise RejectError("unsupported_image", f"image has no pixels ({size[0]}x{size[1]})")
        stem = path.stem
        grayscale = mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")
        return SourceImage(
            path=path,
            key_values=dict.fromkeys(keys, stem),
            patient_id=stem,
            photometric="MONOCHROME2" if grayscale else "RGB",
            synthetic=SYNTHETIC_NOTE in info_text,
            class_name=self.class_of(path),
            pixel_hash=decoded_pixel_hash(path, dicom=False) if pixel_hash else None,
        )


_MAX_SPLIT_FOLDERS = 32


def _class_folders(root: Path) -> set[str]:
    """Class names (lower case) of folders at depth 1 or 2 under ``root`` that directly hold a PNG/JPEG/TIFF/BMP file.

    Only folder names are listed below depth 1 (no per-file work in DICOM trees), and only when the root has at most
    32 sub-folders or a class folder of its own (a KOP layout; not an archive of patient folders); a class folder is
    opened to look for its first image.
    """

    def subdirs(path: str) -> list[os.DirEntry]:
        try:
            with os.scandir(path) as it:
                return [e for e in it if e.is_dir(follow_symlinks=False)]
        except OSError:
            return []

    def has_image(path: str) -> bool:
        try:
            with os.scandir(path) as it:
                return any(e.name.lower().endswith(PLAIN_IMAGE_SUFFIXES) and e.is_file() for e in it)
        except OSError:
            return False

    found: set[str] = set()
    firsts = subdirs(os.fspath(root))
    # a KOP download has a few top folders (classes, or train/test splits); an archive of many patient folders is
    # not listed a level deeper (that would cost one directory listing per patient)
    deep = len(firsts) <= _MAX_SPLIT_FOLDERS or any(e.name.lower() in KNEE_LABELS_THREE for e in firsts)
    for first in firsts:
        candidates = [first, *subdirs(first.path)] if deep else [first]
        for entry in candidates:
            name = entry.name.lower()
            if name in KNEE_LABELS_THREE and name not in found and has_image(entry.path):
                found.add(name)
    return found


def detect_source_kind(root: str | os.PathLike) -> str:
    """``"kop"`` when class folders (``normal/``, ``osteoporosis/``, ...) of plain image files exist within two levels,
    else ``"dicom"``.

    Args:
        root: the source folder.

    Returns:
        One of :data:`SOURCE_KINDS`.
    """
    return "kop" if _class_folders(Path(root)) else "dicom"
