"""HTTP safety of the MONAI Label server: bounded bodies, checked JSON form fields, JSON errors with a reason.

MONAI Label's endpoints parse their form fields themselves (``json.loads(params)``, ``request.update(params)``) and
answer a malformed value, a missing input or any other failure with a plain-text 500. :class:`RequestGuard` is an ASGI
middleware that checks a request before MONAI Label sees it:

- the body is at most ``max_upload_bytes`` (``Content-Length`` checked first, streamed bodies counted): 413;
- a multipart or URL-encoded form must parse, and its JSON fields (``params``, ``info``) must each be a JSON object
  nested at most :data:`MAX_JSON_DEPTH` deep (bad JSON, ``null``, a number, a list, deep nesting): 400;
- infer ``params`` may not replace the request's ``model``, ``image``, ``label`` or ``session``: 400;
- ``POST /infer/<model>`` needs an image (``?image=<id>``, ``?session_id=`` or a non-empty ``file`` part; an empty file
  is refused, and no ``label`` part is taken): 400;
- model files are not replaced or deleted over HTTP (``PUT``/``DELETE /model/<name>``), and no training, scoring,
  active-learning or batch job is started (MONAI Label submits them even with its tasks off): 405;
- ``output=dicom_seg`` (this app returns no masks) and a ``session_id`` while sessions are off: 400;
- an exception that escapes MONAI Label becomes a JSON 500 naming its type (the traceback goes to the server log).

The body is spooled to a temporary file (in the server's ``TMPDIR``, which ``monai-bone label serve`` puts inside its
work folder), its form scanned without storing the file parts (:func:`~monai_bone.label.form_scan.scan_form`) and
replayed to MONAI Label unchanged. :class:`RequestRefused` is an ``HTTPException`` that also carries
a machine-readable ``reason``; :func:`install` registers its handler, so refusals answer
``{"detail": "...", "reason": "..."}``. :mod:`monai_bone.label.asgi` is MONAI Label's FastAPI app with both installed
(``monailabel start_server --uvicorn_app monai_bone.label.asgi:app``, which ``label serve`` passes).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any

from fastapi import HTTPException
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from .form_scan import FormSummary, MalformedFormError, scan_form

__all__ = [
    "DEFAULT_MAX_UPLOAD_MB",
    "JSON_FORM_FIELDS",
    "MAX_JSON_DEPTH",
    "RESERVED_INFER_PARAMS",
    "RequestGuard",
    "RequestRefused",
    "discard_request_file",
    "install",
    "is_request_file",
    "json_object_field",
    "refused_response",
]

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: Default cap of a request body in MB (a large uncompressed DX radiograph is 20-60 MB).
DEFAULT_MAX_UPLOAD_MB = 100.0
#: Form fields that MONAI Label reads as a JSON object.
JSON_FORM_FIELDS: tuple[str, ...] = ("params", "info")
#: Request keys an infer ``params`` object may not replace (MONAI Label merges params over the request).
RESERVED_INFER_PARAMS: tuple[str, ...] = ("model", "image", "label", "session")
#: Deepest nesting of a JSON form field (request parameters are flat; a few levels leave room).
MAX_JSON_DEPTH = 16
_SPOOL_MEMORY = 1024 * 1024
_CHUNK = 1024 * 1024
_JOB_ROUTES = ("/train", "/scoring", "/activelearning", "/batch")
_FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


class RequestRefused(HTTPException):
    """A refused request: HTTP status, a sentence for people and a short reason for programs.

    Args:
        status_code: 4xx status.
        detail: what is wrong and, where there is one, what to do instead.
        reason: machine-readable cause (e.g. ``archive_read_only``, ``upload_too_large``, ``not_xray``).
    """

    def __init__(self, status_code: int, detail: str, reason: str | None = None) -> None:
        super().__init__(status_code=int(status_code), detail=detail)
        self.reason = reason


def is_request_file(path: Any) -> bool:
    """Whether ``path`` is a file MONAI Label wrote for the current request (``tmp*`` directly in the temp folder)."""
    if not isinstance(path, str) or not os.path.isabs(path):
        return False
    real = os.path.realpath(path)
    return os.path.dirname(real) == os.path.realpath(tempfile.gettempdir()) and os.path.basename(real).startswith("tmp")


def discard_request_file(path: Any) -> None:
    """Delete a request's temporary upload (MONAI Label removes it only after a successful answer)."""
    if is_request_file(path):
        with contextlib.suppress(OSError):
            os.unlink(path)


def refused_response(status_code: int, detail: str, reason: str | None = None) -> JSONResponse:
    """The JSON answer of a refusal: ``{"detail": ..., "reason": ...}`` (no ``reason`` key when there is none)."""
    body: dict[str, Any] = {"detail": detail}
    if reason:
        body["reason"] = reason
    return JSONResponse(body, status_code=int(status_code))


async def _refused_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestRefused)
    return refused_response(exc.status_code, str(exc.detail), exc.reason)


def _depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value (iterative, so any depth is measured safely)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            deepest = max(deepest, level)
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            deepest = max(deepest, level)
            stack.extend((v, level + 1) for v in item)
    return deepest


