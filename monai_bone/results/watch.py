"""``monai-bone watch``: poll a DICOMweb server for new radiographs, infer, and store the DICOM results back.

One poll (:meth:`Watcher.poll`):

1. **Find studies.** On Orthanc (detected from ``GET /system`` beside the DICOMweb root) the change feed
   (``/changes?since=N``) names the studies that received instances since the last poll; the first poll of a server
   (and any other server) runs a QIDO-RS study search (``--since YYYYMMDD`` limits it by StudyDate); later QIDO-RS
   polls search from the last poll's date minus ``--lookback-days`` (so, without a change feed, an image whose
   StudyDate is older than that window when it arrives is found only by a run with an earlier ``--since``).
2. **Choose.** Each series of those studies: another modality than DX/CR is skipped (one state entry for the series,
   reason logged); a DX/CR series whose BodyPartExamined is not in the body-part map is skipped likewise; instances
   already in the state file are not looked at again.
3. **Infer.** New instances are retrieved (WADO-RS) into the work folder and each bundle's own ``inference.json`` runs
   on them with ``write_sr: true`` (and ``save_gradcam`` for the heat map): the SR holds exactly the bundle's numbers.
4. **Store.** Each SR (and heat-map Secondary Capture) goes back with STOW-RS into the source's study; the instance is
   recorded ``done`` (or ``error`` with the message: a bad study never stops the loop) in the state file, which is
   saved after every instance -- a restart resumes where it stopped.

A server that cannot be reached ends the poll with a :class:`~monai_bone.data.sources.dicomweb.DicomwebError` (the state
keeps what was stored); :meth:`Watcher.run` then retries with exponential backoff, or returns with ``once``.
Only UIDs, statuses and messages are logged or stored -- never patient names or birth dates.
"""

from __future__ import annotations

import logging
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monai_bone.bundle import bundle_workflow, quiet_engines
from monai_bone.data.sources.dicomweb import DicomwebError
from monai_bone.tasks import REGISTRY
from monai_bone.utils.io import atomic_write_bytes

from .pacs import PacsClient
from .shards import torchrun_inference
from .state import WatchState

__all__ = ["DEFAULT_BODY_PARTS", "DEFAULT_TORCHRUN_TIMEOUT", "WATCH_MODALITIES", "WatchConfig", "Watcher", "qido_since"]

logger = logging.getLogger(__name__)

#: BodyPartExamined (upper case) -> task, from the task registry (``{"HIP": "hip", "PELVIS": "hip", "KNEE": "knee"}``).
DEFAULT_BODY_PARTS: dict[str, str] = {part: spec.name for spec in REGISTRY.values() for part in spec.body_parts}
#: Default of :attr:`WatchConfig.timeout` (seconds one torchrun run may take).
DEFAULT_TORCHRUN_TIMEOUT: float = 3600.0
#: Modalities processed.
WATCH_MODALITIES: tuple[str, ...] = ("DX", "CR")


@dataclass
class WatchConfig:
    """Settings of a watcher.

    Attributes:
        bundles: task -> bundle folder (tasks without a bundle are skipped with that reason).
        workdir: folder for retrieved files and inference outputs of a poll (removed after each poll unless
            ``keep_work``).
        body_parts: BodyPartExamined -> task.
        overrides: task -> ``inference.json`` overrides (e.g. ``{"spatial_size": 128}``).
        heatmap: also compute Grad-CAM and store the heat-map Secondary Capture.
        interval: seconds between polls.
        max_backoff: longest wait (seconds) between attempts while the server is down.
        since_date: YYYYMMDD lower bound of the QIDO-RS StudyDate search of the first poll (None: all dates).
        lookback_days: later QIDO-RS polls search StudyDate from the last poll's date minus this many days (a
            negative value: every poll searches from ``since_date``). Not used with Orthanc's change feed.
        use_changes: use Orthanc's change feed when the server is Orthanc.
        keep_work: keep the per-poll work folders.
        nproc: with more than 1, a bundle's batch of at least ``backlog`` new instances runs under ``torchrun``
            with ``multi_gpu_inference.json`` (one process per GPU; gloo processes on CPU).
        backlog: batch size from which ``nproc`` applies.
        timeout: seconds one ``torchrun`` run (``nproc`` > 1) may take before it is stopped - torchrun, its ranks and
            their children are all killed and the batch's instances get an ``error`` entry naming the timeout, so a
            hung run never blocks the watcher (None or <= 0: no limit). Set it above the time your largest backlog
            needs. In-process runs (``nproc`` 1) have no limit.
    """

    bundles: Mapping[str, Path]
    workdir: Path
    body_parts: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_BODY_PARTS))
    overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    heatmap: bool = False
    interval: float = 60.0
    max_backoff: float = 600.0
    since_date: str | None = None
    lookback_days: int = 2
    use_changes: bool = True
    keep_work: bool = False
    nproc: int = 1
    backlog: int = 200
    timeout: float | None = DEFAULT_TORCHRUN_TIMEOUT


