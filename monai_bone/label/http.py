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

import logging
import os
import tempfile
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from .asgi_body import (
    DEFAULT_MAX_UPLOAD_MB,
    Message,
    Receive,
    Scope,
    Send,
    body_chunks,
    drain_body,
    replay_body,
    request_route,
    too_large_detail,
    upload_cap_mb,
)
from .form_scan import FormSummary, MalformedFormError, scan_form
from .refusals import (
    MAX_JSON_DEPTH,
    RequestRefused,
    discard_request_file,
    is_request_file,
    json_object_field,
    refused_handler,
    refused_response,
)

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

#: Form fields that MONAI Label reads as a JSON object.
JSON_FORM_FIELDS: tuple[str, ...] = ("params", "info")
#: Request keys an infer ``params`` object may not replace (MONAI Label merges params over the request).
RESERVED_INFER_PARAMS: tuple[str, ...] = ("model", "image", "label", "session")
_SPOOL_MEMORY = 1024 * 1024
_JOB_ROUTES = ("/train", "/scoring", "/activelearning", "/batch")
_FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


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
                receive = replay_body(spool, receive)
            await self.app(scope, receive, send_watch)
        except RequestRefused as err:
            if started:
                raise
            await refused_response(err.status_code, str(err.detail), err.reason)(scope, receive, send)
        except Exception as err:
            logger.exception("request %s %s failed", *request_route(scope))
            if started:
                raise
            detail = f"internal error ({type(err).__name__}); the server log has the details"
            await refused_response(500, detail, "internal_error")(scope, receive, send)
        finally:
            if spool is not None:
                spool.close()

    async def _read_body(self, scope: Scope, receive: Receive) -> Any:
        """Spool the body (bounded) for requests that may carry one; ``None`` when the request has no body."""
        method, path = request_route(scope)
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
                    await drain_body(receive, limit=min(declared, 4 * cap))
                raise RequestRefused(413, too_large_detail(cap), "upload_too_large")
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
                    raise RequestRefused(413, too_large_detail(cap), "upload_too_large")
                spool.write(chunk)
                more = bool(message.get("more_body", False))
        except BaseException:
            spool.close()
            raise
        spool.seek(0)
        return spool

    async def _check_form(self, scope: Scope, spool: Any) -> None:
        """Scan a form body (files are counted, not stored) and check its JSON fields and image input."""
        method, path = request_route(scope)
        headers = dict(scope.get("headers") or [])
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        is_infer = method == "POST" and path.startswith("/infer/")
        form = FormSummary()
        if content_type.lower().startswith(_FORM_TYPES):
            try:
                form = await run_in_threadpool(scan_form, content_type, body_chunks(spool))
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


def install(app: Any, max_upload_bytes: int | None = None) -> Any:
    """Add :class:`RequestGuard` and the :class:`RequestRefused` handler to a FastAPI app (before it starts).

    Returns:
        The same app.
    """
    app.add_exception_handler(RequestRefused, refused_handler)
    app.add_middleware(RequestGuard, max_upload_bytes=max_upload_bytes)
    return app
