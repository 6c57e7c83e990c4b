"""Private test helper: a throw-away Orthanc DICOM server with the DICOMweb plugin, as a child process on loopback.

:class:`OrthancServer` writes a JSON configuration into a temporary folder (storage there too), starts the ``Orthanc``
binary of the Debian ``orthanc`` package on a free port, loads the DICOMweb plugin of ``orthanc-dicomweb`` and waits
until ``GET /system`` answers. Leaving the ``with`` block (normally or through an exception) terminates the process
and checks that the port is free again. It never touches the system Orthanc service (``/etc/orthanc``,
``/var/lib/orthanc``).

Network exposure: Orthanc 1.10 has no option to bind its HTTP server to one address, so the socket listens on all
interfaces; ``RemoteAccessAllowed: false`` makes Orthanc refuse every client that is not on the loopback interface.
The DICOM (DIMSE) server, the web explorer and WebDAV are disabled, and there is no authentication.

Install: ``apt-get install -y orthanc orthanc-dicomweb`` (``.ci/run`` does it in CI). Run by hand with
``python tests/data/orthanc_server.py [DICOM files ...]``: prints the DICOMweb URL and serves until Ctrl-C.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from monai_bone.label.process import die_with_parent, free_port

__all__ = ["OrthancServer", "find_dicomweb_plugin", "find_orthanc", "free_port", "port_is_free"]

#: Where Debian's orthanc-dicomweb package puts the plugin (the first is a symlink to the versioned file).
PLUGIN_CANDIDATES: tuple[str, ...] = (
    "/usr/share/orthanc/plugins/libOrthancDicomWeb.so",
    "/usr/lib/orthanc/libOrthancDicomWeb.so*",
    "/usr/local/share/orthanc/plugins/libOrthancDicomWeb.so",
)


def find_orthanc() -> str | None:
    """Path of the ``Orthanc`` binary (``$ORTHANC_BINARY``, ``PATH``, or ``/usr/sbin`` where Debian installs it)."""
    env = os.environ.get("ORTHANC_BINARY")
    if env and os.access(env, os.X_OK):
        return env
    return shutil.which("Orthanc") or shutil.which("Orthanc", path="/usr/sbin:/usr/local/sbin:/usr/local/bin")


def find_dicomweb_plugin() -> str | None:
    """Path of the DICOMweb plugin shared library (``$ORTHANC_DICOMWEB_PLUGIN`` or the Debian locations)."""
    env = os.environ.get("ORTHANC_DICOMWEB_PLUGIN")
    if env and os.path.isfile(env):
        return env
    for pattern in PLUGIN_CANDIDATES:
        for path in sorted(glob.glob(pattern)):
            if os.path.isfile(path):
                return path
    return None


def port_is_free(port: int) -> bool:
    """Whether nothing listens on ``port``: a bind on all interfaces (as Orthanc binds them all) succeeds.

    ``SO_REUSEADDR`` lets the bind ignore the TIME_WAIT remains of closed connections, not a listening socket.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


