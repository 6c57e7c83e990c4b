"""Accuracy benchmark on SYNTHETIC cohorts: hip fusion ablation against the generator's oracle R², knee Table I set.

Both tasks go through monai-bone's cross-validation runner (:func:`monai_bone.cv.run_cv`), which trains every network
with the bundle's own ``configs/train.json`` (``monai.bundle.ConfigWorkflow``; no copy of the training loop) and fits
the baselines on the same training folds:

* **hip** -- a synthetic hip cohort (DICOM + clinical CSV, indexed with ``build_datalist``), K-fold CV of
  ``xattn`` (cross-attention fusion, the bundle default), ``concat``, ``image`` (image only), ``clinical`` (clinical
  only, network), the clinical-only scikit-learn models and the OST index; pooled out-of-fold R², MSE, MAE and the
  screening metrics. Against the generator's **oracle R²** (the best any model can reach, from ``cohort.json``):
  goal ``xattn R² >= 0.9 x oracle`` and ``xattn MSE < concat MSE``.
* **knee** -- a synthetic knee cohort (binary), K-fold CV of the bundle's ``HybridAttentionNet`` and MONAI's
  ``DenseNet169`` (the paper's strongest baseline): ROC-AUC and the paper's Table I set (sensitivity, specificity,
  precision, FPR, accuracy, F1, loss).

Modes (recorded with every figure): ``full`` -- the published setting (hip n = 1000, knee n = 400, 5 folds, 30 epochs,
224 px; hours on a GPU, days on a small CPU); ``quick`` -- a 2-core CPU in ~2 minutes (hip n = 40, knee n = 24,
2 folds, 2 epochs, 64 px: a run of the real code path whose numbers say nothing about the models); ``smoke`` -- the test
suite's even smaller setting. Quick and smoke numbers are NOT accuracy results.

Usage::

    python benchmarks/accuracy.py --out results/bench            # full
    python benchmarks/accuracy.py --out results/bench --quick    # this machine

Writes ``accuracy.json`` and ``accuracy.md`` to ``--out``; the CV tables (``ablation.md``/``.csv``/``.png``, per-fold
metrics, out-of-fold predictions) go to ``<workdir>/cv_<task>`` (default ``<out>/accuracy_cv``). A rerun with the same
settings reuses finished fits (the runner's cache), so a killed full run resumes.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:
    sys.path.insert(0, str(_HERE))

import _bench_common as common  # noqa: E402

__all__ = ["GOAL_ORACLE_FRACTION", "HIP_ROWS", "KNEE_ROWS", "PRESETS", "main", "parse_args", "to_markdown"]

GOAL_ORACLE_FRACTION = 0.9
HIP_ROWS: tuple[str, ...] = ("xattn", "concat", "image", "clinical", "clinical_ridge", "clinical_gbm", "ost")
KNEE_ROWS: tuple[str, ...] = ("hybrid", "densenet169")
HIP_KEYS: tuple[str, ...] = ("r2", "mse", "mae", "auc", "precision", "recall", "f1")
KNEE_KEYS: tuple[str, ...] = ("auc", "sensitivity", "specificity", "precision", "fpr", "accuracy", "f1", "loss")
PRESETS: dict[str, dict[str, Any]] = {
    "smoke": {
        "hip_n": 12,
        "knee_n": 10,
        "folds": 2,
        "epochs": 1,
        "size": 32,
        "image_size": 64,
        "batch": 6,  # >= a fold's training set (the locked test split leaves 5): no 1-study BatchNorm batch at 32 px
        "n_boot": 20,
        "knee_variants": ["hybrid"],
        "threads": 1,
    },
    "quick": {
        "hip_n": 40,
        "knee_n": 24,
        "folds": 2,
        "epochs": 2,
        "size": 64,
        "image_size": 128,
        "batch": 8,
        "n_boot": 200,
        "knee_variants": list(KNEE_ROWS),
        "threads": 1,
    },
    "full": {
        "hip_n": 1000,
        "knee_n": 400,
        "folds": 5,
        "epochs": 30,
        "size": 224,
        "image_size": 512,
        "batch": 16,
        "n_boot": 1000,
        "knee_variants": list(KNEE_ROWS),
        "threads": 0,
    },
}


def _num(v: Any) -> float | None:
    return None if v is None or (isinstance(v, float) and not math.isfinite(v)) else float(v)


def _row(r: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {"variant": r["variant"], "label": r["label"], "kind": r["kind"], "loss_fn": r["loss"]}
    for k in keys:
        out[k] = _num(r.get(f"{k}_pooled"))
        out[f"{k}_ci"] = [_num(r.get(f"{k}_ci_low")), _num(r.get(f"{k}_ci_high"))]
        out[f"{k}_fold_mean"] = _num(r.get(f"{k}_mean"))
    out["n"] = int(r["n_pooled"])
    return out


def _cv_common(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "folds": args.folds,
        "epochs": args.epochs,
        "size": args.size,
        "batch_size": args.batch,
        "num_workers": 0 if args.mode != "full" else None,
        "device": args.device,
        "n_boot": args.n_boot,
        "seed": args.seed,
        "progress": False,
        "overrides": {"pretrained": None},  # random init, explicitly (bundle default: ImageNet weights, a download)
    }


def run_hip(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Hip CV ablation; returns the ``hip`` section of the report."""
    from monai_bone.cv import run_cv

    datalist = common.make_cohort(work, "hip", args.hip_n, size=args.image_size, folds=args.folds, seed=args.seed)
    cohort = json.loads((datalist.parent / "cohort.json").read_text(encoding="utf-8"))
    res = run_cv(
        "hip", datalist, work / "cv_hip", variants=list(HIP_ROWS), loss_ablation=args.loss_ablation, **_cv_common(args)
    )
    rows = [_row(r, HIP_KEYS) for r in res.rows]
    by = {r["variant"]: r for r in rows}
    oracle = _num(cohort.get("oracle_r2"))
    xattn, concat = by["xattn"], by["concat"]
    fraction = xattn["r2"] / oracle if oracle and xattn["r2"] is not None else None
    return {
        "n": args.hip_n,
        "image_size": args.image_size,
        "oracle_r2": oracle,
        "clinical_r2": _num(cohort.get("clinical_r2")),
        "rows": rows,
        "goals": {
            "xattn_r2": xattn["r2"],
            "xattn_r2_over_oracle": None if fraction is None else round(fraction, 4),
            "goal_oracle_fraction": GOAL_ORACLE_FRACTION,
            "meets_oracle_goal": common.verdict(fraction, GOAL_ORACLE_FRACTION, higher_is_better=True),
            "xattn_mse": xattn["mse"],
            "concat_mse": concat["mse"],
            "meets_mse_goal": bool(xattn["mse"] < concat["mse"]),
        },
        "ablation_md": str(res.paths["markdown"]),
    }


