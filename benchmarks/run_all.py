"""Run every monai-bone benchmark and collect the results into one ``report.json`` + ``report.md``.

Benchmarks (each a script in this folder, run as its own process so that one failure or memory peak does not touch
the others): ``bench_data`` (synthesis and indexing throughput), ``bench_networks`` (network forward/train images/s),
``bench_engine`` (bundle trainer vs bare loop), ``bench_datapath`` (data wait with the bundle's caching),
``bench_inference`` (single-study latency, backends), ``bench_label`` (hip inference over MONAI Label HTTP vs
in-process; needs the ``label`` extra), ``accuracy`` (synthetic CV ablation) and ``bench_cli_startup``
(``monai-bone --help`` start-up before/after lazy imports vs a bare ``import torch``).

The report keeps each benchmark's full JSON, the exact command, its wall time and status, and a summary table --
measurement, value, goal, whether it is met, the mode and the command -- ready for the README "Performance" section.
GPU rows say "not measured" when no CUDA device was present.

Usage::

    python benchmarks/run_all.py --out results/bench                     # full (hours; needs a GPU for accuracy)
    python benchmarks/run_all.py --out results/bench --quick             # a 2-core CPU machine, ~10 minutes
    python benchmarks/run_all.py --out results/bench --collect-only      # rebuild the report from existing JSON
    python benchmarks/run_all.py --out results/bench --quick --benchmarks bench_engine bench_inference
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:
    sys.path.insert(0, str(_HERE))

import _bench_common as common  # noqa: E402

__all__ = ["BENCHMARKS", "main", "mode_args", "parse_args", "summary_rows", "to_markdown"]

BENCHMARKS: tuple[str, ...] = (
    "bench_data",
    "bench_networks",
    "bench_engine",
    "bench_datapath",
    "bench_inference",
    "bench_label",
    "accuracy",
    "bench_cli_startup",
)
#: Extra arguments per benchmark and mode (the scripts' own ``--quick``/``--smoke`` presets do the rest).
_MODE_ARGS: dict[str, dict[str, list[str]]] = {
    "bench_data": {
        "full": [],
        "quick": ["--quick"],
        "smoke": ["--quick", "--reps", "2", "--synth-n", "2", "--synth-size", "128", "--index-n", "12"]
        + ["--index-size", "64"],
    },
    "bench_networks": {
        "full": [],
        "quick": ["--quick", "--threads", "1", "--size", "128", "--batch", "4"],
        "smoke": ["--quick", "--threads", "1", "--size", "32", "--batch", "2", "--repeats", "1", "--warmup", "0"]
        + ["--nets", "xattn_bmd_xattn", "resnet34_stride2", "resnet34_stride1"],
    },
}


def mode_args(name: str, mode: str) -> list[str]:
    """Command-line arguments that select ``mode`` for benchmark ``name``."""
    if name in _MODE_ARGS:
        return list(_MODE_ARGS[name][mode])
    return {"full": [], "quick": ["--quick"], "smoke": ["--smoke"]}[mode]


def _run_one(name: str, out: Path, mode: str, timeout: int | None) -> dict[str, Any]:
    cmd = [sys.executable, str(_HERE / f"{name}.py"), "--out", str(out), *mode_args(name, mode)]
    shown = "python " + " ".join(shlex.quote(c) for c in [f"benchmarks/{name}.py", "--out", str(out), *cmd[4:]])
    print(f"== {name}: {shown}", file=sys.stderr, flush=True)
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        status = "ok" if proc.returncode == 0 else f"failed (exit {proc.returncode})"
        tail = (proc.stdout + proc.stderr)[-3000:] if proc.returncode else ""
    except subprocess.TimeoutExpired:
        status, tail = f"failed (timeout {timeout} s)", ""
    return {"status": status, "seconds": round(time.perf_counter() - start, 1), "command": shown, "log_tail": tail}


def _load(out: Path, name: str) -> dict[str, Any] | None:
    path = out / f"{name}.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return None


def _mode(result: dict[str, Any]) -> str:
    if "environment" in result and "mode" in result["environment"]:
        overrides = result.get("settings", {}).get("preset_overrides")
        return common.mode_label(str(result["environment"]["mode"]), overrides)
    return "quick" if result.get("quick") else "full"


def _r(v: Any, digits: int = 3) -> Any:
    return round(v, digits) if isinstance(v, float) else v


def _rows_data(d: dict) -> list[dict]:
    s, i = d["synth"], d["index"]
    return [
        {"measurement": f"synthetic hip studies/s at {s['size']}² (write DICOM)", "value": s["studies_per_s"]},
        {
            "measurement": f"index files/s vs bare pydicom header loop ({i['files']} files)",
            "value": i["ratio"],
            "goal": f">= {i['goal_ratio']}",
            "met": i["meets_goal"],
        },
    ]


def _rows_networks(d: dict) -> list[dict]:
    size = "x".join(str(v) for v in d["size"])
    rows = [
        {
            "measurement": f"{r['name']} train images/s ({size}, batch {d['batch']})",
            "value": _r(r["train_images_per_s"]),
        }
        for r in d["results"]
    ]
    for key, value in d.get("ratios", {}).items():
        rows.append({"measurement": key.replace("_", " "), "value": _r(value)})
    return rows


def _rows_engine(d: dict) -> list[dict]:
    rows = [
        {
            "measurement": f"{r['task']} bundle trainer / bare loop images/s ({r['network']})",
            "value": r["ratio"],
            "goal": f">= {r['goal_ratio']}",
            "met": r["meets_goal"],
        }
        for r in d["results"]
    ]
    for r in d["gpu"]["rows"]:
        measured = r["amp_speedup"] is not None
        rows.append(
            {
                "measurement": f"{r['task']} GPU training AMP + channels-last / fp32 images/s",
                "value": r["amp_speedup"] if measured else d["gpu"]["status"],
                "goal": f">= {r['goal_amp_speedup']}",
                "met": r["meets_goal"],
            }
        )
    return rows


def _rows_datapath(d: dict) -> list[dict]:
    rows = []
    for r in d["results"]:
        rows.append(
            {
                "measurement": f"data wait share of epochs >= 2, cache={r['cache']} ({r['dataset']}, "
                f"{r['num_workers']} workers)",
                "value": _r(r["wait_fraction_epoch2plus"]),
                "goal": "<= 0.1" if r["goal_wait_fraction"] is not None else "(reference)",
                "met": r["meets_goal"],
            }
        )
        rows.append({"measurement": f"epoch 1 / epoch 2 time, cache={r['cache']}", "value": r["epoch1_over_epoch2"]})
    return rows


def _rows_inference(d: dict) -> list[dict]:
    lat, b = d["latency"], d["backends"]["backends"]
    rows = [
        {
            "measurement": "single-study latency, bundle / bare (DICOM -> T-score)",
            "value": lat["ratio"],
            "goal": f"<= {lat['goal_ratio']}",
            "met": lat["meets_goal"],
        },
        {"measurement": "single-study latency, bundle (ms)", "value": lat["bundle_ms"]},
        {"measurement": "single-study latency, bare (ms)", "value": lat["bare_ms"]},
        {
            "measurement": "single-study latency, bundle evaluator with report (ms)",
            "value": lat["evaluator_per_study_ms"],
        },
    ]
    for name in ("eager", "torchscript", "onnxruntime"):
        r = b.get(name, {})
        rows.append(
            {
                "measurement": f"forward latency {name} (ms)",
                "value": r.get("forward_ms") if r.get("forward_ms") is not None else r.get("status", "not run"),
            }
        )
    rows.append({"measurement": "GPU single-study latency", "value": d["gpu"]["status"]})
    return rows


def _rows_label(d: dict) -> list[dict]:
    h, p = d["http"], d["in_process"]
    return [
        {
            "measurement": f"hip infer over MONAI Label HTTP vs in-process, p50 ({d['settings']['requests']} requests)",
            "value": f"{_r(h['p50_ms'], 1)} ms vs {_r(p['p50_ms'], 1)} ms (x{_r(d['ratio_p50'], 2)})",
        },
        {"measurement": "HTTP p95 / requests/s", "value": f"{_r(h['p95_ms'], 1)} ms / {_r(h['requests_per_s'], 2)}"},
    ]


def _rows_accuracy(d: dict) -> list[dict]:
    rows = []
    hip = d.get("hip")
    if hip:
        g = hip["goals"]
        rows += [
            {
                "measurement": f"hip xattn R² / oracle R² (oracle {_r(hip['oracle_r2'])}, n {hip['n']})",
                "value": g["xattn_r2_over_oracle"],
                "goal": f">= {g['goal_oracle_fraction']}",
                "met": g["meets_oracle_goal"],
            },
            {
                "measurement": "hip xattn MSE < concat MSE",
                "value": f"{_r(g['xattn_mse'], 5)} vs {_r(g['concat_mse'], 5)}",
                "goal": "xattn lower",
                "met": g["meets_mse_goal"],
            },
        ]
        rows += [{"measurement": f"hip R² {r['variant']}", "value": _r(r["r2"])} for r in hip["rows"]]
    knee = d.get("knee")
    if knee:
        rows += [
            {
                "measurement": f"knee {r['variant']} AUC / accuracy / F1 (n {knee['n']})",
                "value": f"{_r(r['auc'])} / {_r(r['accuracy'])} / {_r(r['f1'])}",
            }
            for r in knee["rows"]
        ]
    return rows


def _rows_cli_startup(d: dict) -> list[dict]:
    c, r = d["cases"], d["ratios"]
    return [
        {
            "measurement": f"`monai-bone --help` / bare `import torch` wall time ({c['after_help']['median_s']} vs "
            f"{c['import_torch']['median_s']} s; imports torch: {c['after_help']['imports']['torch']})",
            "value": r["after_help_over_import_torch"],
        },
        {
            "measurement": f"`monai-bone --help` after / before lazy imports ({c['before_help']['median_s']} s before)",
            "value": r["after_help_over_before_help"],
        },
        {
            "measurement": "`monai-bone export --help` / bare `import torch` (imports torch: "
            f"{c['after_export_help']['imports']['torch']})",
            "value": r["after_export_help_over_import_torch"],
        },
    ]


_SUMMARISERS: dict[str, Callable[[dict], list[dict]]] = {
    "bench_data": _rows_data,
    "bench_networks": _rows_networks,
    "bench_engine": _rows_engine,
    "bench_datapath": _rows_datapath,
    "bench_inference": _rows_inference,
    "bench_label": _rows_label,
    "accuracy": _rows_accuracy,
    "bench_cli_startup": _rows_cli_startup,
}


def summary_rows(name: str, result: dict[str, Any] | None, command: str) -> list[dict[str, Any]]:
    """The summary-table rows of one benchmark (a single "not run" row when it has no result)."""
    if result is None:
        return [{"benchmark": name, "measurement": "-", "value": "not run", "goal": "", "met": None, "mode": "-"}]
    rows = []
    for row in _SUMMARISERS[name](result):
        rows.append(
            {
                "benchmark": name,
                "measurement": row["measurement"],
                "value": row["value"],
                "goal": row.get("goal", ""),
                "met": row.get("met"),
                "mode": _mode(result),
                "command": command,
            }
        )
    return rows


def to_markdown(report: dict[str, Any]) -> str:
    """The summary table (README "Performance" section) and the per-benchmark status."""
    env = report["environment"]
    lines = [
        "# monai-bone benchmarks (SYNTHETIC data)",
        "",
        f"Machine: {env['cpu_count']} CPU core(s), GPU: {env['gpu'] or 'none'}; {env['platform']}; Python "
        f"{env['python']}, torch {env['torch']}, monai {env['monai']}. Requested mode: **{report['mode']}** (each row "
        "gives the mode that produced it). Accuracy figures from quick/smoke runs are not accuracy results.",
        "",
        "| benchmark | measurement | value | goal | met | mode |",
        "| --- | --- | ---: | --- | --- | --- |",
    ]
    for r in report["summary"]:
        met = {True: "yes", False: "no", None: ""}[r["met"]]
        value = r["value"] if r["value"] is not None else "n/a"
        lines.append(f"| {r['benchmark']} | {r['measurement']} | {value} | {r['goal']} | {met} | {r['mode']} |")
    lines += ["", "| benchmark | status | seconds | command |", "| --- | --- | ---: | --- |"]
    for name, b in report["benchmarks"].items():
        lines.append(f"| {name} | {b['status']} | {b.get('seconds', '')} | `{b.get('command', '')}` |")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="folder for every benchmark's JSON/Markdown and the report")
    p.add_argument("--quick", action="store_true", help="every benchmark in quick mode (a small CPU machine)")
    p.add_argument("--smoke", action="store_true", help="every benchmark in its tiniest mode (test suite)")
    p.add_argument("--benchmarks", nargs="+", choices=BENCHMARKS, default=list(BENCHMARKS), help="which to run")
    p.add_argument("--collect-only", action="store_true", help="run nothing; rebuild the report from --out")
    p.add_argument("--timeout", type=int, default=None, help="seconds per benchmark before it is stopped")
    args = p.parse_args(argv)
    args.mode = common.mode_of(args)
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the chosen benchmarks and write ``report.json`` / ``report.md``; returns 1 if any failed, else 0."""
    from monai_bone.constants import SYNTHETIC_NOTE

    args = parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    benchmarks: dict[str, dict[str, Any]] = {}
    for name in BENCHMARKS:
        if args.collect_only or name not in args.benchmarks:
            result = _load(out, name)
            status = "collected" if result is not None else "not run"
            command = str(result.get("command", "")) if result is not None else ""
            benchmarks[name] = {"status": status, "command": command, "result": result}
            continue
        (out / f"{name}.json").unlink(missing_ok=True)  # a failed run must not leave an older result behind
        info = _run_one(name, out, args.mode, args.timeout)
        info["result"] = _load(out, name)
        if info["status"] == "ok" and info["result"] is None:
            info["status"] = "failed (no JSON written)"
        benchmarks[name] = info
    summary = []
    for name, b in benchmarks.items():
        summary += summary_rows(name, b["result"], b.get("command", ""))
    report = {
        "benchmark": "run_all",
        "mode": args.mode,
        "synthetic": True,
        "note": SYNTHETIC_NOTE,
        "environment": common.machine_info(args.mode),
        "summary": summary,
        "benchmarks": benchmarks,
    }
    markdown = to_markdown(report)
    common.write_outputs(out, "report", report, markdown)
    print(markdown, end="")
    failed = [n for n, b in benchmarks.items() if b["status"].startswith("failed")]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
