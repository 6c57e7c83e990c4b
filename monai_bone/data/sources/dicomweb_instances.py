"""What a DICOMweb search finds: :class:`RemoteInstance` (one instance's UIDs), the :class:`RetrievalSummary` of a
run, and the readers of UID/Modality values in QIDO-RS DICOM JSON answers.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["DICOMWEB_MODALITIES", "RemoteInstance", "RetrievalSummary", "modality_value", "uid_value"]

#: Modalities searched for (QIDO-RS ``ModalitiesInStudy`` / ``Modality`` filters).
DICOMWEB_MODALITIES: tuple[str, ...] = ("DX", "CR")

_UID_RE = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_TAGS = {"StudyInstanceUID": "0020000D", "SeriesInstanceUID": "0020000E", "SOPInstanceUID": "00080018"}
_MODALITY_TAG = "00080060"


@dataclass(frozen=True)
class RemoteInstance:
    """One instance found by QIDO-RS.

    Attributes:
        study_instance_uid, series_instance_uid, sop_instance_uid: its UIDs.
        modality: the Modality of its series.
    """

    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    modality: str

    @property
    def valid(self) -> bool:
        """All three UIDs are well-formed DICOM UIDs (digits and dots, at most 64 characters)."""
        uids = (self.study_instance_uid, self.series_instance_uid, self.sop_instance_uid)
        return all(len(u) <= 64 and _UID_RE.match(u) for u in uids)

    @property
    def relpath(self) -> str:
        """Cache path ``<study>/<series>/<sop>.dcm`` (an ``_invalid_uid/<hash>.dcm`` name when a UID is malformed,
        so a server can never make the cache write outside its folder)."""
        if self.valid:
            return f"{self.study_instance_uid}/{self.series_instance_uid}/{self.sop_instance_uid}.dcm"
        key = "\\".join((self.study_instance_uid, self.series_instance_uid, self.sop_instance_uid))
        return f"_invalid_uid/{hashlib.sha1(key.encode('utf-8', 'replace')).hexdigest()}.dcm"


@dataclass
class RetrievalSummary:
    """What :meth:`DicomwebSource.retrieve` did.

    Attributes:
        url: the service URL (no credentials); modalities: the modalities searched for.
        studies, series, instances: counts found by QIDO-RS (DX/CR only).
        downloaded: instances retrieved with WADO-RS in this run; cached: instances reused from the cache;
        failed: instances the server did not deliver (listed as rejects by the index).
        bytes_downloaded: size of the files written in this run.
        requests: HTTP requests sent (searches and retrievals, retries included).
    """

    url: str
    modalities: tuple[str, ...] = DICOMWEB_MODALITIES
    studies: int = 0
    series: int = 0
    instances: int = 0
    downloaded: int = 0
    cached: int = 0
    failed: int = 0
    bytes_downloaded: int = 0
    requests: int = 0

    def __str__(self) -> str:
        return (
            f"DICOMweb {self.url}: {self.studies} stud(ies), {self.series} series, {self.instances} instance(s) "
            f"of {'/'.join(self.modalities)}; downloaded {self.downloaded} ({self.bytes_downloaded / 1e6:.1f} MB), "
            f"from cache {self.cached}, failed {self.failed}; {self.requests} HTTP request(s)"
        )


def uid_value(data: dict[str, Any], keyword: str) -> str | None:
    """First value of a UID element in a DICOM JSON data set."""
    element = data.get(_TAGS[keyword]) if isinstance(data, dict) else None
    values = element.get("Value") if isinstance(element, dict) else None
    return str(values[0]).strip() if values else None


def modality_value(data: dict[str, Any]) -> str | None:
    """Modality (upper case) of a DICOM JSON data set, ``None`` when absent."""
    element = data.get(_MODALITY_TAG) if isinstance(data, dict) else None
    values = element.get("Value") if isinstance(element, dict) else None
    return str(values[0]).strip().upper() if values else None
