"""DICOMweb client of ``monai-bone watch``: QIDO-RS queries, WADO-RS retrieval, STOW-RS storage, Orthanc changes.

Credentials never come from the URL (a URL with ``user:password@`` is refused): they are read from the environment
(``MONAI_BONE_DICOMWEB_USER`` / ``MONAI_BONE_DICOMWEB_PASSWORD``) or a file (``user:password`` on its first line),
sent as HTTP basic authentication, and never logged. Every failure to reach the server or an HTTP error raises
:class:`~monai_bone.data.sources.dicomweb.DicomwebError` naming the URL (without credentials) and the reason.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from monai_bone.data.sources.dicomweb_http import DicomwebError, split_dicomweb_url
from monai_bone.data.sources.dicomweb_http import network_reason as _network_reason
from monai_bone.data.sources.dicomweb_http import search_all as _search_all

__all__ = ["ENV_PASSWORD", "ENV_USER", "PacsClient", "load_credentials"]

ENV_USER: str = "MONAI_BONE_DICOMWEB_USER"
ENV_PASSWORD: str = "MONAI_BONE_DICOMWEB_PASSWORD"
_TAG = {
    "StudyInstanceUID": "0020000D",
    "SeriesInstanceUID": "0020000E",
    "SOPInstanceUID": "00080018",
    "Modality": "00080060",
    "BodyPartExamined": "00180015",
}


def load_credentials(path: str | os.PathLike | None = None) -> tuple[str, str] | None:
    """``(user, password)`` from ``path`` (first line ``user:password``) or the environment, else None.

    Raises:
        ValueError: when the file is missing or has no ``user:password`` line (its content is never shown).
    """
    if path is not None:
        try:
            first = Path(path).read_text(encoding="utf-8").splitlines()[0].strip()
        except (OSError, IndexError, UnicodeDecodeError):
            raise ValueError(f"credentials file {path}: missing or empty (expected one line user:password)") from None
        user, sep, password = first.partition(":")
        if not sep or not user:
            raise ValueError(f"credentials file {path}: expected one line user:password")
        return user, password
    user = os.environ.get(ENV_USER)
    if user:
        return user, os.environ.get(ENV_PASSWORD, "")
    return None


def value(data: dict[str, Any], keyword: str) -> str | None:
    """First value of an element of a DICOM JSON data set, as text."""
    element = data.get(_TAG[keyword]) if isinstance(data, dict) else None
    values = element.get("Value") if isinstance(element, dict) else None
    return str(values[0]).strip() if values else None


def is_loopback(url: str) -> bool:
    """Whether the URL's host is a loopback address (or ``localhost``)."""
    from urllib.parse import urlsplit

    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class PacsClient:
    """The DICOMweb calls of the watcher.

    Args:
        url: DICOMweb root (``http://HOST:PORT/dicom-web``), without credentials.
        auth: ``(user, password)`` for HTTP basic authentication, or None.
        timeout: seconds per HTTP request.

    Raises:
        ValueError: for a URL carrying credentials or that is not a DICOMweb URL.
    """

    def __init__(self, url: str, auth: tuple[str, str] | None = None, timeout: float = 30.0) -> None:
        clean, url_auth = split_dicomweb_url(url)
        if url_auth is not None:
            raise ValueError(
                f"the DICOMweb URL {clean} carries credentials: pass them with {ENV_USER}/{ENV_PASSWORD} or "
                "--credentials-file instead (a URL ends up in shell histories and process lists)"
            )
        self.url = clean
        self.timeout = timeout
        import requests

        self.session = requests.Session()
        if auth is not None:
            self.session.auth = auth
        self._client = None

    @property
    def client(self) -> Any:
        if self._client is None:
            from dicomweb_client import DICOMwebClient

            self._client = DICOMwebClient(self.url, session=self.session, timeout=self.timeout)
        return self._client

    @contextlib.contextmanager
    def remote(self, what: str) -> Iterator[None]:
        """Turn network and HTTP failures into :class:`DicomwebError` naming the server and the reason."""
        import requests

        try:
            yield
        except requests.exceptions.HTTPError as err:
            status = err.response.status_code if err.response is not None else "?"
            hint = " (credentials refused)" if status in (401, 403) else ""
            raise DicomwebError(f"DICOMweb server {self.url}: {what} failed: HTTP {status}{hint}") from None
        except requests.exceptions.RequestException as err:
            raise DicomwebError(
                f"cannot reach DICOMweb server {self.url} ({what}): {_network_reason(err)}; is the server running?"
            ) from None
        except ValueError as err:
            raise DicomwebError(f"DICOMweb server {self.url}: {what} gave an unusable answer: {err}") from None

    # -- Orthanc change feed ----------
    def orthanc_root(self) -> str | None:
        """The Orthanc REST root when the server is Orthanc (``GET <root>/system`` names it), else None."""
        root = self.url[: -len("/dicom-web")] if self.url.endswith("/dicom-web") else None
        if root is None:
            return None
        with self.remote("GET /system"):
            resp = self.session.get(f"{root}/system", timeout=self.timeout)
        try:
            doc = resp.json() if resp.ok else {}
        except ValueError:
            return None
        return root if isinstance(doc, dict) and "ApiVersion" in doc and "DicomAet" in doc else None

    def orthanc_changes(self, root: str, since: int) -> tuple[list[str], int]:
        """Study Instance UIDs touched by new instances after change ``since``, and the last change sequence."""
        studies: dict[str, None] = {}
        seen_series: set[str] = set()
        while True:
            with self.remote("GET /changes"):
                resp = self.session.get(f"{root}/changes", params={"since": since, "limit": 500}, timeout=self.timeout)
                resp.raise_for_status()
                doc = resp.json()
            for change in doc.get("Changes", []):
                if change.get("ChangeType") == "NewSeries" and change.get("ID") not in seen_series:
                    seen_series.add(change["ID"])
                    studies[self._orthanc_study_uid(root, "series", change["ID"])] = None
                elif change.get("ChangeType") == "NewInstance":
                    studies[self._orthanc_study_uid(root, "instances", change["ID"])] = None
            since = int(doc.get("Last", since))
            if doc.get("Done", True):
                return [s for s in studies if s], since

    def orthanc_last_seq(self, root: str) -> int:
        """The sequence number of the newest change (``GET /changes?last``)."""
        with self.remote("GET /changes?last"):
            resp = self.session.get(f"{root}/changes", params={"last": ""}, timeout=self.timeout)
            resp.raise_for_status()
            return int(resp.json().get("Last", 0))

    def _orthanc_study_uid(self, root: str, kind: str, orthanc_id: str) -> str:
        with self.remote(f"GET /{kind}/.../study"):
            resp = self.session.get(f"{root}/{kind}/{orthanc_id}/study", timeout=self.timeout)
            if resp.status_code == 404:  # deleted meanwhile
                return ""
            resp.raise_for_status()
            return str(resp.json().get("MainDicomTags", {}).get("StudyInstanceUID", ""))

    # -- QIDO-RS ----------
    def studies(self, since_date: str | None = None) -> list[str]:
        """Study Instance UIDs (StudyDate from ``since_date`` YYYYMMDD on, when given).

        No modality filter: the watcher looks at every series so that what it skips (a CT, an SR) is logged with
        the reason.
        """
        filters = {"StudyDate": f"{since_date}-"} if since_date else {}
        with self.remote("QIDO-RS search for studies"):
            found = _search_all(self.client.search_for_studies, search_filters=filters)
        return list(dict.fromkeys(uid for uid in (value(d, "StudyInstanceUID") for d in found) if uid))

    def series(self, study: str) -> list[dict[str, str | None]]:
        """Series of a study: ``{"series", "modality", "body_part"}`` each."""
        with self.remote(f"QIDO-RS search for series of study {study}"):
            found = _search_all(self.client.search_for_series, study, fields=["BodyPartExamined"])
        return [
            {
                "series": value(d, "SeriesInstanceUID"),
                "modality": value(d, "Modality"),
                "body_part": value(d, "BodyPartExamined"),
            }
            for d in found
            if value(d, "SeriesInstanceUID")
        ]

    def instances(self, study: str, series: str) -> list[str]:
        """SOP Instance UIDs of a series."""
        with self.remote(f"QIDO-RS search for instances of series {series}"):
            found = _search_all(self.client.search_for_instances, study, series)
        return [uid for uid in (value(d, "SOPInstanceUID") for d in found) if uid]

    # -- WADO-RS / STOW-RS ----------
    def retrieve(self, study: str, series: str, sop: str) -> bytes:
        """One instance as Part 10 bytes (in the transfer syntax the server stores)."""
        import pydicom

        with self.remote(f"WADO-RS retrieval of instance {sop}"):
            ds = self.client.retrieve_instance(study, series, sop, media_types=(("application/dicom", "*"),))
        buffer = io.BytesIO()
        pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
        return buffer.getvalue()

    def store(self, datasets: Sequence[Any], study: str) -> None:
        """STOW-RS the data sets into ``study``.

        Raises:
            DicomwebError: when the server is unreachable or refuses an instance.
        """
        with self.remote(f"STOW-RS into study {study}"):
            answer = self.client.store_instances(list(datasets), study_instance_uid=study)
        failed = answer.get("00081198") if answer is not None else None  # FailedSOPSequence
        if failed and failed.get("Value"):
            raise DicomwebError(f"DICOMweb server {self.url}: STOW-RS refused {len(failed['Value'])} instance(s)")
