"""ASGI request-body plumbing of the request guard (:mod:`monai_bone.label.http`): the route of a request, the
bounded upload cap, draining a refused body, and replaying a spooled body to MONAI Label unchanged."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any

__all__ = [
    "DEFAULT_MAX_UPLOAD_MB",
    "body_chunks",
    "drain_body",
    "replay_body",
    "request_route",
    "too_large_detail",
    "upload_cap_mb",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: Default cap of a request body in MB (a large uncompressed DX radiograph is 20-60 MB).
DEFAULT_MAX_UPLOAD_MB = 100.0
_CHUNK = 1024 * 1024


def request_route(scope: Scope) -> tuple[str, str]:
    """(method, path without the root path), e.g. ``("POST", "/infer/hip_bmd_xattn")``."""
    path = scope.get("path") or "/"
    root = scope.get("root_path") or ""
    if root and path.startswith(root):
        path = path[len(root) :] or "/"
    return str(scope.get("method", "GET")).upper(), path


def too_large_detail(cap: int) -> str:
    """The 413 sentence for a body over ``cap`` bytes."""
    return f"request body larger than the server's upload cap of {cap / 1024 / 1024:g} MB (label serve --max-upload-mb)"


async def drain_body(receive: Receive, limit: int) -> None:
    """Read and discard up to ``limit`` body bytes, so the client reads the 413 instead of a reset connection."""
    seen, more = 0, True
    while more and seen <= limit:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        seen += len(message.get("body", b""))
        more = bool(message.get("more_body", False))


def body_chunks(spool: Any) -> Iterator[bytes]:
    """The spooled body from its start, in chunks."""
    spool.seek(0)
    while chunk := spool.read(_CHUNK):
        yield chunk


def replay_body(spool: Any, after: Receive | None = None) -> Receive:
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