@dataclass
class _Pending:
    study: str
    series: str
    sop: str
    task: str | None
    path: Path | None = None


def qido_since(last_poll: str | None, lookback_days: int, since_date: str | None = None) -> str | None:
    """StudyDate lower bound (YYYYMMDD) of a QIDO-RS poll: ``since_date`` on the first poll (``last_poll`` None) or
    with a negative ``lookback_days``, else the later of ``since_date`` and the last poll's date minus
    ``lookback_days``."""
    import datetime as dt

    if last_poll is None or lookback_days < 0:
        return since_date
    day = dt.datetime.strptime(last_poll[:10], "%Y-%m-%d").date() - dt.timedelta(days=lookback_days)
    bound = day.strftime("%Y%m%d")
    return max(bound, since_date) if since_date else bound


class Watcher:
    """Poll, infer, store back (see the module docstring).

    Args:
        client: the DICOMweb client.
        state: the state file.
        config: the settings.
    """

    def __init__(self, client: PacsClient, state: WatchState, config: WatchConfig) -> None:
        self.client = client
        self.state = state
        self.config = config
        self.body_parts = {str(k).upper(): str(v) for k, v in config.body_parts.items()}
        self.stop_event = threading.Event()
        self._poll_number = 0

    # -- one poll ----------
    def candidate_studies(self) -> list[str]:
        """Studies to look at in this poll (Orthanc change feed, or a QIDO-RS study search)."""
        server = self.state.server(self.client.url)
        root = self.client.orthanc_root() if self.config.use_changes else None
        if root is not None and "orthanc_seq" in server:
            studies, last = self.client.orthanc_changes(root, int(server["orthanc_seq"]))
            server["pending_seq"] = last
            logger.info(
                "Orthanc change feed: %d studies with new instances since change %s",
                len(studies),
                server["orthanc_seq"],
            )
            return studies
        if root is not None:  # first poll of this Orthanc: remember where the feed is before the full search
            server["pending_seq"] = self.client.orthanc_last_seq(root)
        studies = self.client.studies(
            qido_since(server.get("last_poll"), self.config.lookback_days, self.config.since_date)
        )
        logger.info("QIDO-RS: %d studies", len(studies))
        return studies

    def _task_for(self, body_part: str | None) -> tuple[str | None, str | None]:
        """(task, None) or (None, skip reason)."""
        if not body_part:
            return None, "BodyPartExamined is missing"
        task = self.body_parts.get(body_part.strip().upper())
        if task is None:
            known = ", ".join(f"{k}->{v}" for k, v in sorted(self.body_parts.items()))
            return None, f"BodyPartExamined {body_part!r} is not in the body-part map ({known})"
        if task not in self.config.bundles:
            return None, f"no bundle given for task {task!r} (BodyPartExamined {body_part!r})"
        return task, None

    def pending(self, studies: list[str]) -> list[_Pending]:
        """New DX/CR instances of ``studies``; series skipped for modality or body part are recorded."""
        out: list[_Pending] = []
        for study in studies:
            for s in self.client.series(study):
                series, modality = str(s["series"]), (s["modality"] or "").upper()
                if self.state.seen(series):
                    continue
                if modality not in WATCH_MODALITIES:
                    reason = f"modality {modality or 'missing'} is not {'/'.join(WATCH_MODALITIES)}"
                    logger.info("skipped series %s of study %s: %s", series, study, reason)
                    self.state.record(series, "skipped", level="series", study=study, reason=reason)
                    continue
                task, reason = self._task_for(s["body_part"]) if s["body_part"] else (None, None)
                if reason is not None:
                    logger.info("skipped series %s of study %s: %s", series, study, reason)
                    self.state.record(series, "skipped", level="series", study=study, reason=reason)
                    continue
                for sop in self.client.instances(study, series):
                    if not self.state.seen(sop):
                        out.append(_Pending(study, series, sop, task))
        return out

    def _retrieve(self, item: _Pending, folder: Path) -> bool:
        """Retrieve one instance; decide its task from its header when the series search did not say."""
        import pydicom

        data = self.client.retrieve(item.study, item.series, item.sop)
        if item.task is None:
            import io

            header = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
            item.task, reason = self._task_for(str(header.get("BodyPartExamined", "") or ""))
            if reason is not None:
                logger.info("skipped instance %s of study %s: %s", item.sop, item.study, reason)
                self.state.record(item.sop, "skipped", study=item.study, reason=reason)
                return False
        item.path = atomic_write_bytes(folder / item.task / f"{item.sop}.dcm", data)
        return True

    def _infer(self, task: str, source: Path, out: Path, n: int = 0) -> dict[str, dict]:
        """Run the bundle's inference.json on ``source`` (``n`` instances; under torchrun for a large backlog); per
        file name: the prediction row plus its DICOM outputs."""
        import json

        overrides = {"write_sr": True, "save_gradcam": bool(self.config.heatmap), **self.config.overrides.get(task, {})}
        if self.config.nproc > 1 and n >= self.config.backlog:
            self._torchrun(task, source, out, n, overrides)
        else:
            with quiet_engines():
                wf = bundle_workflow(
                    self.config.bundles[task], ("inference.json",), "infer", input=str(source), output_dir=str(out),
                    **overrides,
                )  # fmt: skip
                wf.initialize()
                try:
                    wf.run()
                finally:
                    wf.finalize()
        rows = {
            Path(r["image"]).name: dict(r) for r in json.loads((out / "predictions.json").read_text())["predictions"]
        }
        dicom = out / "dicom" / "dicom_outputs.json"
        studies = json.loads(dicom.read_text())["studies"] if dicom.is_file() else []
        for r in studies:
            rows.setdefault(Path(r["image"]).name, {}).update({f"dicom_{k}": v for k, v in r.items()})
        return rows

    def _torchrun(self, task: str, source: Path, out: Path, n: int, overrides: Mapping[str, Any]) -> None:
        """:func:`~monai_bone.results.shards.torchrun_inference` with :attr:`WatchConfig.timeout`.

        Raises:
            TimeoutError: when the run took longer (all its processes are gone by then).
            InterruptedError: when :attr:`stop_event` was set during the run (SIGTERM; likewise).
        """
        nproc, timeout = self.config.nproc, self.config.timeout
        timeout = float(timeout) if timeout is not None and timeout > 0 else None
        logger.info("%s: %d new instances -> torchrun with %d processes (timeout %s s)", task, n, nproc, timeout)
        try:
            torchrun_inference(
                self.config.bundles[task], source, out, nproc, dict(overrides), timeout=timeout, stop=self.stop_event
            )
        except subprocess.TimeoutExpired:
            raise TimeoutError(
                f"torchrun with {nproc} processes did not finish {n} instances within {timeout:g} s (watch --timeout); "
                "every process of the run was stopped"
            ) from None

    def _store(self, item: _Pending, row: Mapping[str, Any]) -> None:
        import pydicom

        error = row.get("error") or row.get("dicom_error")
        if error or not row.get("dicom_sr"):
            message = str(error or row.get("dicom_skipped") or "no SR was written")
            logger.error("instance %s of study %s: %s", item.sop, item.study, message)
            self.state.record(item.sop, "error", study=item.study, bundle=item.task, error=message)
            return
        datasets = [pydicom.dcmread(row["dicom_sr"])]
        if row.get("dicom_heatmap"):
            datasets.append(pydicom.dcmread(row["dicom_heatmap"]))
        self.client.store(datasets, item.study)
        for ds in datasets:  # our own series come back through the change feed: known, not skipped again
            self.state.instances.setdefault(str(ds.SeriesInstanceUID), {"status": "output", "study": item.study})
        uids = [str(d.SOPInstanceUID) for d in datasets]
        logger.info("stored SR %s for instance %s of study %s", uids[0], item.sop, item.study)
        self.state.record(
            item.sop, "done", study=item.study, bundle=item.task, sr=uids[0], heatmap=uids[1] if len(uids) > 1 else None
        )

    def poll(self) -> dict[str, int]:
        """One poll; returns the counts of this poll (``stored``, ``skipped``, ``errors``).

        Raises:
            DicomwebError: when the server cannot be reached (the state keeps everything recorded so far).
        """
        self._poll_number += 1
        before = self.state.counts()
        studies = self.candidate_studies()
        items = self.pending(studies)
        work = Path(self.config.workdir) / f"poll_{int(time.time())}_{self._poll_number}"
        try:
            by_task: dict[str, list[_Pending]] = {}
            for item in items:
                if self.stop_event.is_set():
                    break
                try:
                    if self._retrieve(item, work / "incoming"):
                        by_task.setdefault(str(item.task), []).append(item)
                except DicomwebError as err:
                    if "cannot reach" in str(err):
                        raise
                    self.state.record(item.sop, "error", study=item.study, error=str(err))
                except (ValueError, TypeError, AttributeError, OSError, EOFError) as err:  # an unusable instance
                    message = f"retrieved instance unusable: {type(err).__name__}: {err}"
                    logger.error("instance %s of study %s: %s", item.sop, item.study, message)
                    self.state.record(item.sop, "error", study=item.study, error=message)
            for task, group in by_task.items():
                if self.stop_event.is_set():
                    break
                try:
                    rows = self._infer(task, work / "incoming" / task, work / "out" / task, len(group))
                except Exception as err:  # a bundle failing on this batch: every instance gets its error entry
                    if self.stop_event.is_set():  # stopped (SIGTERM) during the run: left for the restart
                        logger.info("%s: stopped during inference; its %d instances stay pending", task, len(group))
                        break
                    message = f"{task} inference failed: {type(err).__name__}: {err}"
                    logger.error("%s", message)
                    for item in group:
                        self.state.record(item.sop, "error", study=item.study, bundle=task, error=message)
                    continue
                for item in group:
                    if self.stop_event.is_set():
                        break
                    self._store(item, rows.get(f"{item.sop}.dcm", {"error": "no prediction row for this instance"}))
            server = self.state.server(self.client.url)
            if "pending_seq" in server and not self.stop_event.is_set():
                server["orthanc_seq"] = server.pop("pending_seq")
            server["last_poll"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            self.state.save()
        finally:
            if not self.config.keep_work:
                shutil.rmtree(work, ignore_errors=True)
        after = self.state.counts()
        counts = {k: after.get(k, 0) - before.get(k, 0) for k in ("done", "skipped", "error")}
        logger.info(
            "poll %d: %d stored, %d skipped, %d errors",
            self._poll_number,
            counts["done"],
            counts["skipped"],
            counts["error"],
        )
        return {"stored": counts["done"], "skipped": counts["skipped"], "errors": counts["error"]}

    # -- the loop ----------
    def run(self, once: bool = False) -> int:
        """Poll until stopped (SIGTERM / Ctrl-C / :attr:`stop_event`); with ``once``, a single poll.

        Returns:
            0, or 1 when ``once`` and the server could not be reached.
        """
        self.stop_event.clear()
        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGTERM, lambda *_: self.stop_event.set())
        backoff = min(5.0, self.config.max_backoff)
        try:
            while not self.stop_event.is_set():
                try:
                    self.poll()
                    backoff = min(5.0, self.config.max_backoff)
                    wait = self.config.interval
                except DicomwebError as err:
                    logger.error("%s; state kept in %s", err, self.state.path)
                    if once:
                        return 1
                    wait, backoff = backoff, min(backoff * 2, self.config.max_backoff)
                    logger.info("retrying in %.1f s", wait)
                if once:
                    return 0
                self.stop_event.wait(wait)
        except KeyboardInterrupt:
            logger.info("interrupted; state kept in %s", self.state.path)
        else:
            logger.info("stopped; state kept in %s", self.state.path)
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
        return 0
