"""Salted pseudonyms for patient and study identifiers (``monai-bone index --pseudonymise``).

A pseudonym is a keyed hash (HMAC-SHA256) of the original value with a secret salt supplied by the user
(``--salt`` or the environment variable :data:`SALT_ENV`). The same salt gives the same pseudonyms in every run, so
datalists indexed at different times stay joinable; without the salt the originals cannot be recomputed by hashing
guessed IDs. The salt is never written to any output (datalist, reports, logs, mapping file).

* PatientID (and any other join key): ``PSN-`` + 20 hex digits (80 bits), e.g. ``PSN-3f9c0d2b7a51e4c8d6f0``.
* StudyInstanceUID / SOPInstanceUID: a valid DICOM UID under the ``2.25`` (UUID-derived) root: ``2.25.`` + the first
  128 bits of the keyed hash as a decimal integer (at most 44 characters).

The original -> pseudonym mapping is kept in memory and written only where the user asks (:meth:`Pseudonymiser.
write_mapping`, ``--mapping PATH``); store that file apart from the data you share.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from pathlib import Path

from monai_bone.utils.io import atomic_write_csv

__all__ = ["MAPPING_COLUMNS", "MIN_SALT_LENGTH", "SALT_ENV", "Pseudonymiser", "resolve_salt"]

logger = logging.getLogger(__name__)

#: Environment variable read when no salt is passed explicitly.
SALT_ENV: str = "MONAI_BONE_SALT"
#: Shortest salt accepted (a short salt can be found by brute force, which reveals every ID).
MIN_SALT_LENGTH: int = 8
#: Columns of the mapping CSV.
MAPPING_COLUMNS: tuple[str, ...] = ("kind", "original", "pseudonym")

_UID_KINDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")


def resolve_salt(salt: str | None = None) -> str:
    """The salt to use: ``salt`` when given, else the environment variable :data:`SALT_ENV`.

    Args:
        salt: the salt, or ``None``/empty to read the environment.

    Returns:
        The salt.

    Raises:
        ValueError: when there is no salt, or it is shorter than :data:`MIN_SALT_LENGTH` characters.
    """
    value = salt if salt else os.environ.get(SALT_ENV, "")
    if not value:
        raise ValueError(
            f"pseudonymisation needs a secret salt: pass --salt or set the environment variable {SALT_ENV} "
            "(use the same salt for every run whose pseudonyms must match; it is never written to any output)"
        )
    if len(value) < MIN_SALT_LENGTH:
        raise ValueError(f"the salt is too short ({len(value)} characters); use at least {MIN_SALT_LENGTH}")
    return value


class Pseudonymiser:
    """Map identifiers to salted pseudonyms and remember the mapping.

    Args:
        salt: the secret salt (see :func:`resolve_salt`).

    Raises:
        ValueError: for a missing or too short salt.
    """

    def __init__(self, salt: str) -> None:
        self._key = resolve_salt(salt).encode("utf-8")
        self.mapping: dict[tuple[str, str], str] = {}

    def __repr__(self) -> str:  # never show the salt
        return f"Pseudonymiser({len(self.mapping)} identifiers)"

    def _digest(self, kind: str, value: str) -> bytes:
        return hmac.new(self._key, f"{kind}\x00{value}".encode(), hashlib.sha256).digest()

    def pseudonym(self, kind: str, value: str | None) -> str | None:
        """The pseudonym of ``value`` of identifier ``kind`` (a DICOM keyword such as ``PatientID``).

        Args:
            kind: ``PatientID``, a UID keyword (``StudyInstanceUID``, ``SOPInstanceUID``, ...) or another key name.
            value: the original value; ``None``/empty stays ``None``.

        Returns:
            ``2.25.<decimal>`` for UID keywords, ``PSN-<20 hex>`` otherwise; ``None`` for a missing value.
        """
        if value is None or str(value).strip() == "":
            return None
        original = str(value).strip()
        cached = self.mapping.get((kind, original))
        if cached is not None:
            return cached
        digest = self._digest("UID" if kind in _UID_KINDS else "ID", original)
        if kind in _UID_KINDS:
            out = f"2.25.{int.from_bytes(digest[:16], 'big')}"
        else:
            out = f"PSN-{digest[:10].hex()}"
        self.mapping[(kind, original)] = out
        return out

    def write_mapping(self, path: str | os.PathLike) -> Path:
        """Write the original -> pseudonym mapping as CSV (``kind, original, pseudonym``), atomically.

        Args:
            path: the CSV file; keep it apart from the data you share.

        Returns:
            The path written.
        """
        rows = [{"kind": k, "original": o, "pseudonym": p} for (k, o), p in sorted(self.mapping.items())]
        out = atomic_write_csv(path, rows, MAPPING_COLUMNS)
        logger.info("wrote the pseudonym mapping (%d identifiers) to %s; keep it private", len(rows), out)
        return out
