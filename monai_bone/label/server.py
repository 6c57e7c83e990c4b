"""Preparing and running ``monailabel start_server`` with the monai-bone app (``monai-bone label serve``).

:class:`LabelServer` lays out a work folder and starts MONAI Label as a child process::

    <work_dir>/app/main.py          imports BoneLabelApp (MONAI Label also writes logs/, model/, bin/ here)
    <work_dir>/index/datalist.json  header index of a local studies folder, with rejects.csv and warnings.csv
    <work_dir>/index/rejects.json   image id -> why the index refused it (answered as 422, not "unknown")
    <work_dir>/studies/             MONAI Label's datastore: one link per usable radiograph, named <id>.dcm/.png/.jpg
    <work_dir>/uploads/             images uploaded with PUT /datastore/ (linked into studies/ under their id)
    <work_dir>/tmp/                 the server's TMPDIR: request bodies and files uploaded with an infer request
    <work_dir>/dicomweb_cache/      series retrieved from a DICOMweb server

A local folder (any depth, any file names) is indexed first with the same header rules as ``monai-bone index``;
MONAI Label's datastore then sees one link per accepted radiograph (its own bookkeeping files go into the work
folder, never into the archive; the archive is read-only to the server, see :mod:`monai_bone.label.datastore`). The
image id of a file (:func:`monai_bone.label.studies.image_id_for`) is its path relative to the folder, without the
suffix, with ``/`` written ``__`` (``patient1/hip/IM0001.dcm`` -> ``patient1__hip__IM0001``). A DICOMweb URL is passed
to MONAI Label as is; its image ids are SeriesInstanceUIDs of DX and CR series.

The server runs offline: MONAI Label's training, scoring, experiment tracking, sessions and downloads are switched off
(no SAM2 or DICOM-SEG tools; this app registers no model that would fetch weights). It runs MONAI Label's FastAPI app
with the request guard of :mod:`monai_bone.label.http` (``--uvicorn_app monai_bone.label.asgi:app``): request
bodies above ``max_upload_mb`` are answered 413, malformed forms and JSON parameters 400.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from monai_bone.bundle import BUNDLE_NAMES, default_bundle_dir
from monai_bone.label.process import die_with_parent, port_is_free
from monai_bone.label.studies import prepare_studies

__all__ = [
    "APP_MAIN",
    "DATASTORE_EXTENSIONS",
    "DEFAULT_MAX_UPLOAD_MB",
    "DEFAULT_SEARCH_FILTER",
    "LabelServer",
    "bundle_paths",
    "parse_models",
    "server_environment",
]

logger = logging.getLogger(__name__)

#: Default request body cap in MB (same as :data:`monai_bone.label.http.DEFAULT_MAX_UPLOAD_MB`, which needs FastAPI).
DEFAULT_MAX_UPLOAD_MB = 100.0

#: ``main.py`` of the app folder: MONAI Label looks there for a direct subclass of ``MONAILabelApp``.
APP_MAIN = '''"""MONAI Label app folder of monai-bone (written by `monai-bone label serve`; safe to reuse)."""

from monai_bone.label.app import BoneLabelApp  # noqa: F401  (the MONAILabelApp subclass MONAI Label loads)
'''

#: DICOMweb series filter unless ``MONAI_LABEL_DICOMWEB_SEARCH_FILTER`` is set (MONAI Label's own default is CT). A
#: QIDO-RS value list; a PACS without list matching needs ``{"Modality": "DX"}``.
DEFAULT_SEARCH_FILTER: dict[str, str] = {"Modality": "DX,CR"}

#: File patterns of the local datastore (the links are named with these suffixes).
DATASTORE_EXTENSIONS: tuple[str, ...] = ("*.dcm", "*.png", "*.jpg", "*.jpeg")


def parse_models(text: str | None) -> list[str]:
    """Tasks named by the ``models`` conf value (``"hip,knee"``, bundle names allowed); all tasks when empty.

    Raises:
        ValueError: for an unknown name.
    """
    if not text or not str(text).strip() or str(text).strip().lower() == "all":
        return list(BUNDLE_NAMES)
    by_name = {v: k for k, v in BUNDLE_NAMES.items()}
    tasks = []
    for part in str(text).split(","):
        name = part.strip()
        task = name if name in BUNDLE_NAMES else by_name.get(name)
        if task is None:
            raise ValueError(f"unknown model {name!r}; expected one of {sorted(BUNDLE_NAMES) + sorted(by_name)}")
        if task not in tasks:
            tasks.append(task)
    return tasks


def bundle_paths(tasks: Sequence[str], given: Mapping[str, str | os.PathLike] | None = None) -> dict[str, Path]:
    """The bundle of every task to serve: the given folder/zip, else the source tree's bundle; checked before start-up.

    Args:
        tasks: ``"hip"`` / ``"knee"``.
        given: task -> bundle folder or exported zip.

    Returns:
        Task -> absolute bundle path.

    Raises:
        FileNotFoundError: when a bundle, its ``configs/inference.json`` or its trained ``models/model.pt`` is missing.
    """
    out: dict[str, Path] = {}
    for task in tasks:
        path = Path(given[task]).expanduser() if given and given.get(task) else default_bundle_dir(task)
        if not path.exists():
            raise FileNotFoundError(f"{task} bundle not found: {path}")
        if path.is_dir():
            for rel in ("configs/inference.json", "models/model.pt"):
                if not (path / rel).is_file():
                    raise FileNotFoundError(
                        f"{path}: {rel} not found; serve a trained bundle (--{task}-bundle DIR_OR_ZIP; "
                        "`monai-bone demo` writes trained copies under DIR/bundles, `monai-bone export` packs one)"
                    )
        out[task] = path.resolve()
    return out


def server_environment(work_dir: str | os.PathLike, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment of the MONAI Label process: offline, no training/scoring/tracking, DX search, DICOM kept as DICOM.

    Values already in ``base`` (default ``os.environ``) win, so a site can still set e.g. its own search filter.
    """
    env = dict(os.environ if base is None else base)
    work = Path(work_dir).resolve()
    defaults = {
        "MONAI_LABEL_DATASTORE_FILE_EXT": json.dumps(list(DATASTORE_EXTENSIONS)),
        "MONAI_LABEL_DATASTORE_AUTO_RELOAD": "false",
        "MONAI_LABEL_DICOMWEB_SEARCH_FILTER": json.dumps(DEFAULT_SEARCH_FILTER),
        "MONAI_LABEL_DICOMWEB_CONVERT_TO_NIFTI": "false",
        "MONAI_LABEL_DATASTORE_CACHE_PATH": str(work / "dicomweb_cache"),
        "MONAI_LABEL_SESSION_PATH": str(work / "sessions"),
        "MONAI_LABEL_TASKS_TRAIN": "false",
        "MONAI_LABEL_TASKS_SCORING": "false",
        "MONAI_LABEL_TASKS_STRATEGY": "false",
        "MONAI_LABEL_AUTO_UPDATE_SCORING": "false",
        "MONAI_LABEL_TRACKING_ENABLED": "false",
        "MONAI_LABEL_SESSIONS": "false",
        "HF_HUB_OFFLINE": "1",
    }
    for key, value in defaults.items():
        env.setdefault(key, value)
    env["TMPDIR"] = str(work / "tmp")  # request bodies and infer uploads stay inside the work folder
    return env


