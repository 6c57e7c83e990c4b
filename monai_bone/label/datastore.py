"""MONAI Label datastores that never write to the user's archive.

MONAI Label's ``LocalDatastore`` copies an upload to ``<datastore>/<id><ext>`` and deletes ``realpath(<id><ext>)``:
over ``monai-bone label serve``'s datastore of links into the archive, ``PUT /datastore/?image=<archive id>`` would
write through the link into the original file and ``DELETE /datastore/?id=<id>`` would delete it, and an id such as
``../../x`` would write outside the datastore. :class:`ArchiveDatastore` keeps the same folder of links but:

- archive images (every datastore entry that is not a file of the upload area) are read-only: uploading under their
  id answers 409 (``archive_read_only``), deleting them 403 (``archive_read_only``);
- uploads are written to a separate upload area (``<work folder>/uploads`` with ``label serve``) under an id the
  server checks with :func:`check_upload_id` (letters, digits, ``._-``, starting with a letter or digit, at most
  :data:`MAX_ID_LENGTH` characters: no separator, no traversal) or generates (``upload-<12 hex>``) when none is given;
  the file type comes from the content (DICOM ``DICM`` prefix, PNG, JPEG; anything else 415, an empty file 400), and
  a link in the datastore folder makes the upload an image id like any other (listed, inferable, deletable);
- labels are not stored (this app predicts numbers; 403 ``no_labels``).

:class:`ReadOnlyDICOMwebDatastore` is MONAI Label's DICOMweb datastore with uploads, deletions and label writes
(which would STOW a DICOM SEG to the PACS) refused the same way.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

from filelock import FileLock

from .compat import install_pydicom2_uid_alias
from .refusals import RequestRefused, discard_request_file

install_pydicom2_uid_alias()  # MONAI Label's DICOMweb datastore imports pydicom_seg

from monailabel.datastore.dicom import DICOMWebDatastore  # noqa: E402
from monailabel.datastore.local import DataModel, ImageLabelModel, LocalDatastore  # noqa: E402

__all__ = [
    "MAX_ID_LENGTH",
    "UPLOAD_ID_RE",
    "ArchiveDatastore",
    "NoLabelsMixin",
    "ReadOnlyDICOMwebDatastore",
    "check_upload_id",
    "upload_suffix",
]

logger = logging.getLogger(__name__)

#: Longest image id the server accepts for an upload.
MAX_ID_LENGTH = 128
#: An upload id: letters, digits, ``.``, ``_``, ``-``, starting with a letter or digit (no separator, no ``..``).
UPLOAD_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")
_MAGIC = ((b"\x89PNG\r\n\x1a\n", ".png"), (b"\xff\xd8\xff", ".jpg"))


def check_upload_id(image_id: str | None) -> str:
    """The id an upload is stored under: the given one when it is safe, a generated one when none is given.

    Args:
        image_id: the client's id (``?image=``, or the upload's file name without suffix), or ``None``/empty.

    Returns:
        The id.

    Raises:
        RequestRefused: (400, ``malformed_id``) for a separator, ``..``, a leading dot/dash, another character or
            an id longer than :data:`MAX_ID_LENGTH`.
    """
    if not image_id:
        return f"upload-{uuid.uuid4().hex[:12]}"
    if len(image_id) > MAX_ID_LENGTH:
        raise RequestRefused(400, f"image id longer than {MAX_ID_LENGTH} characters", "malformed_id")
    if not UPLOAD_ID_RE.match(image_id) or ".." in image_id:
        detail = (
            f"malformed image id {image_id!r}: use letters, digits, '.', '_' and '-' (starting with a letter or "
            "digit; no path separators or '..'), or give none and the server makes one"
        )
        raise RequestRefused(400, detail, "malformed_id")
    return image_id


def upload_suffix(path: str | os.PathLike) -> str:
    """``.dcm``, ``.png`` or ``.jpg`` from a file's first bytes (the client's file name is not trusted).

    Raises:
        RequestRefused: 400 (``empty_image``) for an empty file, 415 (``unsupported_file``) for anything else.
    """
    with open(path, "rb") as f:
        head = f.read(132)
    if not head:
        raise RequestRefused(400, "the uploaded image file is empty", "empty_image")
    if len(head) == 132 and head[128:132] == b"DICM":
        return ".dcm"
    for magic, suffix in _MAGIC:
        if head.startswith(magic):
            return suffix
    detail = "uploads must be DICOM files (with the DICM prefix) or PNG/JPEG radiographs"
    raise RequestRefused(415, detail, "unsupported_file")


def _no_labels() -> RequestRefused:
    return RequestRefused(403, "this server stores no labels (it predicts numbers, not masks)", "no_labels")


class NoLabelsMixin:
    """Datastore methods refusing labels (403 ``no_labels``): this app predicts numbers and stores no masks.

    On a DICOMweb datastore, MONAI Label's ``save_label`` would STOW a DICOM SEG to the PACS.
    """

    def save_label(
        self, image_id: str, label_filename: str, label_tag: str, label_info: dict[str, Any], label_id: str = ""
    ) -> str:
        """Refused (the uploaded label file is deleted)."""
        discard_request_file(label_filename)
        raise _no_labels()

    def remove_label(self, label_id: str, label_tag: str) -> None:
        """Refused."""
        raise _no_labels()

    def update_label_info(self, label_id: str, label_tag: str, info: dict[str, Any]) -> None:
        """Refused."""
        raise _no_labels()

    def get_dataset_archive(self, limit_cases: int | None) -> str:
        """Refused: 404, there are no labelled images to pack."""
        raise RequestRefused(404, "no labelled images: this server stores no labels", "no_labels")


class ArchiveDatastore(NoLabelsMixin, LocalDatastore):
    """A ``LocalDatastore`` over links into a read-only archive, with uploads kept in their own folder.

    Args:
        datastore_path: the datastore folder (``label serve``'s ``<work>/studies``: links named ``<id><ext>``).
        uploads_path: the upload area (created if missing); uploads stay there across restarts and are linked back
            into the datastore folder at start-up.
        **kwargs: ``LocalDatastore`` arguments (``extensions``, ``auto_reload``, ...).
    """

    def __init__(self, datastore_path: str, uploads_path: str | os.PathLike, **kwargs: Any) -> None:
        self.uploads_path = Path(uploads_path).resolve()
        self.uploads_path.mkdir(parents=True, exist_ok=True)
        self._relink_uploads(Path(datastore_path))
        super().__init__(datastore_path, **kwargs)

    def _relink_uploads(self, datastore: Path) -> None:
        datastore.mkdir(parents=True, exist_ok=True)
        taken = {p.name.rsplit(".", 1)[0] for p in datastore.iterdir() if p.is_symlink() or p.is_file()}
        for f in sorted(self.uploads_path.iterdir()):
            image_id, _, suffix = f.name.rpartition(".")
            link = datastore / f.name
            if not f.is_file() or f".{suffix}" not in (".dcm", ".png", ".jpg") or not UPLOAD_ID_RE.match(image_id):
                continue
            if link.is_symlink() and link.resolve() == f.resolve():
                continue
            if image_id in taken:
                logger.warning("upload %s not listed: an archive image has the same id", f.name)
                continue
            link.symlink_to(f)

    def is_upload(self, image_id: str) -> bool:
        """Whether the image is a file of the upload area (everything else is the archive's and read-only)."""
        uri = self.get_image_uri(image_id)
        return bool(uri) and Path(uri).resolve().parent == self.uploads_path

    def add_image(self, image_id: str, image_filename: str, image_info: dict[str, Any]) -> str:
        """Store an upload in the upload area under a checked or generated id and list it.

        Raises:
            RequestRefused: 409 for an archive image's id, 400 for a malformed id or an empty file, 415 for a file
                that is neither DICOM nor PNG/JPEG.
        """
        try:
            return self._add_upload(image_id, image_filename, image_info)
        except BaseException:
            discard_request_file(image_filename)  # MONAI Label deletes it only after a successful answer
            raise

    def _add_upload(self, image_id: str, image_filename: str, image_info: dict[str, Any]) -> str:
        image_id = check_upload_id(image_id)
        if image_id in self._datastore.objects and not self.is_upload(image_id):
            detail = (
                f"image id {image_id!r} is an archive image; the archive is read-only to this server "
                "(upload under another id, or give none and the server makes one)"
            )
            raise RequestRefused(409, detail, "archive_read_only")
        suffix = upload_suffix(image_filename)
        images = Path(self._datastore.image_path())
        name = f"{image_id}{suffix}"
        link, target = images / name, self.uploads_path / name
        with FileLock(self._lock_file):
            if (link.is_symlink() or link.exists()) and link.resolve() != target:
                detail = f"image id {image_id!r} names a file of the datastore that is not an upload; not replaced"
                raise RequestRefused(409, detail, "archive_read_only")
            old = self._datastore.objects.get(image_id)
            if old is not None:  # replacing an earlier upload (possibly of another type)
                self._remove_upload_files(image_id, old.image.ext)
            fd, tmp = tempfile.mkstemp(prefix=f".{image_id}.", suffix=".part", dir=self.uploads_path)
            os.close(fd)
            try:
                shutil.copyfile(image_filename, tmp)
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            if not link.is_symlink():
                link.symlink_to(target)
            info = {k: v for k, v in (image_info or {}).items() if k in ("user", "client_id")}
            info.update(name=name, upload=True)
            self._datastore.objects[image_id] = ImageLabelModel(image=DataModel(info=info, ext=suffix))
            self._update_datastore_file(lock=False)
        logger.info("upload stored: %s (%s)", image_id, target)
        return image_id

    def _remove_upload_files(self, image_id: str, ext: str) -> None:
        link = Path(self._datastore.image_path()) / f"{image_id}{ext}"
        target = self.uploads_path / f"{image_id}{ext}"
        if link.is_symlink() or link.exists():
            link.unlink()
        target.unlink(missing_ok=True)

    def remove_image(self, image_id: str) -> None:
        """Delete an upload (its file and link); archive images are never deleted.

        Raises:
            RequestRefused: 404 unknown id, 403 an archive image.
        """
        obj = self._datastore.objects.get(image_id)
        if obj is None:
            raise RequestRefused(404, f"unknown image id {image_id!r}", "unknown_image")
        if not self.is_upload(image_id):
            detail = f"image {image_id!r} belongs to the archive, which is read-only to this server; it is not deleted"
            raise RequestRefused(403, detail, "archive_read_only")
        with FileLock(self._lock_file):
            self._remove_upload_files(image_id, obj.image.ext)
        self.refresh()

    def update_image_info(self, image_id: str, info: dict[str, Any]) -> None:
        """Update the datastore's own record of an image (in the work folder; the image file is not touched).

        Raises:
            RequestRefused: 404 unknown id, 400 when ``info`` is not an object.
        """
        if image_id not in self._datastore.objects:
            raise RequestRefused(404, f"unknown image id {image_id!r}", "unknown_image")
        if not isinstance(info, dict):
            raise RequestRefused(400, "info: expected a JSON object", "malformed_params")
        super().update_image_info(image_id, info)


class ReadOnlyDICOMwebDatastore(NoLabelsMixin, DICOMWebDatastore):
    """MONAI Label's DICOMweb datastore that never writes to the PACS nor takes uploads (403 with a reason)."""

    def add_image(self, image_id: str, image_filename: str, image_info: dict[str, Any]) -> str:
        """Refused: 403; send a file to ``POST /infer/<model>`` instead."""
        discard_request_file(image_filename)
        detail = "this server reads its images from a DICOMweb archive and stores no uploads; POST the file to /infer"
        raise RequestRefused(403, detail, "archive_read_only")

    def remove_image(self, image_id: str) -> None:
        """Refused: 403 (the PACS is read-only to this server)."""
        raise RequestRefused(403, "the DICOMweb archive is read-only to this server", "archive_read_only")
