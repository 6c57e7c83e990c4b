"""DICOMweb as an index source: QIDO-RS search for DX/CR series, WADO-RS retrieval into a local cache folder.

``monai-bone index http://HOST:PORT/dicom-web --out datalist.json`` indexes the radiographs a PACS (or any DICOMweb
server, e.g. Orthanc with its DICOMweb plugin) holds:

1. **Search** (QIDO-RS, through :class:`dicomweb_client.DICOMwebClient`): studies whose ``ModalitiesInStudy`` is one
   of :data:`DICOMWEB_MODALITIES` (DX, CR), their series of those modalities, and the series' instances. The filter
   is applied by the server (and the returned Modality checked again here), so objects of other modalities (CT, MR,
   SR, ...) are never retrieved and never counted: they do not appear in ``rejects.csv``, which lists retrieved
   instances only.
2. **Retrieve** (WADO-RS, in the transfer syntax the server stores, ``transfer-syntax=*``) every instance into the
   cache folder as ``<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm``, each file written atomically.
   An instance already in the cache is not downloaded again when its file has the size recorded when it was
   written (``dicomweb_cache.json`` in the cache folder); DICOM UIDs name immutable objects, so the server is not
   asked again. A tqdm bar shows the progress.
3. **Index**: :class:`DicomwebSource` is a :class:`~monai_bone.data.sources.DicomFolderSource` over the cache, so each
   retrieved file goes through exactly the header checks of a local folder
   (:func:`~monai_bone.data.dicom_header.read_header`). An instance the server fails to deliver (HTTP error for that
   one instance, or an unusable answer) is listed in ``rejects.csv`` as ``unreadable`` with the HTTP status.

Errors that stop the whole run (the server cannot be reached, a search answers with an HTTP error, the URL is not a
DICOMweb service) raise :class:`DicomwebError` naming the URL and the status. Credentials given in the URL
(``http://user:password@host/dicom-web``) are sent as HTTP basic authentication and never shown. Patient names and
birth dates are neither requested in searches nor logged.

The search results and run summary are in :mod:`.dicomweb_instances`, the cache manifest in :mod:`.dicomweb_cache`,
URL/error handling in :mod:`.dicomweb_http`.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from monai_bone.data.dicom_records import RejectError
from monai_bone.data.sources.dicomweb_cache import file_size, load_manifest, save_manifest
from monai_bone.data.sources.dicomweb_http import (
    DICOMWEB_SCHEMES,
    DicomwebError,
    is_dicomweb_url,
    network_reason,
    remote_errors,
    search_all,
    split_dicomweb_url,
)
from monai_bone.data.sources.dicomweb_instances import (
    DICOMWEB_MODALITIES,
    RemoteInstance,
    RetrievalSummary,
    modality_value,
    uid_value,
)
from monai_bone.data.sources.folders import DicomFolderSource, SourceImage
from monai_bone.utils.io import atomic_write_bytes

__all__ = [
    "DEFAULT_CACHE_NAME",
    "DICOMWEB_SCHEMES",
    "DicomwebError",
    "DicomwebSource",
    "is_dicomweb_url",
    "split_dicomweb_url",
]

logger = logging.getLogger(__name__)

#: Default cache folder name (``monai-bone index`` puts it beside the datalist).
DEFAULT_CACHE_NAME: str = "dicomweb_cache"

_MANIFEST_SAVE_EVERY = 50


class DicomwebSource(DicomFolderSource):
    """A DICOMweb service as an index source: DX/CR instances retrieved into ``cache``, then read like a folder.

    Nothing is sent over the network until :meth:`files` (or :meth:`retrieve`) is called.

    Args:
        url: DICOMweb service root, e.g. ``http://127.0.0.1:8042/dicom-web`` (Orthanc); ``user:password@`` in the URL
            is sent as HTTP basic authentication.
        cache: cache folder (created when missing).
        exclude: accepted for interface compatibility with folder sources (the listing is the search result).
        modalities: modalities to search for.
        progress: show tqdm bars for the search and the retrieval.
        timeout: requests timeout, seconds (or ``(connect, read)``).
        max_attempts: attempts per request when the connection fails or the server answers 408/429/503/504
            (exponential back-off from 1 s).
        session: a ``requests.Session`` to use (e.g. with custom authentication); a new one when ``None``.

    Raises:
        ValueError: for a malformed URL or an empty ``modalities``.
    """

    kind = "dicomweb"

    def __init__(
        self,
        url: str,
        cache: str | os.PathLike,
        exclude: Collection[str | os.PathLike] = (),
        modalities: Sequence[str] = DICOMWEB_MODALITIES,
        progress: bool = True,
        timeout: float | tuple[float, float] = (10.0, 120.0),
        max_attempts: int = 3,
        session: Any = None,
    ) -> None:
        self.url, auth = split_dicomweb_url(url)
        self.modalities = tuple(str(m).upper() for m in modalities)
        if not self.modalities:
            raise ValueError("modalities must name at least one modality (e.g. DX, CR)")
        cache = Path(cache)
        if cache.exists() and not cache.is_dir():
            raise ValueError(f"DICOMweb cache {cache} exists and is not a folder")
        cache.mkdir(parents=True, exist_ok=True)
        super().__init__(cache, exclude)
        self.progress = progress
        self.summary = RetrievalSummary(self.url, self.modalities)
        self._timeout = timeout
        self._max_attempts = max(1, int(max_attempts))
        self._session = session
        self._auth = auth
        self._client = None
        self._files: list[Path] | None = None
        self._failed: dict[Path, str] = {}

    @property
    def cache(self) -> Path:
        """The cache folder (the source's root)."""
        return self.root

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r}, cache={str(self.root)!r})"

    # -- HTTP ---------------------------------------------------------------------------------------------------------
    def _get_client(self):
        if self._client is None:
            import requests
            from dicomweb_client import DICOMwebClient

            session = self._session if self._session is not None else requests.Session()
            if self._auth is not None:
                session.auth = self._auth

            def count(response, *args, **kwargs):
                self.summary.requests += 1
                return response

            session.hooks.setdefault("response", []).append(count)
            try:
                client = DICOMwebClient(self.url, session=session, timeout=self._timeout)
            except ValueError as err:
                raise ValueError(f"DICOMweb URL {self.url!r} is not usable: {err}") from None
            client.set_http_retry_params(retry=True, max_attempts=self._max_attempts, wait_exponential_multiplier=500)
            self._client = client
        return self._client

    def _remote(self, what: str):
        """Context turning a failed search into :class:`DicomwebError` (:func:`~.dicomweb_http.remote_errors`)."""
        return remote_errors(self.url, what, self._max_attempts)

    # -- search -------------------------------------------------------------------------------------------------------
    def search(self) -> list[RemoteInstance]:
        """QIDO-RS: the instances of the DX/CR series of the studies holding such series.

        Returns:
            The instances, sorted like a folder listing of the cache (study, series, file name), without duplicates.

        Raises:
            DicomwebError: when a search fails.
        """
        from tqdm import tqdm

        client = self._get_client()
        studies: list[str] = []
        for modality in self.modalities:
            with self._remote(f"QIDO-RS search for studies with ModalitiesInStudy={modality}"):
                found = search_all(client.search_for_studies, search_filters={"ModalitiesInStudy": modality})
            studies.extend(uid for uid in (uid_value(d, "StudyInstanceUID") for d in found) if uid)
        studies = list(dict.fromkeys(studies))
        self.summary.studies = len(studies)

        instances: dict[str, RemoteInstance] = {}
        series_seen: set[tuple[str, str]] = set()
        for study in tqdm(studies, desc="query", unit="study", disable=not self.progress, dynamic_ncols=True):
            for modality in self.modalities:
                with self._remote(f"QIDO-RS search for {modality} series of study {study}"):
                    found = search_all(client.search_for_series, study, search_filters={"Modality": modality})
                for data in found:
                    series, returned = uid_value(data, "SeriesInstanceUID"), modality_value(data)
                    if not series or (study, series) in series_seen:
                        continue
                    if returned is not None and returned not in self.modalities:  # server ignored the filter
                        logger.debug("skipping series %s of modality %s (not %s)", series, returned, self.modalities)
                        continue
                    series_seen.add((study, series))
                    with self._remote(f"QIDO-RS search for instances of series {series}"):
                        items = search_all(client.search_for_instances, study, series)
                    for item in items:
                        sop = uid_value(item, "SOPInstanceUID")
                        if sop:
                            inst = RemoteInstance(study, series, sop, returned or modality)
                            instances.setdefault(inst.relpath, inst)
        self.summary.series = len(series_seen)
        self.summary.instances = len(instances)
        if not instances:
            logger.warning("DICOMweb server %s holds no %s instances", self.url, "/".join(self.modalities))
        return sorted(
            instances.values(),
            key=lambda i: (i.study_instance_uid, i.series_instance_uid, i.sop_instance_uid + ".dcm"),
        )

    # -- retrieval ----------------------------------------------------------------------------------------------------
    def retrieve(self) -> RetrievalSummary:
        """Search, then retrieve into the cache every instance not cached yet (tqdm progress).

        Returns:
            The :class:`RetrievalSummary` (also :attr:`summary`).

        Raises:
            DicomwebError: when the server cannot be reached or a search fails.
        """
        from tqdm import tqdm

        self.summary = RetrievalSummary(self.url, self.modalities)
        found = self.search()
        manifest = load_manifest(self.root)
        files: list[Path] = []
        failed: dict[Path, str] = {}
        written_since_save = 0
        bar = tqdm(found, desc="retrieve", unit="instance", disable=not self.progress, dynamic_ncols=True)
        try:
            for inst in bar:
                rel = inst.relpath
                path = self.root / rel
                files.append(path)
                if not inst.valid:
                    failed[path] = (
                        f"the server returned a malformed UID for this instance (study {inst.study_instance_uid!r}, "
                        f"series {inst.series_instance_uid!r}, SOP instance {inst.sop_instance_uid!r})"
                    )
                    continue
                size = manifest.get(rel)
                if size is not None and file_size(path) == size:
                    self.summary.cached += 1
                    continue
                data, problem = self._retrieve_one(inst)
                if problem is not None:
                    failed[path] = problem
                    continue
                atomic_write_bytes(path, data)
                manifest[rel] = len(data)
                self.summary.downloaded += 1
                self.summary.bytes_downloaded += len(data)
                written_since_save += 1
                if written_since_save >= _MANIFEST_SAVE_EVERY:
                    save_manifest(self.root, manifest)
                    written_since_save = 0
                if self.progress:
                    bar.set_postfix(new=self.summary.downloaded, cached=self.summary.cached, refresh=False)
        finally:
            bar.close()
            if written_since_save:
                save_manifest(self.root, manifest)
        self.summary.failed = len(failed)
        self._files, self._failed = files, failed
        logger.info("%s", self.summary)
        return self.summary

    def _retrieve_one(self, inst: RemoteInstance) -> tuple[bytes, str | None]:
        """WADO-RS retrieval of one instance as Part 10 bytes; ``(b"", problem)`` when the server did not deliver it.

        Raises:
            DicomwebError: when the server cannot be reached at all (connection refused, timeout).
        """
        import pydicom
        import requests
        from retrying import RetryError

        client = self._get_client()
        what = f"WADO-RS retrieval of instance {inst.sop_instance_uid}"
        try:
            ds = client.retrieve_instance(
                inst.study_instance_uid,
                inst.series_instance_uid,
                inst.sop_instance_uid,
                media_types=(("application/dicom", "*"),),
            )
        except requests.exceptions.HTTPError as err:
            response = err.response
            status = f"HTTP {response.status_code} {response.reason or ''}".rstrip() if response is not None else "HTTP"
            return b"", f"{what} from {self.url} failed: {status}"
        except RetryError as err:
            response = getattr(err.last_attempt, "value", None)
            status = f"HTTP {response.status_code}" if isinstance(response, requests.Response) else "an error"
            return b"", f"{what} from {self.url} failed: {status} after {self._max_attempts} attempts"
        except requests.exceptions.RequestException as err:
            raise DicomwebError(
                f"cannot reach DICOMweb server {self.url} ({what}): {network_reason(err)}; the instances retrieved "
                f"so far stay in the cache {self.root}"
            ) from None
        except Exception as err:  # unparseable multipart/DICOM answers: pydicom and dicomweb-client raise many types
            return b"", f"{what} from {self.url} gave an unusable answer: {type(err).__name__}: {err}"
        returned = str(ds.get("SOPInstanceUID", "") or "")
        if returned != inst.sop_instance_uid:
            return b"", f"{what} from {self.url} returned a different instance (SOPInstanceUID {returned!r})"
        buffer = io.BytesIO()
        try:
            pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
        except Exception as err:  # missing transfer syntax in the file meta, unencodable values
            return b"", f"{what} from {self.url}: the answer cannot be stored as a DICOM file: {err}"
        return buffer.getvalue(), None

    # -- ImageSource interface ----------------------------------------------------------------------------------------
    def files(self) -> list[Path]:
        """The cache paths of the instances found by the search (retrieving them on the first call).

        Raises:
            DicomwebError: when the server cannot be reached or a search fails.
        """
        if self._files is None:
            self.retrieve()
        return list(self._files)

    def read(self, path: Path, keys: Sequence[str] = ("PatientID",), pixel_hash: bool = False) -> SourceImage:
        """Header read of a retrieved file, exactly as for a DICOM folder.

        Raises:
            RejectError: ``unreadable`` for an instance the server did not deliver (the detail gives the HTTP
                status); otherwise the reasons of :func:`~monai_bone.data.dicom_header.read_header`.
        """
        problem = self._failed.get(Path(path))
        if problem is not None:
            raise RejectError("unreadable", problem)
        return super().read(path, keys=keys, pixel_hash=pixel_hash)
