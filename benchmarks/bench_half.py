"""Half-precision sharing (``monai-bone export --half``): weight file size and accuracy change on trained bundles.

For each trained bundle, the fp32 weights and their fp16 / bf16 copies (:func:`monai_bone.bundle.half_state_dict`,
loaded back into the fp32 network as an importer does) are run on the validation fold of the bundle's datalist through
the bundle's own inference preprocessing. Reported per precision: ``model.pt`` size, ratio to fp32, largest and mean
absolute change of the output against fp32, and the task metric (hip: MAE in g/cm²; knee: accuracy at 0.5) with its
change. The validation fold is the one the demo selected its checkpoint on (labelled as such); data is SYNTHETIC.

Usage::

    python benchmarks/bench_half.py --out results/bench                 # trains a quick demo first (~2-4 min CPU)
    python benchmarks/bench_half.py --demo-dir monai-bone-demo --out results/bench   # reuse a demo's trained copies

Writes ``bench_half.json`` and ``bench_half.md`` to ``--out`` and prints the Markdown table.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from monai_bone.bundle import BUNDLE_NAMES, half_state_dict
from monai_bone.utils.io import atomic_write_json, atomic_write_text

__all__ = ["main", "measure_bundle"]

NOTE = "SYNTHETIC cohort; validation fold 0 (the demo selected its checkpoint there)"


def _size(state: dict[str, torch.Tensor]) -> int:
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.tell()


def _inputs(bundle: Path, datalist: Path, work: Path) -> tuple[list[tuple[torch.Tensor, ...]], np.ndarray, Any]:
    from monai.bundle import ConfigParser

    from monai_bone.data.folds import fold_records

    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "inference.json"))
    parser.update({"bundle_root": str(bundle), "input": str(datalist), "output_dir": str(work)})
    parser.get_parsed_content("imports")
    pre = parser.get_parsed_content("preprocessing")
    target = "bmd" if "clinical_fields" in parser else "label"
    records = fold_records(datalist, 0, "val", require=target)
    batches, truth = [], []
    for rec in records:
        item = pre(dict(rec))
        x = [torch.as_tensor(item["image"]).unsqueeze(0).float()]
        if "clinical" in item:
            x.append(torch.as_tensor(item["clinical"]).unsqueeze(0).float())
        batches.append(tuple(x))
        truth.append(float(rec[target]))
    net = parser.get_parsed_content("network_def")
    return batches, np.asarray(truth), net


def measure_bundle(bundle: Path, datalist: Path, work: Path) -> list[dict[str, Any]]:
    """Rows (fp32, fp16, bf16) of size and accuracy change for one trained bundle."""
    batches, truth, net = _inputs(bundle, datalist, work)
    state = torch.load(bundle / "models" / "model.pt", map_location="cpu", weights_only=True)
    hip = "clinical_fields" in (bundle / "configs" / "inference.json").read_text()
    rows, base = [], None
    for name, dtype in (("fp32", None), ("fp16", torch.float16), ("bf16", torch.bfloat16)):
        packed = dict(state) if dtype is None else half_state_dict(state, dtype)
        net.load_state_dict(packed)
        net.eval()
        with torch.no_grad():
            out = np.concatenate([net(*x).float().numpy().reshape(-1) for x in batches])
        base = out if base is None else base
        metric = float(np.mean(np.abs(out - truth))) if hip else float(np.mean((out > 0) == (truth > 0.5)))
        rows.append(
            {
                "bundle": bundle.name,
                "precision": name,
                "n_studies": len(truth),
                "size_mb": round(_size(packed) / 2**20, 2),
                "max_abs_change": float(np.max(np.abs(out - base))),
                "mean_abs_change": float(np.mean(np.abs(out - base))),
                "metric": "MAE g/cm^2" if hip else "accuracy@0.5",
                "value": round(metric, 5),
            }
        )
    for r in rows:
        r["size_ratio"] = round(r["size_mb"] / rows[0]["size_mb"], 3)
        r["metric_change"] = round(r["value"] - rows[0]["value"], 6)
    return rows


def to_markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        f"Half-precision weights ({NOTE})",
        "",
        "| bundle | precision | n | model.pt MB | ratio | max abs change | mean abs change | metric | value | change |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['bundle']} | {r['precision']} | {r['n_studies']} | {r['size_mb']} | {r['size_ratio']} | "
            f"{r['max_abs_change']:.2e} | {r['mean_abs_change']:.2e} | {r['metric']} | {r['value']} | "
            f"{r['metric_change']:+.2e} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--demo-dir", default=None, help="an existing `monai-bone demo` output (else a quick demo runs)")
    p.add_argument("--out", default="results/bench")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    out = Path(args.out)
    demo = Path(args.demo_dir) if args.demo_dir else out / "half_demo"
    if not args.demo_dir:
        from monai_bone.demo import run_demo

        run_demo(demo, quick=True, n_hip=40, n_knee=40, overwrite=True, progress=False)
    rows = []
    for task, name in BUNDLE_NAMES.items():
        bundle = demo / "bundles" / name
        if (bundle / "models" / "model.pt").is_file():
            rows += measure_bundle(bundle, demo / "data" / task / "datalist.json", out / "half_work" / task)
    text = to_markdown(rows)
    atomic_write_json(out / "bench_half.json", {"note": NOTE, "rows": rows})
    atomic_write_text(out / "bench_half.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
