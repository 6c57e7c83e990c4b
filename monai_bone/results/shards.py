"""Archive-scale inference under ``torchrun``: one shard of the pending studies per rank, resumable, one merged file.

``configs/multi_gpu_inference.json`` (on top of ``inference.json``) uses three pieces:

- :func:`distributed_datalist`: starts the process group (NCCL on GPU, gloo on CPU) and has rank 0 alone index a
  folder input (the other ranks wait, then read the same datalist);
- :func:`shard_records`: the studies not yet in any shard file of ``<output_dir>/shards/`` (so a rerun skips what is
  done), dealt round-robin to the ranks; a rank left with nothing gets a repeat of a pending study so every rank
  takes part in the collective steps (the merge keeps one row per study);
- :class:`ShardedPredictionWriter`: a :class:`~monai_bone.handlers.BonePredictionWriter` that appends each
  iteration's rows to its rank's ``shards/rank<R>-<pid>.jsonl`` (flushed and fsynced: a killed run keeps every
  finished batch) and, at the end, after a barrier, lets rank 0 merge all shard files (this run's and earlier ones)
  into the usual ``predictions.csv`` / ``predictions.json``, in datalist order.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monai_bone.data.folds import load_records
from monai_bone.data.inference import prepare_inference_datalist
from monai_bone.engines import get_rank, get_world_size, init_distributed
from monai_bone.handlers.prediction_writer import BonePredictionWriter

if TYPE_CHECKING:
    from ignite.engine import Engine

__all__ = [
    "SHARD_DIR",
    "ShardedPredictionWriter",
    "distributed_datalist",
    "done_sources",
    "kill_process_tree",
    "run_process_tree",
    "shard_records",
    "torchrun_inference",
]

logger = logging.getLogger(__name__)

#: Sub-folder of ``output_dir`` holding the per-rank row files.
SHARD_DIR: str = "shards"
_SOURCE = "_source"


def _rank_world() -> tuple[int, int]:
    """Join torchrun's process group when launched by it (``monai_bone.engines.init_distributed``)."""
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        init_distributed()
    return get_rank(), get_world_size()


