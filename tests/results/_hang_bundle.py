"""Helper of the torchrun timeout tests: a bundle whose ``run`` hangs on every rank (ignoring SIGTERM, with a child that
ignores it too, like a data loader worker), and the checks that a killed run left no process behind.

Robust on a loaded machine: each rank writes ``rank<R>`` (its pid and its child's pid, written atomically) into the
bundle folder once it hangs, so a test knows whether the timeout hit the ranks while they hung, or earlier, while
torchrun was still starting them; :data:`TIMEOUTS` gives the escalating timeouts a test tries until both ranks were
hanging when it struck (never more than the last one: a machine too loaded for that fails, it does not pass).
"""

from __future__ import annotations

import json
from pathlib import Path

import psutil

#: Timeouts (seconds) tried in turn until both ranks were hanging when the timeout struck.
TIMEOUTS: tuple[float, ...] = (45.0, 120.0, 300.0)

#: The bundle's "run": ignore SIGTERM, start a child that does too, record both pids, hang.
_HANG = {
    "imports": ["$import os", "$import signal", "$import subprocess", "$import sys", "$import time"],
    "input": "",
    "output_dir": ".",
    "sleeper": "$subprocess.Popen([sys.executable, '-c', 'import signal, time; "
    "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)', os.getcwd()])",  # cwd: the bundle
    "pids": "$str(os.getpid()) + ' ' + str(@sleeper.pid)",
    "ready": "$os.path.join(@bundle_root, 'rank' + os.environ['RANK'])",
    "initialize": [],
    "run": [
        "$signal.signal(signal.SIGTERM, signal.SIG_IGN)",
        "$open(@ready + '.tmp', 'w').write(@pids)",
        "$os.replace(@ready + '.tmp', @ready)",
        "$time.sleep(600)",
    ],
    "finalize": [],
}


def hanging_bundle(root: Path) -> Path:
    """A bundle folder (``configs/inference.json`` hanging, an empty ``multi_gpu_inference.json`` and an empty
    ``models/model.pt`` for the bundle checks of ``monai-bone watch``)."""
    (root / "configs").mkdir(parents=True)
    (root / "models").mkdir()
    (root / "configs" / "inference.json").write_text(json.dumps(_HANG))
    (root / "configs" / "multi_gpu_inference.json").write_text("{}")
    (root / "models" / "model.pt").write_bytes(b"")
    return root


def clear_ready(bundle: Path) -> None:
    """Remove the ready files of an earlier attempt."""
    for f in bundle.glob("rank*"):
        f.unlink()


def hanging_pids(bundle: Path, nproc: int = 2) -> list[int] | None:
    """The pids of every rank and its child when all ``nproc`` ranks were hanging, else None."""
    files = [bundle / f"rank{r}" for r in range(nproc)]
    if not all(f.is_file() for f in files):
        return None
    return [int(p) for f in files for p in f.read_text().split()]


def survivors(pids: list[int], marker: str) -> list[str]:
    """Live (non-zombie) processes among ``pids`` or whose command line mentions ``marker`` (the bundle folder)."""
    found = []
    for p in psutil.process_iter(["pid", "cmdline", "status"]):
        if p.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if p.info["pid"] in pids or any(marker in a for a in p.info["cmdline"] or ()):
            found.append(f"{p.info['pid']}: {' '.join(p.info['cmdline'] or ())[:200]}")
    return found
