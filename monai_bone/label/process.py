"""Child server processes and ports: a free port, whether a port is free, and the ``preexec_fn`` that ties a
server's life to its parent (used by :class:`monai_bone.label.server.LabelServer` and the tests' Orthanc helper).
"""

from __future__ import annotations

import signal
import socket
import sys

__all__ = ["die_with_parent", "free_port", "port_is_free"]


def die_with_parent() -> None:
    """``preexec_fn`` of a server child process (Linux): SIGTERM when the parent dies, even from SIGKILL.

    A test run or benchmark killed by a timeout then leaves no MONAI Label (or Orthanc) process holding its port.
    """
    if sys.platform.startswith("linux"):
        import ctypes  # stdlib, Linux only: loaded where prctl is called

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether nothing listens on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        return s.connect_ex((host, int(port))) != 0