def json_object_field(name: str, text: str, max_depth: int = MAX_JSON_DEPTH) -> dict[str, Any]:
    """Parse a form field that must hold a JSON object (an empty field is ``{}``, as MONAI Label reads it).

    Args:
        name: field name, for the message.
        text: the field's text.
        max_depth: deepest nesting allowed.

    Raises:
        RequestRefused: (400, ``malformed_params``) naming the field and what is wrong with it.
    """
    if not text:
        return {}
    try:
        value = json.loads(text)
    except RecursionError:
        detail = f"{name}: JSON nested too deeply (at most {max_depth} levels)"
        raise RequestRefused(400, detail, "malformed_params") from None
    except ValueError as err:
        raise RequestRefused(400, f"{name}: not valid JSON ({err})", "malformed_params") from None
    if not isinstance(value, dict):
        kind = "null" if value is None else type(value).__name__
        raise RequestRefused(400, f"{name}: expected a JSON object of key -> value, got {kind}", "malformed_params")
    if _depth(value) > max_depth:
        raise RequestRefused(400, f"{name}: JSON nested too deeply (at most {max_depth} levels)", "malformed_params")
    return value


def _route(scope: Scope) -> tuple[str, str]:
    """(method, path without the root path), e.g. ``("POST", "/infer/hip_bmd_xattn")``."""
    path = scope.get("path") or "/"
    root = scope.get("root_path") or ""
    if root and path.startswith(root):
        path = path[len(root) :] or "/"
    return str(scope.get("method", "GET")).upper(), path


class RequestGuard:
    """ASGI middleware refusing oversize and malformed requests with JSON 4xx answers (see the module docstring).

    Args:
        app: the ASGI app (MONAI Label's FastAPI app, or the next middleware).
        max_upload_bytes: largest request body; ``None`` reads MONAI Label's ``--conf max_upload_mb`` at the first
            request (default :data:`DEFAULT_MAX_UPLOAD_MB`).
        max_json_depth: deepest nesting of a JSON form field.
    """

    def __init__(self, app: Any, max_upload_bytes: int | None = None, max_json_depth: int = MAX_JSON_DEPTH) -> None:
        self.app = app
        self._max_upload_bytes = max_upload_bytes
        self.max_json_depth = int(max_json_depth)

    @property
    def max_upload_bytes(self) -> int:
        """The body cap in bytes (from ``--conf max_upload_mb`` unless given to the constructor)."""
        if self._max_upload_bytes is None:
            self._max_upload_bytes = int(upload_cap_mb() * 1024 * 1024)
        return self._max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        spool = None
        try:
            spool = await self._read_body(scope, receive)
            if spool is not None:
                await self._check_form(scope, spool)
                receive = _replay(spool, receive)
            await self.app(scope, receive, send_watch)
        except RequestRefused as err:
            if started:
                raise
            await refused_response(err.status_code, str(err.detail), err.reason)(scope, receive, send)
        except Exception as err:
            logger.exception("request %s %s failed", *_route(scope))
            if started:
                raise
            detail = f"internal error ({type(err).__name__}); the server log has the details"
            await refused_response(500, detail, "internal_error")(scope, receive, send)
        finally:
            if spool is not None:
                spool.close()

    async def _read_body(self, scope: Scope, receive: Receive) -> Any:
        """Spool the body (bounded) for requests that may carry one; ``None`` when the request has no body."""
        method, path = _route(scope)
        _check_route(method, path)
        if method not in ("POST", "PUT", "PATCH"):
            return None
        headers = dict(scope.get("headers") or [])
        cap = self.max_upload_bytes
        length = headers.get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                raise RequestRefused(400, f"malformed Content-Length {length!r}", "malformed_request") from None
            if declared > cap:
                if headers.get(b"expect", b"").lower() != b"100-continue":  # else the client waits: send nothing
                    await _drain(receive, limit=min(declared, 4 * cap))
                raise RequestRefused(413, _too_large(cap), "upload_too_large")
        spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_MEMORY)  # noqa: SIM115 - closed by __call__
        total, more = 0, True
        try:
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise RequestRefused(400, "the client closed the connection mid-request", "malformed_request")
                chunk = message.get("body", b"")
                total += len(chunk)
                if total > cap:
                    raise RequestRefused(413, _too_large(cap), "upload_too_large")
                spool.write(chunk)
                more = bool(message.get("more_body", False))
        except BaseException:
            spool.close()
            raise
        spool.seek(0)
        return spool

    async def _check_form(self, scope: Scope, spool: Any) -> None:
        """Scan a form body (files are counted, not stored) and check its JSON fields and image input."""
        method, path = _route(scope)
        headers = dict(scope.get("headers") or [])
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        is_infer = method == "POST" and path.startswith("/infer/")
        form = FormSummary()
        if content_type.lower().startswith(_FORM_TYPES):
            try:
                form = await run_in_threadpool(scan_form, content_type, _chunks(spool))
            except MalformedFormError as err:
                raise RequestRefused(400, f"malformed form body: {err}", "malformed_request") from None
            finally:
                spool.seek(0)
        for name in JSON_FORM_FIELDS:
            if name in form.files:
                raise RequestRefused(400, f"{name}: expected a JSON text field, got a file", "malformed_params")
            for value in form.fields.get(name, []):
                given = json_object_field(name, value, self.max_json_depth)
                reserved = sorted(set(given) & set(RESERVED_INFER_PARAMS)) if is_infer else []
                if reserved:
                    detail = f"{name}: {reserved} cannot be set in params (use ?image=<id> or upload a file)"
                    raise RequestRefused(400, detail, "malformed_params")
        if is_infer:
            _check_infer_input(Request(scope), form)
        elif (
            method == "PUT"
            and path.rstrip("/") in ("/datastore", "/datastore/image")
            and 0 in form.files.get("file", [])
        ):
            raise RequestRefused(400, "the uploaded image file is empty", "empty_image")


