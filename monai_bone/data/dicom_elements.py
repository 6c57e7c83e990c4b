"""Fast access to the fields of a DICOM header read by pydicom (no value conversion, no pixel data).

pydicom converts an element's value on first access, which costs more than reading the header itself for the ~25
fields the index reads per file. These helpers read the stored (raw) element from a plain-int copy of the data set's
element store (:func:`plain_store`) and decode ASCII values (CS, UI, AS, DS, IS, US) directly, falling back to
pydicom's conversion for anything else. Used by :mod:`monai_bone.data.dicom_header` and
:mod:`monai_bone.data.dicom_pixels`.
"""

from __future__ import annotations

import functools
import struct
from typing import Any

import pydicom
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

__all__ = [
    "converted_text",
    "int_value",
    "keyword_tag",
    "patient_id_value",
    "plain_store",
    "raw_element",
    "text_value",
    "transfer_syntax",
]

#: SpecificCharacterSet values whose LO strings decode with one Python codec (no code extensions).
_SIMPLE_CHARSETS = {"": "latin-1", "ISO_IR 6": "latin-1", "ISO_IR 100": "latin-1", "ISO_IR 192": "utf-8"}


@functools.lru_cache(maxsize=256)
def keyword_tag(keyword: str) -> int | None:
    return tag_for_keyword(keyword)


def plain_store(ds: pydicom.Dataset) -> dict[int, Any] | None:
    """pydicom's element store keyed by plain ints, built once per data set.

    A look-up in the store itself compares the ``BaseTag`` keys with a Python-level ``__eq__`` (about half the cost
    of the header fields); the copy is kept in the data set's ``__dict__`` (not through pydicom's ``__setattr__``)
    and holds the elements as read (raw), which is what the readers below decode.
    """
    attrs = ds.__dict__
    plain = attrs.get("_monai_bone_plain")
    if plain is None:
        store = attrs.get("_dict")
        if not isinstance(store, dict):
            return None
        plain = attrs["_monai_bone_plain"] = {int(tag): elem for tag, elem in store.items()}
    return plain


def _store_of(ds: Any) -> dict[int, Any] | None:
    """:func:`plain_store` with the per-file copy looked up first (the common case: no function call)."""
    attrs = getattr(ds, "__dict__", None)
    if attrs is None:
        return None
    plain = attrs.get("_monai_bone_plain")
    return plain if plain is not None else plain_store(ds)


def _tag_of(keyword: str) -> int | None:
    tag = _TAGS.get(keyword, -1)
    if tag == -1:
        tag = _TAGS[keyword] = keyword_tag(keyword)
    return tag


#: keyword -> tag (plain dict: cheaper than the ``lru_cache`` call on the ~30 look-ups per file).
_TAGS: dict[str, int | None] = {}


def raw_element(ds: pydicom.Dataset, keyword: str) -> Any:
    """The stored element of ``keyword`` without value conversion (``RawDataElement`` until first accessed).

    Reads pydicom's element store directly (:func:`_plain_store`; ``Dataset.get_item`` converts the key to a ``Tag``
    on every call, which adds up over ~25 look-ups per file); falls back to the public ``get_item``.
    """
    tag = _tag_of(keyword)
    if tag is None:
        return None
    store = _store_of(ds)
    if store is not None:
        elem = store.get(tag)
        if not (type(elem) is RawDataElement and elem.value is None and elem.length):  # not a deferred read
            return elem
    return ds.get_item(tag, keep_deferred=True)


def converted_text(ds: pydicom.Dataset, keyword: str) -> str | None:
    """A header value converted by pydicom (character-set aware), as stripped text; ``None`` when absent/empty."""
    elem = ds.get(keyword)
    if elem is None:
        return None
    if isinstance(elem, (list, tuple)) or type(elem).__name__ == "MultiValue":
        text = "\\".join(str(v) for v in elem)
    else:
        text = str(elem)
    text = text.strip().strip("\x00").strip()
    return text or None


def text_value(ds: pydicom.Dataset, keyword: str) -> str | None:
    """Fast text of an ASCII-valued element (CS, UI, AS, DS, IS, and LT only for substring checks).

    Decodes the raw bytes directly instead of going through pydicom's value conversion, which costs more than
    reading the header itself; falls back to :func:`_converted_text` for anything but a plain raw element.
    Not for person-related text in arbitrary character sets (PatientID uses :func:`_converted_text`).
    """
    elem = raw_element(ds, keyword)
    if elem is None:
        return None
    if type(elem) is RawDataElement and elem.VR not in ("SQ", "UN"):  # the common case
        raw = elem.value
        return (raw.decode("latin-1").strip(" \x00\t\r\n") or None) if raw else None
    if not isinstance(elem, RawDataElement) or elem.VR in ("SQ", "UN"):
        value = getattr(elem, "value", None)
        if isinstance(value, str) and elem.VR not in ("SQ", "UN"):  # already converted (file meta, charset)
            return value.strip().strip("\x00").strip() or None
        return converted_text(ds, keyword)
    raw = elem.value
    if not raw:
        return None
    text = raw.decode("latin-1").strip(" \x00\t\r\n")
    return text or None


def int_value(ds: pydicom.Dataset, keyword: str) -> int | None:
    """An integer element (US read from its raw bytes, IS from text); ``None`` when absent or malformed."""
    elem = raw_element(ds, keyword)
    if elem is None:
        return None
    if isinstance(elem, RawDataElement):
        raw = elem.value
        if not raw:
            return None
        vr = elem.VR or dictionary_VR(elem.tag)
        if vr == "US" and len(raw) == 2:
            return struct.unpack("<H" if elem.is_little_endian else ">H", raw)[0]
        if vr == "IS":
            try:
                return int(raw.decode("latin-1").strip(" \x00"))
            except ValueError:
                return None
    try:
        return int(ds.get(keyword))
    except (TypeError, ValueError):
        return None


def patient_id_value(ds: pydicom.Dataset) -> str | None:
    """PatientID (LO): raw bytes decoded directly for ASCII/Latin-1/UTF-8 character sets, else via pydicom."""
    charset = text_value(ds, "SpecificCharacterSet")
    codec = _SIMPLE_CHARSETS.get(charset or "")
    elem = raw_element(ds, "PatientID")
    if codec is None or not isinstance(elem, RawDataElement):
        return converted_text(ds, "PatientID")
    raw = elem.value
    if not raw:
        return None
    try:
        text = raw.decode(codec).strip(" \x00")
    except UnicodeDecodeError:
        return converted_text(ds, "PatientID")
    return text or None


def transfer_syntax(ds: pydicom.Dataset) -> str:
    meta = getattr(ds, "file_meta", None)
    uid = text_value(meta, "TransferSyntaxUID") if meta is not None else None
    if uid:
        return uid
    implicit, little = getattr(ds, "original_encoding", (False, True))
    if implicit:
        return str(ImplicitVRLittleEndian)
    return str(ExplicitVRLittleEndian if little else ExplicitVRBigEndian)
