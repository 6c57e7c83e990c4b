"""Helpers of the benchmark smoke tests: load a script from ``benchmarks/`` as a module, check numbers."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
ENV_KEYS = {
    "mode",
    "device",
    "cpu_count",
    "torch_threads",
    "gpu",
    "cuda_available",
    "python",
    "platform",
    "processor",
    "torch",
    "monai",
    "numpy",
}


def load(name: str) -> ModuleType:
    """Import ``benchmarks/<name>.py`` (its folder goes on ``sys.path`` for ``_bench_common``)."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(f"bench_{name}_under_test", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def positive(x) -> bool:
    """A finite number > 0 (bools excluded)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def check_environment(env: dict, mode: str) -> None:
    """Machine record of a report: every key, the mode, and no GPU claimed on a machine without one."""
    import torch

    assert set(env) == ENV_KEYS
    assert env["mode"] == mode and env["cpu_count"] >= 1 and env["torch_threads"] >= 1
    assert env["cuda_available"] == torch.cuda.is_available() == (env["gpu"] is not None)
