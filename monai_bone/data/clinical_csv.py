"""Read clinical CSV files keyed by a column (default ``PatientID``) into typed values per key.

One or more CSV files are merged on the key. Reading is forgiving about format and strict about meaning:

* lines starting with ``#`` are comments (a comment containing :data:`~monai_bone.constants.SYNTHETIC_NOTE` marks the
  file as synthetic); blank lines are skipped;
* the delimiter is sniffed from the header line (``,``, ``;``, tab or ``|``); with ``;``/tab/``|`` a decimal comma
  (``1,62``) is read as a decimal point;
* the encoding is UTF-8 (with or without BOM) or UTF-16 with a byte-order mark, falling back to Latin-1 with a
  logged warning; a file with NUL bytes after that (UTF-16 without BOM, a binary file) is refused with a message naming
  it;
* column names match case-insensitively (``PatientID`` = ``patientid``; ``AGE_XRAY`` = ``age_xray``); the columns the
  index understands are :data:`~monai_bone.constants.CLINICAL_FIELDS` plus ``bmd`` (g/cm², hip) and ``label`` (knee:
  class index or name) -- others are kept as text but not used, and conflicting duplicates of them are set to
  ``None`` without a warning (their values never appear in a report);
* columns that hold direct identifiers (:data:`IDENTIFIER_COLUMNS`: ``PatientName``, ``PatientBirthDate``, ``name``,
  ``dob``, ``address``, ...) are ignored entirely -- their values are not even kept in memory -- with one logged note
  naming the column;
* numeric fields are parsed to float (``""``, ``NA``, ``nan``, ``null``, ``-``, ``?`` = missing); ``sex`` is normalised
  by :func:`~monai_bone.data.dicom_values.normalise_sex`, ``smoking`` by :func:`normalise_smoking` (cell parsing:
  :mod:`monai_bone.data.clinical_values`); values that do not parse become ``None`` with a
  :class:`~monai_bone.data.dicom_records.FieldWarning`;
* one record per line (quoted cells must not contain line breaks); a line whose cell count differs from the header's
  is skipped;
* a key that appears more than once (in one file or across files) is merged: missing values are filled from the other
  row, equal values are fine, and *conflicting* values are set to ``None`` and reported (never silently picked).

File-level problems (skipped lines, encoding fallback) are logged and kept in :attr:`ClinicalTable.file_warnings`;
the index writes them to ``warnings.csv`` with the CSV file as ``path``.

Unit fixes and plausibility checks are applied by the index (:mod:`monai_bone.data.datalist`), where header and CSV
values meet.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monai_bone.constants import CLINICAL_FIELDS, SYNTHETIC_NOTE
from monai_bone.data.clinical_values import MISSING_TOKENS, normalise_smoking, parse_clinical_value, parse_number
from monai_bone.data.dicom_records import FieldWarning

__all__ = [
    "IDENTIFIER_COLUMNS",
    "LABEL_COLUMNS",
    "MISSING_TOKENS",
    "ClinicalTable",
    "normalise_smoking",
    "parse_clinical_value",
    "parse_number",
    "read_clinical_csv",
]

logger = logging.getLogger(__name__)

_DELIMITERS = (",", ";", "\t", "|")

#: Label columns understood besides the clinical fields: ``bmd`` (g/cm², hip) and ``label`` (knee class).
LABEL_COLUMNS: tuple[str, ...] = ("bmd", "label")

#: Column names (lower case, ignoring ``_``, ``-`` and spaces) that hold direct identifiers: never read.
IDENTIFIER_COLUMNS: frozenset[str] = frozenset(
    {
        "patientname",
        "name",
        "fullname",
        "firstname",
        "lastname",
        "surname",
        "givenname",
        "familyname",
        "patientbirthdate",
        "birthdate",
        "dateofbirth",
        "dob",
        "patientbirthtime",
        "patientbirthname",
        "patientmotherbirthname",
        "otherpatientnames",
        "patientaddress",
        "address",
        "street",
        "postcode",
        "zipcode",
        "patienttelephonenumbers",
        "telephone",
        "phone",
        "email",
        "responsibleperson",
        "referringphysicianname",
        "nhsnumber",
        "ssn",
        "socialsecuritynumber",
    }
)


@dataclass
class ClinicalTable:
    """Clinical values per key, merged from one or more CSV files.

    Attributes:
        key: the key column name as asked for (matched case-insensitively).
        paths: the files read.
        columns: canonical names of the understood columns present in at least one file
            (subset of ``CLINICAL_FIELDS + ("bmd", "label")``).
        rows: ``{key value: {column: value}}`` -- floats for numeric fields and ``bmd``, codes for ``sex`` and
            ``smoking``, stripped text for ``label`` and other columns; ``None`` when missing, unparseable or
            conflicting.
        origins: ``{key value: "file:line, file:line"}`` -- where each key's row(s) came from.
        warnings: ``{key value: [FieldWarning, ...]}`` -- unparseable cells and conflicting duplicates.
        synthetic_files: files with a ``#`` comment line containing :data:`~monai_bone.constants.SYNTHETIC_NOTE`.
        file_warnings: ``(file, FieldWarning)`` for problems not tied to a key: skipped lines (``field`` ``row``,
            code ``skipped``) and the encoding fallback (``field`` ``encoding``, code ``note``).
    """

    key: str
    paths: list[Path]
    columns: list[str]
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)
    warnings: dict[str, list[FieldWarning]] = field(default_factory=dict)
    synthetic_files: list[Path] = field(default_factory=list)
    file_warnings: list[tuple[Path, FieldWarning]] = field(default_factory=list)

    @property
    def synthetic(self) -> bool:
        """Every file read carries the synthetic-data note."""
        return bool(self.paths) and len(self.synthetic_files) == len(self.paths)

    def has_column(self, name: str) -> bool:
        """Whether a canonical column (e.g. ``"bmd"``) is present in any file."""
        return name in self.columns

    def get(self, key_value: str | None) -> dict[str, Any] | None:
        """The merged row of a key value, or ``None`` when there is none."""
        if key_value is None:
            return None
        return self.rows.get(str(key_value).strip())

    def __len__(self) -> int:
        return len(self.rows)

    def describe(self) -> str:
        """Short description for messages: file names and the number of keys."""
        return f"{', '.join(p.name for p in self.paths)} ({len(self.rows)} keys)"


def _decode(path: Path) -> tuple[str, str | None]:
    """Text of a CSV file and a note when it was not plain UTF-8 (``None`` otherwise)."""
    raw = path.read_bytes()
    note = None
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        text, note = raw.decode("utf-16"), "UTF-16 file (byte-order mark) decoded as UTF-16"
    else:
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            note = "not valid UTF-8; read as Latin-1 (check accented characters)"
            logger.warning("%s is not valid UTF-8; reading it as Latin-1", path)
            text = raw.decode("latin-1")
    if "\x00" in text:
        raise ValueError(
            f"clinical CSV {path}: contains NUL bytes (UTF-16 without a byte-order mark, or not a text file); "
            "save it as a UTF-8 CSV"
        )
    return text, note


def _sniff_delimiter(header_line: str) -> str:
    """Pick the delimiter that splits the header line into the most columns (quotes respected)."""
    best, best_count = ",", 0
    for delim in _DELIMITERS:
        count = len(next(csv.reader([header_line], delimiter=delim)))
        if count > best_count:
            best, best_count = delim, count
    return best


def _squash(name: str) -> str:
    return re.sub(r"[\s_\-.]", "", name.lower())


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def read_clinical_csv(paths: str | os.PathLike | Iterable[str | os.PathLike], key: str = "PatientID") -> ClinicalTable:
    """Read and merge clinical CSV file(s) on a key column.

    Args:
        paths: one path or several; all must have the key column.
        key: key column name, matched case-insensitively (default ``PatientID``).

    Returns:
        The merged :class:`ClinicalTable`.

    Raises:
        FileNotFoundError: when a file does not exist.
        ValueError: naming the file when it has no header, no key column, or a column name twice.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    path_list = [Path(p) for p in paths]
    if not path_list:
        raise ValueError("no clinical CSV file given")
    table = ClinicalTable(key=key, paths=path_list, columns=[])
    conflicted: dict[str, set[str]] = {}
    sources: dict[str, dict[str, str]] = {}
    row_counts: dict[str, int] = {}
    understood = set(CLINICAL_FIELDS) | set(LABEL_COLUMNS)
    for path in path_list:
        if not path.is_file():
            raise FileNotFoundError(f"clinical CSV {path} does not exist")
        text, note = _decode(path)
        if note:
            table.file_warnings.append((path, FieldWarning("encoding", "note", None, None, note, f"csv:{path.name}")))
        lines = text.splitlines()
        data_lines: list[tuple[int, str]] = []
        for number, line in enumerate(lines, start=1):
            stripped = line.strip()
            if not stripped:
                continue
            if stripped.startswith("#"):
                if SYNTHETIC_NOTE in stripped and path not in table.synthetic_files:
                    table.synthetic_files.append(path)
                continue
            data_lines.append((number, line))
        if not data_lines:
            raise ValueError(f"clinical CSV {path} has no header line")
        delimiter = _sniff_delimiter(data_lines[0][1])
        decimal_comma = delimiter != ","
        header = [h.strip() for h in next(csv.reader([data_lines[0][1]], delimiter=delimiter))]
        lowered = [h.lower() for h in header]
        duplicates = sorted({h for h in lowered if lowered.count(h) > 1 and h})
        if duplicates:
            raise ValueError(f"clinical CSV {path}: column(s) {duplicates} appear more than once (case-insensitive)")
        if key.lower() not in lowered:
            raise ValueError(
                f"clinical CSV {path}: key column {key!r} not found (columns: {', '.join(header)}); "
                "pass the right --key or rename the column"
            )
        key_index = lowered.index(key.lower())
        identifiers = [header[i] for i, name in enumerate(lowered) if _squash(name) in IDENTIFIER_COLUMNS]
        if identifiers:
            logger.info("%s: column(s) %s hold direct identifiers and are ignored", path, ", ".join(identifiers))
        columns = {
            i: name
            for i, name in enumerate(lowered)
            if i != key_index and name and _squash(name) not in IDENTIFIER_COLUMNS
        }
        for name in columns.values():
            if name in understood and name not in table.columns:
                table.columns.append(name)
        reader = csv.reader([line for _, line in data_lines[1:]], delimiter=delimiter)
        for (line_number, _), cells in zip(data_lines[1:], reader):
            where = f"{path.name}:{line_number}"
            if len(cells) != len(header):
                detail = f"{where}: {len(cells)} cells but the header has {len(header)} columns; line skipped"
                logger.warning("%s", detail)
                table.file_warnings.append((path, FieldWarning("row", "skipped", None, None, detail, f"csv:{where}")))
                continue
            key_value = cells[key_index].strip()
            if not key_value:
                detail = f"{where}: empty key {key!r}; line skipped"
                logger.warning("%s", detail)
                table.file_warnings.append((path, FieldWarning("row", "skipped", None, None, detail, f"csv:{where}")))
                continue
            row = table.rows.setdefault(key_value, {})
            row_counts[key_value] = row_counts.get(key_value, 0) + 1
            row_sources = sources.setdefault(key_value, {})
            bad = conflicted.setdefault(key_value, set())
            table.origins[key_value] = f"{table.origins[key_value]}, {where}" if key_value in table.origins else where
            for index, column in columns.items():
                cell = cells[index]
                try:
                    if column in understood:
                        value = parse_clinical_value(column, cell, decimal_comma)
                    else:
                        value = cell.strip() or None
                except ValueError as err:
                    table.warnings.setdefault(key_value, []).append(
                        FieldWarning(column, "unparseable", cell.strip(), None, f"{err}; set to null", f"csv:{where}")
                    )
                    value = None
                if column in bad or value is None:
                    row.setdefault(column, None)
                    continue
                previous = row.get(column)
                if previous is None:
                    row[column] = value
                    row_sources[column] = where
                elif not _same(previous, value):
                    bad.add(column)
                    row[column] = None
                    if column not in understood:  # an unused column: its values never go into a report
                        continue
                    table.warnings.setdefault(key_value, []).append(
                        FieldWarning(
                            column,
                            "conflict",
                            f"{previous} | {value}",
                            None,
                            f"{key} {key_value}: {column!r} is {previous} in {row_sources[column]} but {value} in "
                            f"{where}; set to null",
                            f"csv:{where}",
                        )
                    )
    table.columns = [c for c in (*CLINICAL_FIELDS, *LABEL_COLUMNS) if c in table.columns]
    duplicated = [k for k, n in row_counts.items() if n > 1]
    if duplicated:
        logger.info("%d key(s) appear in more than one CSV row; rows merged (conflicts reported)", len(duplicated))
    logger.debug("read clinical CSV(s) %s", table.describe())
    return table
