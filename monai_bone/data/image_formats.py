"""The one table of image file types monai-bone reads (index, loader, inference input, serving).

Decision: every plain image type the loader reads is also indexed. :class:`~monai_bone.transforms.LoadXray` has read
PNG, JPEG, TIFF and BMP through PIL; the index used to accept only PNG/JPEG folders, so a TIFF export (common for
16-bit radiographs) loaded fine but was rejected as ``not_image`` by ``monai-bone index``. Now both read
:data:`PLAIN_IMAGE_FORMATS`; a file is identified by its content (PIL format), the suffix only routes it to PIL
instead of pydicom. DICOM files may have any name (:data:`DICOM_SUFFIXES` are the usual ones, accepted as a single
inference input without sniffing).
"""

from __future__ import annotations

__all__ = ["DICOM_SUFFIXES", "IMAGE_SUFFIXES", "PIL_FORMATS", "PLAIN_IMAGE_FORMATS", "PLAIN_IMAGE_SUFFIXES"]

#: Suffix (lower case) -> PIL format of the plain image files read with PIL; every other file is read as DICOM.
PLAIN_IMAGE_FORMATS: dict[str, str] = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
}
#: The suffixes of :data:`PLAIN_IMAGE_FORMATS`.
PLAIN_IMAGE_SUFFIXES: tuple[str, ...] = tuple(PLAIN_IMAGE_FORMATS)
#: The PIL formats accepted (what ``PIL.Image.open(...).format`` says), whatever the suffix.
PIL_FORMATS: frozenset[str] = frozenset(PLAIN_IMAGE_FORMATS.values())
#: Usual DICOM file suffixes (DICOM files in folders may have any name, or none).
DICOM_SUFFIXES: tuple[str, ...] = (".dcm", ".dicom")
#: Single files accepted as an input by suffix: DICOM and plain images.
IMAGE_SUFFIXES: tuple[str, ...] = DICOM_SUFFIXES + PLAIN_IMAGE_SUFFIXES
