"""Pixel-data checks of the header read, without decoding: is the PixelData element there, complete and long
enough, and can pydicom decode its transfer syntax; plus the duplicate hash taken in the same read.

:func:`pixel_data_problem` inspects the element header where ``stop_before_pixels`` stopped (encapsulated data: the
item headers, by seeking); :func:`same_read_hash` hashes native pixel bytes memory-mapped from the open file
(:func:`monai_bone.data.duplicates.native_pixel_hash`).
"""

from __future__ import annotations

import functools
import mmap
import struct
from pathlib import Path
from typing import Any, BinaryIO

import pydicom
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from monai_bone.data.dicom_elements import int_value
from monai_bone.data.dicom_records import DicomHeader
from monai_bone.data.duplicates import native_pixel_hash
from monai_bone.data.duplicates import pixel_hash as decoded_pixel_hash

__all__ = ["check_decodable", "deflated_pixel_problem", "pixel_data_problem", "same_read_hash"]

_PIXEL_DATA_TAGS = {0x7FE00010: "PixelData", 0x7FE00008: "FloatPixelData", 0x7FE00009: "DoubleFloatPixelData"}
_ITEM_TAG = (0xFFFE, 0xE000)
_SEQ_DELIM_TAG = (0xFFFE, 0xE0DD)
_LONG_LENGTH_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
_UNDEFINED_LENGTH = 0xFFFFFFFF
_MAX_FRAGMENTS = 1_000_000
_NATIVE_LITTLE_ENDIAN = frozenset({str(ExplicitVRLittleEndian), str(ImplicitVRLittleEndian)})


@functools.lru_cache(maxsize=64)
def check_decodable(transfer_syntax: str) -> str | None:
    """Whether pydicom has an available decoder for a transfer syntax (uses :func:`pydicom.pixels.get_decoder`).

    Args:
        transfer_syntax: transfer syntax UID.

    Returns:
        ``None`` when a decoder is available, otherwise a message naming the syntax and the plugins to install.
    """
    from pydicom.pixels import get_decoder

    uid = UID(transfer_syntax)
    label = f"{uid.name} ({uid})" if uid.name != str(uid) else str(uid)
    try:
        decoder = get_decoder(uid)
    except NotImplementedError:
        return f"transfer syntax {label} has no pixel data decoder in pydicom {pydicom.__version__}"
    if decoder.is_available:
        return None
    missing = decoder.missing_dependencies
    hint = "; ".join(missing) if missing else "no plugin reported"
    return (
        f"transfer syntax {label} needs a decoder plugin that is not installed; install one of: {hint} "
        f"(e.g. pip install pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg)"
    )


def walk_fragments(fp: BinaryIO, start: int, size: int) -> str | None:
    """Check the item headers of encapsulated pixel data by seeking; return a problem message or ``None``."""
    pos, n_items = start, 0
    while n_items <= _MAX_FRAGMENTS:
        if pos + 8 > size:
            return (
                f"truncated: encapsulated PixelData item {n_items} starts at byte {pos} but the file has {size} bytes "
                "(no sequence delimiter)"
            )
        fp.seek(pos)
        group, elem, length = struct.unpack("<HHL", fp.read(8))
        if (group, elem) == _SEQ_DELIM_TAG:
            if n_items < 2:  # item 0 is the Basic Offset Table; at least one fragment must follow
                return "encapsulated PixelData has no fragments"
            return None
        if (group, elem) != _ITEM_TAG:
            return (
                f"encapsulated PixelData is malformed: expected an item tag at byte {pos}, "
                f"found ({group:04X},{elem:04X})"
            )
        if length == _UNDEFINED_LENGTH:
            return f"encapsulated PixelData item {n_items} has an undefined length"
        pos += 8 + length
        if pos > size:
            return (
                f"truncated: encapsulated PixelData fragment {n_items} declares {length} bytes ending at byte {pos} "
                f"but the file has {size} bytes"
            )
        n_items += 1
    return f"encapsulated PixelData has more than {_MAX_FRAGMENTS} items"


def expected_pixel_bytes(ds: pydicom.Dataset) -> int | None:
    rows, cols = int_value(ds, "Rows"), int_value(ds, "Columns")
    bits = int_value(ds, "BitsAllocated")
    if not rows or not cols or not bits:
        return None
    frames = int_value(ds, "NumberOfFrames") or 1
    spp = int_value(ds, "SamplesPerPixel") or 1
    n_bits = rows * cols * frames * spp * bits
    return (n_bits + 7) // 8


