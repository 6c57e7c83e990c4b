"""Refusals of the MONAI Label server: :class:`RequestRefused` (status, sentence, machine-readable reason), its JSON
answer, JSON form-field parsing, and the request's temporary upload files (used by :mod:`monai_bone.label.http`,
the app and the datastore)."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from typing import Any

from fastapi import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

__all__ = [
    "MAX_JSON_DEPTH",
    "RequestRefused",
    "discard_request_file",
    "is_request_file",
    "json_object_field",
    "refused_handler",
    "refused_response",
]

#: Deepest nesting of a JSON form field (request parameters are flat; a few levels leave room).
MAX_JSON_DEPTH = 16


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


async def refused_handler(_request: Request, exc: Exception) -> JSONResponse:
    """The exception handler that ``install`` registers: a :class:`RequestRefused` as its JSON answer."""
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
