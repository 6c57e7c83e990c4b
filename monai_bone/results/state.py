"""The local state file of ``monai-bone watch``: which instances were processed, and how.

A small JSON file (written atomically after every change, so a killed watcher loses nothing it already stored):

- ``instances``: SOP Instance UID -> ``{"status": "done"|"skipped"|"error", "study": <StudyInstanceUID>,
  "bundle": <task>, "sr": <SR SOP Instance UID>, "reason"/"error": <text>, "time": <UTC ISO time>}``;
- ``servers``: server URL (without credentials) -> ``{"orthanc_seq": <last change sequence>, "last_poll": <UTC>}``.

It holds DICOM UIDs, statuses and messages only -- never patient names, birth dates or other header values.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
from pathlib import Path
from typing import Any

from monai_bone.utils.io import atomic_write_json

__all__ = ["STATE_FORMAT", "WatchState"]

logger = logging.getLogger(__name__)

STATE_FORMAT: int = 1


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class WatchState:
    """Processed instances and poll positions, persisted in one JSON file.

    Args:
        path: the state file (created on the first change; parent folders too).

    Raises:
        ValueError: when an existing file is not a watch state (it is never overwritten then).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.instances: dict[str, dict[str, Any]] = {}
        self.servers: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            try:
                doc = json.loads(self.path.read_text(encoding="utf-8"))
                if doc.get("format") != STATE_FORMAT:
                    raise ValueError(f"format {doc.get('format')!r}")
                self.instances = dict(doc["instances"])
                self.servers = dict(doc.get("servers", {}))
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
                raise ValueError(f"{self.path}: not a monai-bone watch state file ({err}); move it away") from None

    def save(self) -> None:
        """Write the file atomically."""
        doc = {"format": STATE_FORMAT, "servers": self.servers, "instances": self.instances}
        atomic_write_json(self.path, doc)

    def seen(self, sop_uid: str) -> bool:
        """Whether the instance has an entry (done, skipped or error): it is not processed again."""
        return sop_uid in self.instances

    def record(self, sop_uid: str, status: str, **fields: Any) -> None:
        """Record one instance's outcome and save."""
        self.instances[sop_uid] = {
            "status": status,
            **{k: v for k, v in fields.items() if v is not None},
            "time": _now(),
        }
        self.save()

    def server(self, url: str) -> dict[str, Any]:
        """The poll position of one server (mutable; call :meth:`save` after changing it)."""
        return self.servers.setdefault(url, {})

    def counts(self) -> dict[str, int]:
        """Number of instances per status."""
        out: dict[str, int] = {}
        for entry in self.instances.values():
            out[entry.get("status", "?")] = out.get(entry.get("status", "?"), 0) + 1
        return out