def _check_route(method: str, path: str) -> None:
    """Routes this server does not offer: model file changes, and training, scoring, active-learning or batch jobs
    (MONAI Label submits those jobs even with its tasks switched off; this app predicts and stores no labels)."""
    if method in ("PUT", "DELETE") and path.startswith("/model/"):
        raise RequestRefused(405, "model files are not replaced or deleted over HTTP", "read_only")
    if method not in ("GET", "HEAD") and path.startswith(_JOB_ROUTES):
        detail = "this server predicts only: no training, scoring, active-learning or batch jobs over HTTP"
        raise RequestRefused(405, detail, "not_offered")


def _check_infer_input(request: Request, form: FormSummary) -> None:
    """An infer request names an image, a session or uploads a non-empty file; it takes no label input."""
    if "label" in form.files or "label" in form.fields:
        raise RequestRefused(400, "this server takes no label input (it predicts numbers, not masks)", "label_input")
    if "file" in form.fields:
        raise RequestRefused(400, "'file' must be an uploaded file", "malformed_request")
    if "file" in form.files:
        if 0 in form.files["file"]:
            raise RequestRefused(400, "the uploaded image file is empty", "empty_image")
        return
    if request.query_params.get("output") == "dicom_seg":
        raise RequestRefused(400, "this server returns no DICOM SEG (its models predict numbers)", "unsupported_output")
    if request.query_params.get("session_id") and not _sessions_on():
        raise RequestRefused(400, "sessions are off on this server: give ?image=<id> or upload a file", "sessions_off")
    image = request.query_params.get("image")
    if not image and not request.query_params.get("session_id"):
        raise RequestRefused(400, "no image given: ?image=<datastore id> or upload a file", "no_image")
    if image and os.path.isabs(image):
        raise RequestRefused(403, "image must be a datastore id (server paths are not served)", "server_path")


def _sessions_on() -> bool:
    from monailabel.config import settings

    return bool(settings.MONAI_LABEL_SESSIONS)


def _too_large(cap: int) -> str:
    return f"request body larger than the server's upload cap of {cap / 1024 / 1024:g} MB (label serve --max-upload-mb)"


async def _drain(receive: Receive, limit: int) -> None:
    """Read and discard up to ``limit`` body bytes, so the client reads the 413 instead of a reset connection."""
    seen, more = 0, True
    while more and seen <= limit:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        seen += len(message.get("body", b""))
        more = bool(message.get("more_body", False))


def _chunks(spool: Any) -> Iterator[bytes]:
    spool.seek(0)
    while chunk := spool.read(_CHUNK):
        yield chunk


def _replay(spool: Any, after: Receive | None = None) -> Receive:
    """A ``receive`` yielding the spooled body in chunks, then the client's own messages (``after``: a disconnect)."""
    spool.seek(0)
    done = False

    async def receive() -> Message:
        nonlocal done
        if done:
            return await after() if after is not None else {"type": "http.disconnect"}
        chunk = spool.read(_CHUNK)
        more = bool(chunk) and spool.tell() < _size(spool)
        if not more:
            done = True
        return {"type": "http.request", "body": chunk, "more_body": more}

    return receive


def _size(spool: Any) -> int:
    pos = spool.tell()
    spool.seek(0, 2)
    end = spool.tell()
    spool.seek(pos)
    return end


def upload_cap_mb() -> float:
    """The upload cap in MB from MONAI Label's ``--conf max_upload_mb`` (default :data:`DEFAULT_MAX_UPLOAD_MB`).

    Raises:
        ValueError: when the value is not a positive number.
    """
    from monailabel.config import settings

    text = (settings.MONAI_LABEL_APP_CONF or {}).get("max_upload_mb")
    if text in (None, ""):
        return DEFAULT_MAX_UPLOAD_MB
    value = float(text)
    if not value > 0:
        raise ValueError(f"--conf max_upload_mb: expected a positive number of MB, got {text!r}")
    return value


def install(app: Any, max_upload_bytes: int | None = None) -> Any:
    """Add :class:`RequestGuard` and the :class:`RequestRefused` handler to a FastAPI app (before it starts).

    Returns:
        The same app.
    """
    app.add_exception_handler(RequestRefused, _refused_handler)
    app.add_middleware(RequestGuard, max_upload_bytes=max_upload_bytes)
    return app
