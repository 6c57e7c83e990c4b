"""Atomic file writing: a killed process never leaves a truncated file that a later run would trust."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

__all__ = [
    "TEMP_SUFFIX",
    "atomic_write_bytes",
    "atomic_write_csv",
    "atomic_write_json",
    "atomic_write_stream",
    "atomic_write_text",
    "csv_text",
]

#: Temporary files are ``.<name>.<random>.tmp`` in the destination folder (hidden; a killed writer may leave one).
TEMP_SUFFIX: str = ".tmp"


def atomic_write_stream(path: str | os.PathLike, write: Callable[[IO[bytes]], Any]) -> Path:
    """Call ``write(f)`` on a temporary file in the same folder as ``path``, then fsync and rename it to ``path``.

    A process killed at any point leaves either the previous ``path`` or the complete new one (plus, at worst, a
    hidden ``.<name>.*.tmp`` file), never a truncated ``path``.

    Args:
        path: destination file; parent folders are created.
        write: writes the content to the binary file object it gets (e.g. ``lambda f: torch.save(obj, f)``).

    Returns:
        The destination path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_current_umask())  # mkstemp creates 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and an atomic rename.

    Args:
        path: destination file; parent folders are created.
        data: bytes to write.

    Returns:
        The destination path.
    """
    return atomic_write_stream(path, lambda f: f.write(data))


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Atomically write ``text`` to ``path``."""
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> Path:
    """Atomically write ``obj`` as JSON (NaN is refused: it is not valid JSON)."""
    return atomic_write_text(path, json.dumps(obj, indent=indent, allow_nan=False, default=_json_default) + "\n")


def atomic_write_csv(
    path: str | os.PathLike,
    rows: Iterable[Mapping[str, Any]],
    fieldnames: Sequence[str],
    comment: str | None = None,
) -> Path:
    """Atomically write dict rows as CSV.

    Args:
        path: destination file.
        rows: mappings from column name to value; missing columns are written empty.
        fieldnames: column order.
        comment: optional first line, written as ``# comment`` (e.g. the synthetic-data note).
    """
    return atomic_write_text(path, csv_text(rows, fieldnames, comment))


def csv_text(rows: Iterable[Mapping[str, Any]], fieldnames: Sequence[str], comment: str | None = None) -> str:
    """Dict rows as CSV text (``None`` written empty), with an optional first line ``# comment``."""
    buf = io.StringIO()
    if comment:
        buf.write(f"# {comment}\n")
    writer = csv.DictWriter(buf, fieldnames=list(fieldnames), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return buf.getvalue()


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable (POSIX); a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
