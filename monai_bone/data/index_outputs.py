"""Crash-consistent outputs of the index: one run id in every file, committed so a kill never mixes two runs.

The index writes ``datalist.json``, ``rejects.csv`` and ``warnings.csv`` side by side. Each carries the run id of the
run that wrote it: the datalist's top-level ``"run_id"`` and the first line of each CSV,
``# monai-bone index run <run id>`` (read the CSVs with ``csv.DictReader`` over lines not starting with ``#``, or
``pandas.read_csv(path, comment="#")``).

Commit protocol (:func:`commit_outputs`), under an exclusive ``flock`` on the output folder itself (POSIX):

1. remove stale temporary files ``.<name>.*.tmp`` of these outputs, left by runs that were killed while writing
   (no live run can own them: a run writes its temporaries only while it holds the lock);
2. write every new file to a hidden temporary in the same folder and fsync it;
3. delete the previous outputs, the datalist first;
4. rename the temporaries into place, the datalist last, and fsync the folder (one directory fsync: the kernel
   applies a process's renames and unlinks in order, so a kill sees them in the order above).

A process killed at any point leaves the files of at most one run: the previous set (complete, or without its
datalist while step 3 runs), or part of the new set (the datalist appears last, so a datalist is always beside the
rejects and warnings of its own run). It never leaves a datalist beside the ``rejects.csv`` of another run. Rerunning
the index removes the temporaries and writes a complete set.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from monai_bone.utils.io import TEMP_SUFFIX

__all__ = [
    "PAUSE_ENV",
    "RUN_ID_PREFIX",
    "commit_outputs",
    "new_run_id",
    "read_run_id",
    "remove_stale_temps",
]

#: First line of every CSV the index writes (followed by the run id).
RUN_ID_PREFIX: str = "# monai-bone index run "


def new_run_id() -> str:
    """A new run id: UTC time plus 32 random bits, e.g. ``20261130T181502Z-9f3a61c2``."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(4)


def read_run_id(path: str | os.PathLike) -> str | None:
    """The run id a datalist JSON or an index CSV carries (``None`` when it has none)."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        try:
            value = json.loads(path.read_text(encoding="utf-8")).get("run_id")
        except (OSError, ValueError, AttributeError):
            return None
        return str(value) if value else None
    try:
        with open(path, encoding="utf-8") as f:
            first = f.readline().rstrip("\r\n")
    except OSError:
        return None
    return first[len(RUN_ID_PREFIX) :].strip() or None if first.startswith(RUN_ID_PREFIX) else None


def remove_stale_temps(folder: str | os.PathLike, names: Sequence[str]) -> list[Path]:
    """Delete the temporary files ``.<name>.*.tmp`` of the given output names in ``folder``.

    Call it only while holding the folder's commit lock (see the module docstring).

    Returns:
        The files removed.
    """
    removed = []
    folder = Path(folder)
    for name in names:
        for tmp in folder.glob(f".{name}.*{TEMP_SUFFIX}"):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
                removed.append(tmp)
    return removed


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory lock, the protocol still orders the writes
        yield
        return
    try:  # the folder itself is the lock (flock on a directory): no lock file is left among the user's files
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - a folder that cannot be opened: no advisory lock
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _write_temp(path: Path, data: bytes) -> str:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return tmp


def _write_temps(files: Sequence[tuple[Path, bytes]]) -> list[tuple[Path, str]]:
    """Write and fsync the temporary files of one commit concurrently (fsync releases the GIL: the file system
    flushes them together, ~half the time of one after the other); every temp is durable when this returns."""
    if len(files) < 2:
        return [(p, _write_temp(p, data)) for p, data in files]
    with ThreadPoolExecutor(len(files)) as pool:
        futures = [(p, pool.submit(_write_temp, p, data)) for p, data in files]
        done: list[tuple[Path, str]] = []
        error: BaseException | None = None
        for p, future in futures:
            try:
                done.append((p, future.result()))
            except BaseException as err:  # noqa: BLE001 - re-raised below once the other temps are cleaned up
                error = error or err
    if error is not None:
        for _, tmp in done:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        raise error
    return done


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


#: Testing only: JSON object of protocol step -> seconds to sleep there, so a crash test can kill the process at a
#: known point (steps ``"temps"``, ``"deleted"``, ``"renamed:<file name>"``).
PAUSE_ENV: str = "MONAI_BONE_TEST_COMMIT_PAUSE"


def _pauses() -> dict[str, float]:
    text = os.environ.get(PAUSE_ENV, "")
    if not text:
        return {}
    try:
        return {str(k): float(v) for k, v in json.loads(text).items()}
    except (ValueError, AttributeError):
        return {}


def _pause(pauses: dict[str, float], step: str) -> None:
    if pauses.get(step):  # no sleep(0) otherwise: on a busy machine it gives the CPU away
        time.sleep(pauses[step])


def commit_outputs(files: Sequence[tuple[Path, bytes | None]]) -> list[Path]:
    """Write a set of output files of one run with the protocol of the module docstring.

    Args:
        files: ``(path, content)`` pairs, all in one folder, the commit file (the datalist) **last**; content
            ``None`` deletes that file without writing a new one (e.g. no datalist when every file was rejected).

    Returns:
        The stale temporary files that were removed.
    """
    if not files:
        return []
    folder = files[0][0].parent
    if any(p.parent != folder for p, _ in files):
        raise ValueError("commit_outputs: all files must be in one folder")
    folder.mkdir(parents=True, exist_ok=True)
    pause = _pauses()
    with _locked(folder):
        removed = remove_stale_temps(folder, [p.name for p, _ in files])
        temps = _write_temps([(p, data) for p, data in files if data is not None])
        _pause(pause, "temps")
        for p, _ in reversed(files):  # the commit file (last) goes first
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        _pause(pause, "deleted")
        for p, tmp in temps:
            os.replace(tmp, p)
            _pause(pause, f"renamed:{p.name}")
        _fsync_dir(folder)
    return removed