class LabelServer:
    """A MONAI Label server with the monai-bone app, as a child process (context manager).

    Args:
        studies: local folder or DICOMweb URL (``http://HOST:PORT/dicom-web``).
        work_dir: work folder (see the module docstring).
        port: HTTP port.
        host: bind address (loopback by default; ``0.0.0.0`` exposes the server to the network).
        models: tasks or bundle names to serve (default all).
        bundles: task -> bundle folder or exported zip (default: the source tree's bundles).
        overrides: task -> ``inference.json`` ID overrides.
        device: torch device for both models.
        progress: tqdm bar while indexing a local folder.
        log_file: where the server's output goes when started with :meth:`start` (default ``<work_dir>/server.log``).
        extra_args: more ``monailabel start_server`` arguments, passed as given (e.g. ``--ssl_keyfile K
            --ssl_certfile C`` for HTTPS, ``--log_level warning``); :meth:`start` waits for plain HTTP only.
        max_upload_mb: largest request body in MB (larger ones are answered 413).

    Raises:
        ValueError: when the port is taken.
    """

    def __init__(
        self,
        studies: str | os.PathLike,
        work_dir: str | os.PathLike,
        port: int = 8000,
        host: str = "127.0.0.1",
        models: Sequence[str] | None = None,
        bundles: Mapping[str, str | os.PathLike] | None = None,
        overrides: Mapping[str, Mapping[str, Any]] | None = None,
        device: str | None = None,
        progress: bool = False,
        log_file: str | os.PathLike | None = None,
        extra_args: Sequence[str] = (),
        max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
    ) -> None:
        self.studies = os.fspath(studies)
        self.work_dir = Path(work_dir).resolve()
        self.port, self.host = int(port), host
        self.models = list(models) if models else None
        self.bundles = {k: os.fspath(v) for k, v in (bundles or {}).items()}
        self.overrides = {k: dict(v) for k, v in (overrides or {}).items()}
        self.device = device
        self.progress = progress
        self.log_file = Path(log_file) if log_file else self.work_dir / "server.log"
        self.extra_args = [str(a) for a in extra_args]
        if not float(max_upload_mb) > 0:
            raise ValueError(f"the upload cap must be a positive number of MB, got {max_upload_mb!r}")
        self.max_upload_mb = float(max_upload_mb)
        self.process: subprocess.Popen | None = None
        self.prepared: dict[str, Any] | None = None

    @property
    def url(self) -> str:
        """Base URL of the server (loopback when bound to all interfaces)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    def command(self) -> list[str]:
        """Prepare the work folder (app, studies) and return the ``monailabel start_server`` command line."""
        if not port_is_free(self.port, "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host):
            raise ValueError(f"port {self.port} is already in use; choose another with --port")
        tasks = parse_models(",".join(self.models) if self.models else None)
        conf: dict[str, str] = {"models": ",".join(tasks), "max_upload_mb": f"{self.max_upload_mb:g}"}
        conf["uploads"] = str(self.work_dir / "uploads")
        for task, path in bundle_paths(tasks, self.bundles).items():
            conf[f"{task}_bundle"] = str(path)
        for task, ov in self.overrides.items():
            conf[f"{task}_overrides"] = json.dumps(ov)
        if self.device:
            conf["device"] = self.device
        app = self.work_dir / "app"
        app.mkdir(parents=True, exist_ok=True)
        (self.work_dir / "tmp").mkdir(exist_ok=True)
        (app / "main.py").write_text(APP_MAIN, encoding="utf-8")
        self.prepared = prepare_studies(self.studies, self.work_dir, progress=self.progress)
        if self.prepared["rejects"]:
            conf["rejects"] = self.prepared["rejects"]
        cmd = [sys.executable, "-m", "monai_bone.label", "start_server", "--app", str(app)]
        cmd += ["--studies", self.prepared["studies"], "--host", self.host, "--port", str(self.port)]
        cmd += ["--uvicorn_app", "monai_bone.label.asgi:app"]
        for key, value in conf.items():
            cmd += ["--conf", key, value]
        return cmd + self.extra_args

    def environment(self) -> dict[str, str]:
        """The server's environment (:func:`server_environment`)."""
        return server_environment(self.work_dir)

    def start(self, timeout: float = 300.0) -> LabelServer:
        """Start the server in the background and wait until ``GET /info/`` answers.

        Raises:
            RuntimeError: when the server exits or does not answer within ``timeout`` (the log tail is included).
        """
        cmd = self.command()
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_file, "wb")  # noqa: SIM115 - kept open for the child's lifetime
        try:
            self.process = subprocess.Popen(
                cmd,
                cwd=self.work_dir,
                env=self.environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=die_with_parent,  # noqa: PLW1509 - only prctl, no locks taken
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"MONAI Label exited with code {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/info/", timeout=5) as r:
                    if r.status == 200:
                        logger.info("MONAI Label ready at %s", self.url)
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"MONAI Label did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, n: int = 40) -> str:
        """The last ``n`` lines of the server log."""
        try:
            lines = self.log_file.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-n:])

    def stop(self, timeout: float = 20.0) -> None:
        """Terminate the server's process group (SIGTERM, then SIGKILL) and wait until the port is free."""
        proc, self.process = self.process, None
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=timeout)
        deadline = time.monotonic() + timeout
        while not port_is_free(self.port) and time.monotonic() < deadline:
            time.sleep(0.2)

    def __enter__(self) -> LabelServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def run_foreground(self) -> int:
        """Run the server attached to this terminal until it exits, Ctrl-C or SIGTERM; returns its exit code.

        SIGINT and SIGTERM are passed on to the server, which shuts down cleanly; the server also gets SIGTERM if
        this process dies without passing anything on (e.g. SIGKILL), so it never outlives its command.
        """
        cmd = self.command()
        logger.info("starting MONAI Label at %s (work folder %s)", self.url, self.work_dir)
        proc = subprocess.Popen(cmd, cwd=self.work_dir, env=self.environment(), preexec_fn=die_with_parent)  # noqa: PLW1509

        def forward(signum: int, _frame: Any) -> None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signum)

        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        for sig, handler in previous.items():
            if handler is not signal.SIG_IGN:  # a launcher that ignores Ctrl-C keeps it ignored
                signal.signal(sig, forward)
        try:
            try:
                return proc.wait()
            except KeyboardInterrupt:
                forward(signal.SIGINT, None)
                return proc.wait()
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
