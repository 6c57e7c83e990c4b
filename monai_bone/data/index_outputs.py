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
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from monai_bone.utils.io import TEMP_SUFFIX

__all__ = [
    "PAUSE_ENV",
    "OutputCommit",
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


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_temp(path: Path, data: bytes, mask: int) -> str:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
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


class OutputCommit:
    """The commit protocol of the module docstring in two steps, so that the files known early (``rejects.csv``,
    ``warnings.csv``) are written and fsync'd in background threads while the caller still computes the commit file
    (the datalist); fsync releases the GIL, so their disk waits overlap that work.

    Use as a context manager (it holds the folder's lock from entry to exit)::

        with OutputCommit(folder, names) as commit:  # lock taken, stale temporaries of ``names`` removed
            commit.stage(early_files)  # written to temporaries in the background
            ...
            commit.finish(last_files)  # the rest; then delete, rename (the commit file last), fsync the folder

    Leaving the block without :meth:`finish` (an exception) removes this commit's temporaries and changes nothing.

    Args:
        folder: the output folder (created).
        names: file names of the whole output set (their stale temporaries are removed on entry).
    """

    def __init__(self, folder: Path, names: Sequence[str]) -> None:
        self.folder = Path(folder)
        self.names = list(names)
        self.staged: list[tuple[Path, bytes | None]] = []
        self.futures: list[tuple[Path, Future]] = []
        self.removed: list[Path] = []
        self._pool: ThreadPoolExecutor | None = None
        self._lock: contextlib.ExitStack | None = None
        self._mask = 0o022

    def __enter__(self) -> OutputCommit:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._mask = _umask()  # once, in this thread: the writers do not touch the process umask
        self._lock = contextlib.ExitStack()
        self._lock.enter_context(_locked(self.folder))
        self.removed = remove_stale_temps(self.folder, self.names)
        return self

    def stage(self, files: Sequence[tuple[Path, bytes | None]]) -> None:
        """Start writing ``(path, content)`` files (content ``None``: delete that file at commit) to temporaries."""
        self._check_folder(files)
        self.staged.extend(files)
        todo = [(p, data) for p, data in files if data is not None]
        if todo:
            self._pool = self._pool or ThreadPoolExecutor(max(2, len(todo)))
            self.futures += [(p, self._pool.submit(_write_temp, p, data, self._mask)) for p, data in todo]

    def finish(self, files: Sequence[tuple[Path, bytes | None]]) -> None:
        """Write the remaining files (the commit file last) and commit the whole set."""
        self._check_folder(files)
        order = [*self.staged, *files]
        pause = _pauses()
        last = [(p, self._pool.submit(_write_temp, p, data, self._mask)) for p, data in files if data is not None]
        temps = self._collect(self.futures + last)
        self.futures = []
        _pause(pause, "temps")
        for p, _ in reversed(order):  # the commit file (last) goes first
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        _pause(pause, "deleted")
        for p, tmp in temps:
            os.replace(tmp, p)
            _pause(pause, f"renamed:{p.name}")
        _fsync_dir(self.folder)

    def _check_folder(self, files: Sequence[tuple[Path, bytes | None]]) -> None:
        if any(p.parent != self.folder for p, _ in files):
            raise ValueError("commit_outputs: all files must be in one folder")
        self._pool = self._pool or ThreadPoolExecutor(3)

    @staticmethod
    def _collect(futures: list[tuple[Path, Future]]) -> list[tuple[Path, str]]:
        """Every temporary, durable; on an error the others are removed and the error re-raised."""
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

    def __exit__(self, *exc: object) -> None:
        try:
            if self.futures:  # left without finish(): drop this commit's temporaries
                with contextlib.suppress(BaseException):
                    for _, tmp in self._collect(self.futures):
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(tmp)
                self.futures = []
            if self._pool is not None:
                self._pool.shutdown(wait=True)
        finally:
            if self._lock is not None:
                self._lock.close()  # releases the folder lock


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
    with OutputCommit(folder, [p.name for p, _ in files]) as commit:
        commit.finish(files)
    return commit.removed
