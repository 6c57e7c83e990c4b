"""What a request form holds, read without storing its files: text fields and the size of each file part.

The request guard (:mod:`monai_bone.label.http`) checks the JSON fields and the image part of a form before MONAI
Label parses it. Starlette's own form parser would write every file part to a temporary file first (one more copy of
an upload of up to the size cap); :func:`scan_form` streams a multipart body through ``python-multipart`` (the parser
Starlette uses) keeping only text fields (bounded) and counting file bytes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

__all__ = ["FormSummary", "MalformedFormError", "scan_form"]

#: Largest text field kept (MONAI Label's form fields are small JSON objects); Starlette's limit is the same.
MAX_FIELD_BYTES = 1024 * 1024


class MalformedFormError(ValueError):
    """A form body that does not parse (bad boundary, broken part headers, a field over the size limit)."""


@dataclass
class FormSummary:
    """Text fields (name -> values) and file parts (name -> sizes in bytes) of a form."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, list[int]] = field(default_factory=dict)


class _MultipartScan:
    def __init__(self, charset: str, max_field_bytes: int) -> None:
        self.summary = FormSummary()
        self.charset = charset
        self.max_field_bytes = max_field_bytes
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._name = ""
        self._is_file = False
        self._data = bytearray()
        self._size = 0

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self.on_part_begin,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
        }

    def on_part_begin(self) -> None:
        self._disposition, self._name, self._is_file, self._data, self._size = b"", "", False, bytearray(), 0

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name, self._header_value = b"", b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        if b"name" not in options:
            raise MalformedFormError('a form part has no "name" in its Content-Disposition')
        self._name = options[b"name"].decode(self.charset, errors="replace")
        self._is_file = b"filename" in options

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        self._size += end - start
        if not self._is_file:
            if self._size > self.max_field_bytes:
                raise MalformedFormError(f"form field {self._name!r} is larger than {self.max_field_bytes // 1024} KB")
            self._data += data[start:end]

    def on_part_end(self) -> None:
        if self._is_file:
            self.summary.files.setdefault(self._name, []).append(self._size)
        else:
            text = self._data.decode(self.charset, errors="replace")
            self.summary.fields.setdefault(self._name, []).append(text)


def scan_form(content_type: str, chunks: Iterable[bytes], max_field_bytes: int = MAX_FIELD_BYTES) -> FormSummary:
    """Text fields and file sizes of a ``multipart/form-data`` or ``application/x-www-form-urlencoded`` body.

    Args:
        content_type: the request's ``Content-Type`` header (with its ``boundary``).
        chunks: the body.
        max_field_bytes: largest text field of a multipart body.

    Raises:
        MalformedFormError: when the body does not parse as that form type.
    """
    kind, options = parse_options_header(content_type)
    charset = options.get(b"charset", b"utf-8").decode("latin-1") or "utf-8"
    try:
        "".encode(charset)
    except LookupError:
        charset = "latin-1"
    if kind == b"application/x-www-form-urlencoded":
        body = b"".join(chunks).decode(charset, errors="replace")
        summary = FormSummary()
        for name, value in parse_qsl(body, keep_blank_values=True):
            summary.fields.setdefault(name, []).append(value)
        return summary
    if kind != b"multipart/form-data":
        raise MalformedFormError(f"not a form: {content_type!r}")
    boundary = options.get(b"boundary")
    if not boundary:
        raise MalformedFormError("multipart body without a boundary")
    scan = _MultipartScan(charset, max_field_bytes)
    try:
        parser = MultipartParser(boundary, scan.callbacks())
        for chunk in chunks:
            parser.write(chunk)
        parser.finalize()
    except FormParserError as err:
        raise MalformedFormError(f"invalid multipart data ({err})") from None
    return scan.summary
