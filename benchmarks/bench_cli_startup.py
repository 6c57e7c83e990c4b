"""Start-up time of the ``monai-bone`` command line: ``--help`` before and after lazy imports, as ratios.

Each case is a fresh Python process timed from outside (wall clock, median of ``--reps`` runs, the cases interleaved
so that machine load hits them alike), all in the same run:

- ``python``: an interpreter that imports nothing (the floor);
- ``import_torch``: ``python -c "import torch"`` -- the bare baseline;
- ``before_help``: what ``monai-bone --help`` did before the lazy imports (no ``git stash`` needed): the package root
  importing every sub-package, then every sub-command's parser built (the ``cv`` and ``demo`` ones import the CV
  runner and the demo) and the help formatted;
- ``after_help``: ``monai-bone --help`` now;
- ``after_export_help``: ``monai-bone export --help`` now.

A first, untimed run of each case records whether it imported torch / MONAI (and warms the file cache).
Reported ratios: ``after_help / import_torch``, ``after_help / before_help``, ``after_export_help / import_torch``
and ``before_help / import_torch``. Timings only (no data); the JSON records the machine.

Usage::

    python benchmarks/bench_cli_startup.py --out results/bench           # 15 runs per case
    python benchmarks/bench_cli_startup.py --quick --out results/bench   # 5 runs per case

Writes ``bench_cli_startup.json`` and ``.md`` to ``--out`` and prints the Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:
    sys.path.insert(0, str(_HERE))

import _bench_common as common  # noqa: E402

__all__ = ["CASES", "main", "measure", "parse_args", "to_markdown"]

_MAIN = "from monai_bone.cli import main\nmain({argv!r})"
#: Case name -> (description, Python code run with ``python -c``).
CASES: dict[str, tuple[str, str]] = {
    "python": ("python -c pass (interpreter only)", "pass"),
    "import_torch": ('python -c "import torch" (bare baseline)', "import torch"),
    "before_help": (
        "before: eager package import + every sub-command parser + help",
        # the former start-up, rebuilt from today's code: the root imported its sub-packages, then built every parser
        "import monai_bone\nmonai_bone._load_subpackages()\nfrom monai_bone.cli import build_parser\n"
        "build_parser(full=True).format_help()",
    ),
    "after_help": ("after: monai-bone --help", _MAIN.format(argv=["--help"])),
    "after_export_help": ("after: monai-bone export --help", _MAIN.format(argv=["export", "--help"])),
}
_PROBE = (
    "import atexit, json, sys\n"
    "atexit.register(lambda: sys.__stderr__.write('\\nPROBE ' + json.dumps("
    "{m: m in sys.modules for m in ('torch', 'monai')}) + '\\n'))\n"
)
_PRESETS = {"smoke": {"reps": 1}, "quick": {"reps": 5}, "full": {"reps": 15}}


def _env() -> dict[str, str]:
    """The environment of the measured processes: this source tree first on ``PYTHONPATH``, one thread."""
    path = os.pathsep.join(p for p in (str(common.REPO), os.environ.get("PYTHONPATH", "")) if p)
    return dict(os.environ, PYTHONPATH=path, OMP_NUM_THREADS="1")


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_env(), cwd=common.REPO, check=False
    )


def _timed(code: str) -> float:
    start = time.perf_counter()
    proc = _run(code)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"start-up case failed (exit {proc.returncode}): {proc.stderr[-1000:]}")
    return seconds


def _probe(code: str) -> dict[str, bool]:
    proc = _run(_PROBE + code)
    line = [s for s in proc.stderr.splitlines() if s.startswith("PROBE ")][-1]
    return json.loads(line[len("PROBE ") :])


def measure(reps: int) -> dict[str, Any]:
    """Probe every case's imports (untimed; also warms the file cache), then time each ``reps`` times, interleaved."""
    imports = {name: _probe(code) for name, (_, code) in CASES.items()}
    times: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(reps):
        for name, (_, code) in CASES.items():
            times[name].append(_timed(code))
    cases = {}
    for name, (description, _) in CASES.items():
        cases[name] = {
            "description": description,
            "median_s": round(common.median(times[name]), 4),
            "all_s": [round(t, 4) for t in times[name]],
            "imports": imports[name],
        }
    med = {name: c["median_s"] for name, c in cases.items()}
    ratios = {
        "after_help_over_import_torch": round(med["after_help"] / med["import_torch"], 3),
        "after_help_over_before_help": round(med["after_help"] / med["before_help"], 3),
        "after_export_help_over_import_torch": round(med["after_export_help"] / med["import_torch"], 3),
        "before_help_over_import_torch": round(med["before_help"] / med["import_torch"], 3),
    }
    return {"cases": cases, "ratios": ratios}


def to_markdown(result: dict[str, Any]) -> str:
    """The cases and ratios as a Markdown table."""
    lines = [
        f"# monai-bone CLI start-up (median of {result['settings']['reps']} fresh processes per case)",
        "",
        "| case | median (s) | imports torch | imports monai |",
        "| --- | ---: | --- | --- |",
    ]
    for c in result["cases"].values():
        imports = c["imports"]
        lines.append(f"| {c['description']} | {c['median_s']:.3f} | {imports['torch']} | {imports['monai']} |")
    lines += ["", "| ratio | value |", "| --- | ---: |"]
    lines += [f"| {k.replace('_', ' ')} | {v} |" for k, v in result["ratios"].items()]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="folder for bench_cli_startup.json/.md")
    p.add_argument("--quick", action="store_true", help="5 runs per case")
    p.add_argument("--smoke", action="store_true", help="1 run per case (test suite)")
    p.add_argument("--reps", type=int, default=None, help="runs per case (default: by mode, 15 full)")
    args = p.parse_args(argv)
    args.mode = common.mode_of(args)
    common.apply_preset(args, _PRESETS)
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, write the JSON and Markdown, print the table; returns 0."""
    args = parse_args(argv)
    result: dict[str, Any] = {
        "benchmark": "bench_cli_startup",
        "command": common.command_line("bench_cli_startup", argv),
        "environment": common.machine_info(args.mode),
        "settings": {"reps": args.reps, "preset_overrides": args.preset_overrides},
        **measure(args.reps),
    }
    markdown = to_markdown(result)
    common.write_outputs(args.out, "bench_cli_startup", result, markdown)
    print(markdown, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
