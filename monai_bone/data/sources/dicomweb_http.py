"""DICOMweb plumbing shared by the DICOMweb source and the PACS writer: URLs, errors, paged QIDO-RS searches.

Kept apart from :mod:`monai_bone.data.sources.dicomweb` (the source that retrieves instances for the index) so that
:mod:`monai_bone.results.pacs` (STOW-RS of results) uses public helpers instead of the source's private ones.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

__all__ = [
    "DICOMWEB_SCHEMES",
    "DicomwebError",
    "http_message",
    "is_dicomweb_url",
    "network_reason",
    "redact_url",
    "remote_errors",
    "search_all",
    "split_dicomweb_url",
    "strip_query",
]

#: URL schemes taken as DICOMweb, and the HTTP scheme each one means.
DICOMWEB_SCHEMES: dict[str, str] = {
    "http": "http",
    "https": "https",
    "dicomweb": "http",
    "dicomweb+http": "http",
    "dicomweb+https": "https",
}

_ERRNO_RE = re.compile(r"\[Errno -?\d+\] ([^'\")]+)")


class DicomwebError(RuntimeError):
    """The DICOMweb server could not be used (unreachable, HTTP error on a search, not a DICOMweb service)."""


def is_dicomweb_url(source: str | os.PathLike) -> bool:
    """Whether ``source`` is a URL with one of :data:`DICOMWEB_SCHEMES` (``http://``, ``https://``, ``dicomweb://``).

    Args:
        source: a folder path or URL.
    """
    text = os.fspath(source)
    scheme, sep, _ = text.partition("://")
    return bool(sep) and scheme.lower() in DICOMWEB_SCHEMES


def split_dicomweb_url(url: str) -> tuple[str, tuple[str, str] | None]:
    """The HTTP(S) service URL without credentials (also the form shown in messages), and the credentials if any.

    Args:
        url: ``http(s)://[user:password@]host[:port]/path`` or a ``dicomweb[+http|+https]://`` form of it.

    Returns:
        ``(url, (user, password) or None)``; the URL has no trailing slash.

    Raises:
        ValueError: when the URL has no host or an unknown scheme.
    """
    parts = urlsplit(url.strip())
    scheme = DICOMWEB_SCHEMES.get(parts.scheme.lower())
    if scheme is None:
        raise ValueError(f"{url!r} is not a DICOMweb URL (expected http://HOST:PORT/PATH)")
    if not parts.hostname:
        raise ValueError(f"DICOMweb URL {redact_url(url)!r} has no host (expected http://HOST:PORT/PATH)")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"DICOMweb URL {redact_url(url)!r} has an invalid port") from None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    netloc = f"{host}:{port}" if port else host
    clean = urlunsplit((scheme, netloc, parts.path.rstrip("/"), parts.query, ""))
    auth = (unquote(parts.username), unquote(parts.password or "")) if parts.username else None
    return clean, auth


def redact_url(url: str) -> str:
    """``url`` with any ``user:password@`` removed (for messages about URLs that failed to parse)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    netloc, slash, path = rest.partition("/")
    return f"{scheme}://{netloc.rpartition('@')[2]}{slash}{path}"


def search_all(search: Any, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
    """All results of a QIDO-RS search, paging with ``offset`` while pages bring new results.

    Stops at the first empty page, or at a page with nothing new (a server that ignores ``offset`` would otherwise
    send the same page forever).
    """
    results: list[dict[str, Any]] = []
    seen: set[str] = set()
    while True:
        page = search(*args, offset=len(results), **kwargs) if results else search(*args, **kwargs)
        if not isinstance(page, list) or not all(isinstance(d, dict) for d in page):
            kinds = sorted({type(d).__name__ for d in page}) if isinstance(page, list) else [type(page).__name__]
            raise ValueError(f"the answer is not a JSON array of DICOM data sets (found {', '.join(kinds)})")
        fresh = [d for d in page if json.dumps(d, sort_keys=True) not in seen]
        if not fresh:
            return results
        seen.update(json.dumps(d, sort_keys=True) for d in fresh)
        results.extend(fresh)


def strip_query(url: str | None) -> str:
    return (url or "").split("?", 1)[0]


def network_reason(err: Exception) -> str:
    """A short reason for a requests network error (``Connection refused``, ``timed out``, ...)."""
    import requests

    if isinstance(err, requests.exceptions.Timeout):
        return "timed out"
    match = _ERRNO_RE.search(str(err))
    if match:
        return match.group(1).strip()
    text = str(err)
    if "Failed to resolve" in text or "NameResolutionError" in text:
        return "host name cannot be resolved"
    return type(err).__name__


@contextlib.contextmanager
def remote_errors(url: str, what: str, max_attempts: int) -> Iterator[None]:
    """Turn requests/dicomweb-client failures of a search into :class:`DicomwebError` naming URL and status.

    Args:
        url: the service URL (no credentials); what: the request, for the message; max_attempts: attempts made.
    """
    import requests  # costly (~0.1 s) and only needed when a server is contacted; this module is imported by the CLI
    from retrying import RetryError

    try:
        yield
    except requests.exceptions.JSONDecodeError as err:
        raise DicomwebError(
            f"DICOMweb server {url}: {what} did not answer with DICOM JSON ({err.msg}); is {url} the "
            "DICOMweb root of the server (for Orthanc: http://HOST:8042/dicom-web)?"
        ) from None
    except requests.exceptions.HTTPError as err:
        raise DicomwebError(http_message(url, what, err.response)) from None
    except RetryError as err:
        response = getattr(err.last_attempt, "value", None)
        if isinstance(response, requests.Response):
            raise DicomwebError(http_message(url, what, response) + f" (after {max_attempts} attempts)") from None
        raise DicomwebError(f"DICOMweb server {url}: {what} failed after {max_attempts} attempts") from None
    except requests.exceptions.RequestException as err:
        raise DicomwebError(
            f"cannot reach DICOMweb server {url} ({what}): {network_reason(err)}; is the server running "
            "and the URL right?"
        ) from None
    except ValueError as err:  # JSON that is not a list of data sets, malformed answers
        raise DicomwebError(
            f"DICOMweb server {url}: {what} gave an unusable answer: {err}; is {url} the DICOMweb root "
            "of the server (for Orthanc: http://HOST:8042/dicom-web)?"
        ) from None


def http_message(url: str, what: str, response: Any) -> str:
    """The error message for an HTTP error answer (with a hint for 401/403/404/405)."""
    if response is None:
        return f"DICOMweb server {url}: {what} failed with an HTTP error"
    status = f"HTTP {response.status_code} {response.reason or ''}".rstrip()
    hint = ""
    if response.status_code in (404, 405):
        hint = f"; is {url} the DICOMweb root of the server (for Orthanc: http://HOST:8042/dicom-web)?"
    elif response.status_code in (401, 403):
        hint = "; the server refused access (credentials go in the URL: http://USER:PASSWORD@HOST/...)"
    return f"DICOMweb server {url}: {what} failed: {status} for GET {strip_query(response.url)}{hint}"