def run_knee(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Knee CV (binary); returns the ``knee`` section of the report."""
    from monai_bone.cv import run_cv
    from monai_bone.cv.table_render import PAPER_REPORTED

    datalist = common.make_cohort(work, "knee", args.knee_n, size=args.image_size, folds=args.folds, seed=args.seed)
    res = run_cv("knee", datalist, work / "cv_knee", variants=list(args.knee_variants), **_cv_common(args))
    return {
        "n": args.knee_n,
        "image_size": args.image_size,
        "rows": [_row(r, KNEE_KEYS) for r in res.rows],
        "paper_reported": PAPER_REPORTED["knee"],
        "ablation_md": str(res.paths["markdown"]),
    }


def _fmt(v: float | None, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def to_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown."""
    env, s = report["environment"], report["settings"]
    mode = common.mode_label(env["mode"], s["preset_overrides"])
    caveat = (
        ""
        if mode == "full"
        else " (not the published setting: NOT the accuracy result; quick/smoke runs only exercise the code path)"
    )
    lines = [
        "# accuracy: synthetic hip ablation vs oracle R², knee Table I set (SYNTHETIC data)",
        "",
        f"Mode **{mode}**{caveat}. {s['folds']}-fold CV, {s['epochs']} epochs, {s['size']}² input, batch {s['batch']}; "
        f"device {env['device']}, {env['cpu_count']} CPU core(s), GPU: {env['gpu'] or 'none'}. {report['note']}.",
    ]
    hip = report.get("hip")
    if hip:
        g = hip["goals"]
        lines += [
            "",
            f"## Hip (n = {hip['n']}, oracle R² {_fmt(hip['oracle_r2'])}, clinical-only ceiling "
            f"{_fmt(hip['clinical_r2'])})",
            "",
            "| variant | R² (pooled OOF) | 95 % CI | MSE | MAE | ROC-AUC | F1 |",
            "| --- | ---: | --- | ---: | ---: | ---: | ---: |",
        ]
        for r in hip["rows"]:
            ci = f"{_fmt(r['r2_ci'][0])} – {_fmt(r['r2_ci'][1])}"
            lines.append(
                f"| {r['label']} | {_fmt(r['r2'])} | {ci} | {_fmt(r['mse'], 5)} | {_fmt(r['mae'], 4)} "
                f"| {_fmt(r['auc'])} | {_fmt(r['f1'])} |"
            )
        oracle_goal = {True: "met", False: "NOT met", None: "n/a"}[g["meets_oracle_goal"]]
        lines += [
            "",
            f"- xattn R² / oracle R² = {_fmt(g['xattn_r2_over_oracle'])} (goal >= {g['goal_oracle_fraction']}: "
            f"{oracle_goal})",
            f"- xattn MSE {_fmt(g['xattn_mse'], 5)} vs concat MSE {_fmt(g['concat_mse'], 5)} (goal: xattn lower: "
            f"{'met' if g['meets_mse_goal'] else 'NOT met'})",
        ]
    knee = report.get("knee")
    if knee:
        lines += [
            "",
            f"## Knee (n = {knee['n']}, binary; Table I set)",
            "",
            "| variant | ROC-AUC | sensitivity | specificity | precision | FPR | accuracy | F1 | loss |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in knee["rows"]:
            lines.append(
                f"| {r['label']} | "
                + " | ".join(_fmt(r[k]) for k in ("auc", "sensitivity", "specificity", "precision", "fpr"))
                + f" | {_fmt(r['accuracy'])} | {_fmt(r['f1'])} | {_fmt(r['loss'])} |"
            )
        lines += ["", f"Paper reported (not ours): {knee['paper_reported']['source']}."]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments; ``--quick``/``--smoke`` pick smaller presets (explicit values win)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="folder for accuracy.json and accuracy.md")
    p.add_argument("--quick", action="store_true", help="tiny preset for a CPU machine (not an accuracy result)")
    p.add_argument("--smoke", action="store_true", help="tiniest preset (test suite); not an accuracy result")
    p.add_argument("--tasks", nargs="+", choices=["hip", "knee"], default=["hip", "knee"])
    p.add_argument("--hip-n", type=int, default=None, help="hip cohort size (full 1000)")
    p.add_argument("--knee-n", type=int, default=None, help="knee cohort size (full 400)")
    p.add_argument("--folds", type=int, default=None, help="CV folds (full 5)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs per fit (full 30)")
    p.add_argument("--size", type=int, default=None, help="bundle spatial_size (full 224)")
    p.add_argument("--image-size", type=int, default=None, help="side of the synthetic images (full 512)")
    p.add_argument("--batch", type=int, default=None, help="training batch size (full 16)")
    p.add_argument("--n-boot", type=int, default=None, help="bootstrap resamples for the CIs (full 1000)")
    p.add_argument("--knee-variants", nargs="+", choices=list(KNEE_ROWS), default=None)
    p.add_argument("--loss-ablation", action="store_true", help="hip: also the runner's Smooth L1 loss ablation")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="cpu or cuda[:N] (default: cuda when available)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (0: torch's choice; quick/smoke 1)")
    p.add_argument("--workdir", type=Path, default=None, help="cohorts and CV runs (default: <out>/accuracy_cv)")
    args = p.parse_args(argv)
    args.mode = common.mode_of(args)
    common.apply_preset(args, PRESETS)
    if args.folds < 2 or args.epochs < 1 or args.batch < 2 or args.size < 32:
        p.error("--folds >= 2, --epochs >= 1, --batch >= 2 and --size >= 32 are required")
    if min(args.hip_n, args.knee_n) < 4 * args.folds:
        p.error(f"cohorts need at least 4 studies per fold ({4 * args.folds} for {args.folds} folds)")
    if args.device is None:
        args.device = "cuda:0" if common.cuda_available() else "cpu"
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, write JSON + Markdown, print the tables; returns the report."""
    from monai_bone.constants import SYNTHETIC_NOTE

    args = parse_args(argv)
    work = args.workdir or args.out / "accuracy_cv"
    work.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "benchmark": "accuracy",
        "command": common.command_line("accuracy", argv),
        "synthetic": True,
        "note": SYNTHETIC_NOTE,
    }
    with common.torch_threads(args.threads), common.log_to_file(work / "accuracy.log"):
        if "hip" in args.tasks:
            print("hip cross-validation ablation ...", file=sys.stderr, flush=True)
            report["hip"] = run_hip(args, work)
        if "knee" in args.tasks:
            print("knee cross-validation ...", file=sys.stderr, flush=True)
            report["knee"] = run_knee(args, work)
        report["environment"] = common.machine_info(args.mode, args.device)
    report["settings"] = {
        "tasks": list(args.tasks),
        "folds": args.folds,
        "epochs": args.epochs,
        "size": args.size,
        "image_size": args.image_size,
        "batch": args.batch,
        "n_boot": args.n_boot,
        "seed": args.seed,
        "loss_ablation": bool(args.loss_ablation),
        "workdir": str(work),
        "preset_overrides": args.preset_overrides,
    }
    hip = report.get("hip")
    report["meets_goal"] = (
        None
        if hip is None or hip["goals"]["meets_oracle_goal"] is None
        else bool(hip["goals"]["meets_oracle_goal"] and hip["goals"]["meets_mse_goal"])
    )
    markdown = to_markdown(report)
    common.write_outputs(args.out, "accuracy", report, markdown)
    print(markdown, end="")
    return report


if __name__ == "__main__":
    main()