def barrier() -> None:
    """``torch.distributed.barrier()`` in a distributed run, else nothing."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def distributed_datalist(input: str | os.PathLike, output_dir: str | os.PathLike, clinical: Any = None) -> Path:
    """:func:`~monai_bone.data.inference.prepare_inference_datalist` run by rank 0 only (the others wait, then read)."""
    rank, _ = _rank_world()
    path = prepare_inference_datalist(input, output_dir, clinical=clinical) if rank == 0 else None
    barrier()
    if path is None:
        is_json = Path(input).is_file() and str(input).lower().endswith(".json")
        path = Path(input) if is_json else Path(output_dir) / "inference_datalist.json"
    return Path(path)


def _shard_rows(output_dir: str | os.PathLike) -> list[dict[str, Any]]:
    rows = []
    for f in sorted((Path(output_dir) / SHARD_DIR).glob("rank*.jsonl")):
        for line in f.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except ValueError:  # the last line of a killed writer
                continue
            if isinstance(row, dict) and row.get(_SOURCE):
                rows.append(row)
    return rows


def done_sources(output_dir: str | os.PathLike) -> set[str]:
    """Absolute image paths that already have a row in a shard file of ``output_dir``."""
    return {r[_SOURCE] for r in _shard_rows(output_dir)}


def shard_records(datalist: str | os.PathLike, output_dir: str | os.PathLike) -> list[dict]:
    """This rank's share of the datalist studies that have no row yet (all ranks see the same list).

    Returns:
        ``pending[rank::world]``, or one pending study when that is empty but others are pending; ``[]`` when
        nothing is pending at all.
    """
    rank, world = _rank_world()
    done = done_sources(output_dir)
    records = load_records(datalist)
    pending = [r for r in records if os.path.abspath(str(r["image"])) not in done]
    barrier()  # every rank has read the shard files before any rank writes to them
    mine = pending[rank::world] or pending[:1]
    logger.info(
        "rank %d/%d: %d of %d pending studies (%d already done)", rank, world, len(mine), len(pending), len(done)
    )
    return mine


class ShardedPredictionWriter(BonePredictionWriter):
    """:class:`~monai_bone.handlers.BonePredictionWriter` for sharded, resumable runs (see the module docstring).

    Takes the arguments of :class:`~monai_bone.handlers.BonePredictionWriter` plus ``datalist`` (the datalist the
    shards come from; it orders the merged rows).
    """

    def __init__(self, *args: Any, datalist: str | os.PathLike | None = None, **kwargs: Any) -> None:
        relative_to = kwargs.pop("relative_to", None)
        super().__init__(*args, **kwargs)
        self.merge_relative_to = relative_to
        self.datalist = datalist
        self.shard_file: Path | None = None

    def __call__(self, engine: Engine) -> None:
        """Collect this iteration's rows and append them to this rank's shard file."""
        start = len(self.rows)
        super().__call__(engine)
        new = self.rows[start:]
        if not new:
            return
        if self.shard_file is None:
            rank, _ = _rank_world()
            self.shard_file = self.output_dir / SHARD_DIR / f"rank{rank}-{os.getpid()}.jsonl"
            self.shard_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.shard_file, "a", encoding="utf-8") as f:
            for row in new:
                f.write(json.dumps({**row, _SOURCE: os.path.abspath(row["image"])}, default=_plain) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def _completed(self, engine: Engine | None) -> None:
        barrier()
        if _rank_world()[0] == self.save_rank:
            self.merge(engine)

    def merge(self, engine: Engine | None = None) -> None:
        """Write ``predictions.csv`` / ``.json`` from every shard row, one per study, in datalist order."""
        order: dict[str, int] = {}
        if self.datalist is not None:
            order = {os.path.abspath(str(r["image"])): i for i, r in enumerate(load_records(self.datalist))}
        by_source: dict[str, dict[str, Any]] = {}
        for row in _shard_rows(self.output_dir):
            by_source.setdefault(row[_SOURCE], row)
        rows = []
        for source in sorted(by_source, key=lambda s: (order.get(s, len(order)), s)):
            row = {k: v for k, v in by_source[source].items() if k != _SOURCE}
            if self.merge_relative_to is not None:
                row["image"] = os.path.relpath(source, os.fspath(self.merge_relative_to))
            rows.append(row)
        self.write(rows, engine)


def torchrun_inference(
    bundle: str | os.PathLike,
    input: str | os.PathLike,
    output_dir: str | os.PathLike,
    nproc: int,
    overrides: dict[str, Any] | None = None,
    timeout: float | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Run ``inference.json`` + ``multi_gpu_inference.json`` of ``bundle`` under ``torchrun --standalone``.

    Args:
        bundle: the bundle folder.
        input: datalist, folder or file to infer.
        output_dir: the bundle's ``output_dir``.
        nproc: processes (one per GPU; on CPU, gloo processes).
        overrides: further ID overrides (``device`` is left to the multi-GPU config).
        timeout: seconds before the run is stopped (None: no limit). torchrun gets SIGTERM (it stops its ranks),
            then after a grace period everything still alive - torchrun, every rank (each in a session of its own)
            and their children (data loader workers) - gets SIGKILL; no process of the run outlives the call.
        stop: an event that, once set, stops the run the same way (e.g. ``monai-bone watch`` getting SIGTERM).

    Raises:
        RuntimeError: when torchrun fails (the message ends with the tail of its log).
        subprocess.TimeoutExpired: after ``timeout`` seconds (``output`` holds the tail of the log).
        InterruptedError: when ``stop`` was set.
    """
    import sys

    configs = "['configs/inference.json','configs/multi_gpu_inference.json']"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={int(nproc)}"]
    cmd += ["-m", "monai.bundle", "run", "--config_file", configs, "--bundle_root", str(bundle)]
    cmd += ["--input", str(input), "--output_dir", str(output_dir)]
    for key, value in (overrides or {}).items():
        if key != "device":
            cmd += [f"--{key}", value if isinstance(value, str) else json.dumps(value)]
    returncode, log = run_process_tree(cmd, cwd=bundle, timeout=timeout, stop=stop)
    if returncode != 0:
        raise RuntimeError(f"torchrun inference exited with {returncode}: {log}")