def pixel_data_problem(
    fp: BinaryIO, ds: pydicom.Dataset, pos: int, size: int, prefix: bytes = b""
) -> tuple[str, str] | int | None:
    """Inspect the PixelData element header at ``pos`` (where ``stop_before_pixels`` stopped) without reading pixels.

    ``prefix``: the first bytes of the file when the caller already read them (the element header is taken from
    them when it lies inside, else read from ``fp``).

    Returns:
        ``(reason, detail)`` for a reject; else the byte offset where the pixel values start when the element has a
        defined length (native pixel data), or ``None`` (encapsulated pixel data).
    """
    if pos + 8 > size:
        return "no_pixel_data", "no PixelData element (7FE0,0010) in the file"
    implicit, little = getattr(ds, "original_encoding", (False, True))
    endian = "<" if little is not False else ">"
    if pos + 12 <= len(prefix):
        head = prefix[pos : pos + 12]
    else:
        fp.seek(pos)
        head = fp.read(12)
    group, elem = struct.unpack(f"{endian}HH", head[:4])
    tag = (group << 16) | elem
    if tag in _PIXEL_DATA_TAGS and tag != 0x7FE00010:
        return "unsupported_image", f"{_PIXEL_DATA_TAGS[tag]} (float pixel data) is not a radiograph the loader reads"
    if tag != 0x7FE00010:
        return "no_pixel_data", f"no PixelData element (7FE0,0010); header reading stopped at ({group:04X},{elem:04X})"
    if implicit:
        (length,) = struct.unpack(f"{endian}L", head[4:8])
        header_len = 8
    else:
        vr = head[4:6]
        if vr in _LONG_LENGTH_VRS:
            if len(head) < 12:
                return "no_pixel_data", f"truncated: PixelData element header cut off at byte {size}"
            (length,) = struct.unpack(f"{endian}L", head[8:12])
            header_len = 12
        else:
            (length,) = struct.unpack(f"{endian}H", head[6:8])
            header_len = 8
    value_start = pos + header_len
    if length == _UNDEFINED_LENGTH:
        problem = walk_fragments(fp, value_start, size)
        return ("no_pixel_data", problem) if problem else None
    if length == 0:
        return "no_pixel_data", "PixelData element is empty (length 0)"
    if value_start + length > size:
        return (
            "no_pixel_data",
            f"truncated: PixelData declares {length} bytes but only {max(size - value_start, 0)} remain in the file "
            f"({size} bytes)",
        )
    expected = expected_pixel_bytes(ds)
    if expected is not None and length < expected:
        return (
            "no_pixel_data",
            f"PixelData holds {length} bytes but Rows x Columns x Frames x Samples x BitsAllocated needs {expected}",
        )
    return value_start


def same_read_hash(fp: BinaryIO, ds: pydicom.Dataset, header: DicomHeader, value_start: int | None) -> Any:
    """The duplicate hash of the file being read: native little-endian pixel data are memory-mapped from the open file
    and hashed without pydicom's decoder (:func:`~monai_bone.data.duplicates.native_pixel_hash`, which touches only
    the thumbnail grid's pages); anything else (compressed, big-endian, an odd layout) is decoded
    (:func:`~monai_bone.data.duplicates.pixel_hash`)."""
    if value_start is not None and header.transfer_syntax in _NATIVE_LITTLE_ENDIAN:
        bits = int_value(ds, "BitsAllocated") or 0
        signed = int_value(ds, "PixelRepresentation") == 1
        invert = header.photometric == "MONOCHROME1"
        try:
            with mmap.mmap(fp.fileno(), 0, access=mmap.ACCESS_READ) as data:
                found = native_pixel_hash(
                    data, header.rows, header.columns, bits, header.bits_stored, signed, invert, offset=value_start
                )
        except (OSError, ValueError, BufferError):  # not mappable (e.g. a pipe): decode instead
            found = None
        if found is not None:
            return found
    return decoded_pixel_hash(header.path, dicom=True)


def deflated_pixel_problem(path: Path) -> tuple[str, str] | None:
    """Deflated data sets cannot be inspected by file position: read the (inflated) data set, still without decoding."""
    try:
        ds = pydicom.dcmread(path)
    except Exception as err:
        return "unreadable", f"deflated data set could not be inflated: {type(err).__name__}: {err}"
    if "PixelData" not in ds:
        return "no_pixel_data", "no PixelData element (7FE0,0010) in the file"
    length = len(ds["PixelData"].value or b"")
    expected = expected_pixel_bytes(ds)
    if length == 0:
        return "no_pixel_data", "PixelData element is empty (length 0)"
    if expected is not None and not ds.file_meta.get("TransferSyntaxUID", UID("")).is_compressed and length < expected:
        return "no_pixel_data", f"PixelData holds {length} bytes but the image needs {expected}"
    return None
