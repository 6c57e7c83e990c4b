"""Shared pieces of the monai-bone benchmarks: machine record, timing, synthetic cohorts, bundle workflows, output.

Not a benchmark itself. The scripts next to it import it as ``_bench_common`` (their folder is put on ``sys.path``
when they are loaded from elsewhere, e.g. by the smoke tests or ``run_all.py``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "BUNDLES",
    "GPU_NOT_MEASURED",
    "MODES",
    "apply_preset",
    "bundle_workflow",
    "command_line",
    "cuda_available",
    "log_to_file",
    "machine_info",
    "make_cohort",
    "median",
    "mode_label",
    "mode_of",
    "sync",
    "timed",
    "torch_threads",
    "verdict",
    "write_outputs",
]

REPO = Path(__file__).resolve().parents[1]
#: Bundle folder of each task in this source tree.
BUNDLES: dict[str, Path] = {
    "hip": REPO / "bundles" / "hip_bmd_xattn",
    "knee": REPO / "bundles" / "knee_osteoporosis_hybrid_attention",
}
#: Run modes, from the smallest: ``smoke`` (test suite), ``quick`` (a 2-core CPU machine), ``full`` (the published one).
MODES: tuple[str, ...] = ("smoke", "quick", "full")
GPU_NOT_MEASURED = "not measured (no CUDA device on this machine)"


def mode_of(args: Any) -> str:
    """``"smoke"``, ``"quick"`` or ``"full"`` from parsed ``--smoke`` / ``--quick`` flags (smoke wins)."""
    if getattr(args, "smoke", False):
        return "smoke"
    return "quick" if getattr(args, "quick", False) else "full"


def apply_preset(args: Any, presets: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Fill the arguments left unset (None) from ``presets[args.mode]``.

    Returns:
        The explicitly given values that differ from the preset (also stored as ``args.preset_overrides``), so that a
        report never calls a run "full" or "quick" when its settings were changed.
    """
    overrides: dict[str, Any] = {}
    for key, value in presets[args.mode].items():
        given = getattr(args, key)
        if given is None:
            setattr(args, key, value)
        elif given != value:
            overrides[key] = given
    args.preset_overrides = overrides
    return overrides


def mode_label(mode: str, overrides: Mapping[str, Any] | None) -> str:
    """``"quick"``, or ``"quick, changed: epochs=5, size=128"`` when preset values were overridden."""
    if not overrides:
        return mode
    return f"{mode}, changed: " + ", ".join(f"{k}={v}" for k, v in overrides.items())


def command_line(script: str, argv: Sequence[str] | None) -> str:
    """The command that reproduces a run: ``python benchmarks/<script>.py <arguments>``."""
    import shlex
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    return shlex.join(["python", f"benchmarks/{script}.py", *args])


def cuda_available() -> bool:
    """Whether torch sees a CUDA device."""
    import torch

    return bool(torch.cuda.is_available())


def machine_info(mode: str, device: str = "cpu") -> dict[str, Any]:
    """What produced a figure: machine, library versions, device and run mode."""
    import monai
    import numpy
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "mode": mode,
        "device": str(device),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": gpu,
        "cuda_available": gpu is not None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "monai": monai.__version__,
        "numpy": numpy.__version__,
    }


def median(values: Sequence[float]) -> float:
    """Median of a non-empty sequence."""
    return float(statistics.median(values))


def sync(device: Any) -> None:
    """Wait for queued CUDA work (no-op on CPU), so that wall-clock timings are complete."""
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(torch.device(device))


def timed(fn: Callable[[], Any], device: Any = "cpu") -> tuple[float, Any]:
    """``(seconds, result)`` of one call, CUDA-synchronised."""
    sync(device)
    start = time.perf_counter()
    result = fn()
    sync(device)
    return time.perf_counter() - start, result


def verdict(value: float | None, goal: float, higher_is_better: bool) -> bool | None:
    """Whether ``value`` meets ``goal`` (None when not measured)."""
    if value is None:
        return None
    return bool(value >= goal) if higher_is_better else bool(value <= goal)


def make_cohort(
    work: Path, task: str, n: int, size: int, folds: int = 5, seed: int = 0, name: str | None = None
) -> Path:
    """Synthesize a SYNTHETIC DICOM cohort and index it with its ground truth; returns the datalist path."""
    from monai_bone.data.datalist import build_datalist
    from monai_bone.synthetic.synth import synthesize

    out = work / (name or f"{task}_n{n}_s{size}")
    datalist = out / "datalist.json"
    if datalist.is_file():
        return datalist
    synthesize(task, n, out, seed=seed, size=size, n_classes=2, progress=False)  # the bundles' binary knee task
    build_datalist(
        out / "dicom",
        datalist,
        clinical=[out / "clinical.csv", out / "ground_truth.csv"],
        task=task,
        folds=folds,
        seed=seed,
        progress=False,
    )
    return datalist


def bundle_workflow(task: str, configs: Sequence[str], workflow_type: str, **overrides: Any) -> Any:
    """The bundle's own ``monai.bundle.ConfigWorkflow`` (config files under ``configs/``, ID overrides applied).

    Logging is left as the caller set it; ``bundle_root`` is the bundle folder (see
    :func:`monai_bone.bundle.workflow.bundle_workflow`, which builds it).
    """
    from monai_bone.bundle import bundle_workflow as _bundle_workflow

    # random initialisation unless a caller asks otherwise: the bundles default to ImageNet weights (a download)
    overrides = {"pretrained": None, **overrides}
    return _bundle_workflow(BUNDLES[task], configs, workflow_type, **overrides)


@contextlib.contextmanager
def log_to_file(path: Path, level: int = logging.INFO) -> Iterator[None]:
    """Send log records at ``level`` and above to ``path`` while the block runs, as a bundle run logs (INFO).

    Keeps the engines' per-iteration logging (``StatsHandler``) in the measured work without flooding the console:
    the root logger and every logger that writes to stdout/stderr (MONAI's ``get_logger`` gives ``StatsHandler`` its
    own stream handler) write to the file instead until the block ends.
    """
    import sys

    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    loggers = [root] + [lg for lg in logging.root.manager.loggerDict.values() if isinstance(lg, logging.Logger)]
    saved: list[tuple[logging.Logger, list[logging.Handler]]] = []
    for lg in loggers:
        streams = [
            h
            for h in lg.handlers
            if isinstance(h, logging.StreamHandler) and getattr(h, "stream", None) in (sys.stdout, sys.stderr)
        ]
        if lg is root or streams:
            saved.append((lg, streams))
            for h in streams:
                lg.removeHandler(h)
            lg.addHandler(handler)
    root_level = root.level
    root.setLevel(level)
    try:
        yield
    finally:
        for lg, streams in saved:
            lg.removeHandler(handler)
            for h in streams:
                lg.addHandler(h)
        root.setLevel(root_level)
        handler.close()


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads (None or 0: leave torch's choice); restores the old count."""
    import torch

    saved = torch.get_num_threads()
    if n:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def write_outputs(out: Path, name: str, result: Mapping[str, Any], markdown: str) -> tuple[Path, Path]:
    """Write ``<name>.json`` and ``<name>.md`` under ``out`` (atomic writes); returns both paths."""
    from monai_bone.utils.io import atomic_write_json, atomic_write_text

    out.mkdir(parents=True, exist_ok=True)
    return atomic_write_json(out / f"{name}.json", result), atomic_write_text(out / f"{name}.md", markdown)