def run_process_tree(
    cmd: list[str],
    cwd: str | os.PathLike | None = None,
    timeout: float | None = None,
    tail: int = 2000,
    stop: threading.Event | None = None,
) -> tuple[int, str]:
    """Run ``cmd`` in a session of its own with its output in a temporary file; on timeout stop its whole tree.

    Args:
        cmd: the command line.
        cwd: its working folder.
        timeout: seconds (None: no limit); then :func:`kill_process_tree` ends the command and all its descendants.
        tail: characters of the combined stdout/stderr returned.
        stop: an event that, once set, ends the tree like a timeout does.

    Returns:
        ``(returncode, tail of the log)``.

    Raises:
        subprocess.TimeoutExpired: after ``timeout`` (every process of the tree is gone by then).
        InterruptedError: when ``stop`` was set (every process of the tree is gone by then).
    """
    import subprocess
    import tempfile

    with tempfile.TemporaryFile() as log:  # a file, not a pipe: a surviving grandchild could hold a pipe open
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            returncode = _wait(proc, timeout, stop)
        except BaseException as err:  # the timeout, a stop, or Ctrl-C of the caller: leave nothing running
            kill_process_tree(proc)
            if isinstance(err, InterruptedError):
                logger.warning("%s: stopped on request; every process of the run was killed", cmd[:3])
            if isinstance(err, subprocess.TimeoutExpired):
                logger.error("%s: stopped after %s s (timeout); every process of the run was killed", cmd[:3], timeout)
                raise subprocess.TimeoutExpired(cmd, float(timeout or 0), output=_tail(log, tail)) from None
            raise
        return returncode, _tail(log, tail)


def _wait(proc: Any, timeout: float | None, stop: threading.Event | None) -> int:
    """``proc.wait(timeout)``, checking ``stop`` every half second.

    Raises:
        subprocess.TimeoutExpired: after ``timeout``.
        InterruptedError: once ``stop`` is set.
    """
    import subprocess

    if stop is None:
        return proc.wait(timeout=timeout)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        if stop.is_set():
            raise InterruptedError("stopped on request")
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            raise subprocess.TimeoutExpired(proc.args, float(timeout or 0))
        try:
            return proc.wait(timeout=0.5 if left is None else min(0.5, left))
        except subprocess.TimeoutExpired:
            continue


#: Seconds a timed-out command gets after SIGTERM to stop its children itself, before SIGKILL to all of them.
KILL_GRACE_S: float = 10.0


def kill_process_tree(proc: Any, grace: float | None = None) -> None:
    """End a ``subprocess.Popen`` started with ``start_new_session=True`` and every process below it.

    The descendants are listed first (``psutil``: a rank whose launcher died is re-parented and could no longer be
    found), then the command gets SIGTERM and ``grace`` seconds, then every survivor and the process group of each
    (sessions of their own, as torchrun gives its ranks) gets SIGKILL.
    """
    import signal
    import subprocess

    import psutil

    grace = KILL_GRACE_S if grace is None else grace
    tree = _descendants(psutil, [proc.pid])
    proc.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)
    tree = {**tree, **_descendants(psutil, list(tree))}  # children started during the grace period
    if hasattr(os, "killpg"):
        groups = {proc.pid}
        for pid in tree:
            with contextlib.suppress(OSError):
                groups.add(os.getpgid(pid))
        for group in groups - {os.getpgrp()}:  # never the caller's own group
            with contextlib.suppress(OSError):
                os.killpg(group, signal.SIGKILL)
    for p in tree.values():
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    psutil.wait_procs(list(tree.values()), timeout=grace)


def _descendants(psutil: Any, pids: list[int]) -> dict[int, Any]:
    """``{pid: psutil.Process}`` of every live descendant of ``pids``."""
    found = {}
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            found.update({c.pid: c for c in psutil.Process(pid).children(recursive=True)})
    return found


def _tail(log: Any, n: int) -> str:
    size = log.seek(0, os.SEEK_END)
    log.seek(max(0, size - 4 * n))
    return log.read().decode("utf-8", "replace")[-n:]


def _plain(obj: Any) -> Any:
    return obj.tolist() if hasattr(obj, "tolist") else str(obj)