class OrthancServer:
    """Orthanc with DICOMweb as a child process, for tests (context manager).

    Args:
        workdir: folder for the configuration, storage and log (a new temporary folder when ``None``; removed on exit
            only when it was created here).
        startup_timeout: seconds to wait for ``GET /system``.

    Attributes:
        port: HTTP port on 127.0.0.1; url: ``http://127.0.0.1:<port>``; dicomweb_url: ``<url>/dicom-web``;
        config: the configuration dictionary written to ``orthanc.json``; plugin: the DICOMweb plugin path.

    Raises:
        FileNotFoundError: when the Orthanc binary or the DICOMweb plugin is not installed.
        RuntimeError: when Orthanc exits or does not answer in time (the message carries the end of its log).
    """

    def __init__(self, workdir: str | os.PathLike | None = None, startup_timeout: float = 30.0) -> None:
        binary, plugin = find_orthanc(), find_dicomweb_plugin()
        if binary is None:
            raise FileNotFoundError("the Orthanc binary is not installed (apt-get install orthanc orthanc-dicomweb)")
        if plugin is None:
            raise FileNotFoundError("the Orthanc DICOMweb plugin is not installed (apt-get install orthanc-dicomweb)")
        self.binary, self.plugin = binary, plugin
        self._own_dir = workdir is None
        self.workdir = Path(tempfile.mkdtemp(prefix="orthanc-test-")) if workdir is None else Path(workdir)
        self.startup_timeout = startup_timeout
        self.port = 0
        self.config: dict = {}
        self.process: subprocess.Popen | None = None
        self._log = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def dicomweb_url(self) -> str:
        return f"{self.url}/dicom-web"

    def make_config(self, port: int) -> dict:
        """The Orthanc configuration: loopback clients only, no DICOM server, storage in the work folder."""
        storage = self.workdir / "storage"
        return {
            "Name": "monai-bone-test",
            "StorageDirectory": os.fspath(storage),
            "IndexDirectory": os.fspath(storage),
            "StorageCompression": False,
            "Plugins": [self.plugin],
            "HttpServerEnabled": True,
            "HttpPort": port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "SslEnabled": False,
            "HttpThreadsCount": 4,
            "HttpDescribeErrors": True,
            "OrthancExplorerEnabled": False,
            "WebDavEnabled": False,
            "DicomServerEnabled": False,
            "ConcurrentJobs": 1,
            "SaveJobs": False,
            "LuaScripts": [],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False, "Host": "127.0.0.1", "Ssl": False},
        }

    def start(self) -> OrthancServer:
        """Start Orthanc and wait until it answers; tries up to three ports in case one is taken meanwhile."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        last_error = ""
        for _ in range(3):
            self.port = free_port()
            self.config = self.make_config(self.port)
            config_path = self.workdir / "orthanc.json"
            config_path.write_text(json.dumps(self.config, indent=2))
            log_path = self.workdir / "orthanc.log"
            self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
            self.process = subprocess.Popen(
                [self.binary, "--logdir=" + os.fspath(self.workdir), os.fspath(config_path)],
                stdout=self._log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
                start_new_session=True,  # Ctrl-C in the test runner does not hit it first; stop() ends it
                preexec_fn=die_with_parent,
            )
            if self._wait_ready():
                return self
            last_error = self.log_tail()
            self._terminate()
        raise RuntimeError(f"Orthanc did not start ({self.binary}, plugin {self.plugin}); log:\n{last_error}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"{self.url}/system", timeout=2) as resp:
                    if resp.status == 200 and json.loads(resp.read()).get("Name") == self.config["Name"]:
                        return True
            except (urllib.error.URLError, OSError, ValueError):
                pass
            time.sleep(0.1)
        return False

    def log_tail(self, n: int = 4000) -> str:
        """The last ``n`` characters of Orthanc's stdout/stderr."""
        path = self.workdir / "orthanc.log"
        try:
            return path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def upload(self, path: str | os.PathLike) -> dict:
        """Store one DICOM file through the Orthanc REST API (``POST /instances``); returns Orthanc's JSON answer."""
        data = Path(path).read_bytes()
        req = urllib.request.Request(
            f"{self.url}/instances", data=data, method="POST", headers={"Content-Type": "application/dicom"}
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())

    def get_json(self, route: str) -> object:
        """``GET <url><route>`` as JSON (Orthanc REST, e.g. ``/statistics``)."""
        with urllib.request.urlopen(f"{self.url}{route}", timeout=10) as resp:
            return json.loads(resp.read())

    def _terminate(self) -> None:
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def stop(self) -> None:
        """Terminate Orthanc (SIGTERM, then SIGKILL after 15 s) and check its port is free again.

        Raises:
            RuntimeError: when the port is still bound 5 s after the process ended.
        """
        try:
            self._terminate()
            if self.port:
                deadline = time.monotonic() + 5
                while not port_is_free(self.port):
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"port {self.port} is still bound after Orthanc stopped")
                    time.sleep(0.1)
        finally:
            if self._own_dir:
                shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> OrthancServer:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()


if __name__ == "__main__":  # manual use: serve the given files until Ctrl-C
    with OrthancServer() as server:
        for name in sys.argv[1:]:
            server.upload(name)
        print(f"Orthanc {server.get_json('/system')['Version']} DICOMweb at {server.dicomweb_url} (Ctrl-C to stop)")
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
