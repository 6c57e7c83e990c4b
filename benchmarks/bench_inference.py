"""Single-study inference latency, DICOM -> BMD -> T-score: the hip bundle's pipeline vs bare code, and three backends.

Paths, each timed per study on the same DICOM files (SYNTHETIC hip cohort, one study per call, batch 1):

* **bundle** -- the objects of ``configs/inference.json`` built by ``monai.bundle.ConfigWorkflow``: ``preprocessing``
  (``LoadXrayd`` -> ``XrayNormalised`` -> ``Resized`` -> ``SpatialPadd`` -> ``RepeatChanneld`` -> ``ClinicalVectord``),
  ``collate_records``, ``prepare_batch``, ``inferer`` + ``network`` (weights loaded as the bundle loads them), then
  ``monai_bone.metrics.t_score`` and ``who_class``;
* **bare** -- ``pydicom.dcmread`` + ``pixel_array`` + ``apply_modality_lut``, a numpy MONOCHROME1 inversion and
  0.5/99.5-percentile clip, ``torch.nn.functional.interpolate(mode="area")`` + ``pad``, a hand-written clinical
  vector from the same statistics, the same network's forward, ``(bmd - mean) / sd`` and the WHO class;
* **bundle evaluator** -- ``evaluator.run()`` of the same workflow over the studies (its DataLoader, checkpoint
  loading, prediction writer with the CSV/JSON report), per study; and **cold** -- a whole ``ConfigWorkflow``
  (construction, on-the-fly index of a single DICOM file, network build, run, report) per call, what one
  ``python -m monai.bundle run --config_file configs/inference.json --input one.dcm`` costs minus interpreter start-up.

Ratio = bundle / bare median latency (goal <= 1.3). The two paths must agree: their BMD differ by at most
``max_abs_diff_bmd`` (reported). Backends: eager PyTorch vs TorchScript (``torch.jit.script``, what ``ckpt_export``
writes) vs ONNX Runtime (CPU provider, legacy exporter), forward latency on the bundle's preprocessed inputs plus the
end-to-end latency with each. Studies and paths alternate; medians over ``--reps`` passes over ``--studies`` studies.

Usage::

    python benchmarks/bench_inference.py --out results/bench            # full: 2048² DICOM, 224 px, 10 studies x 5
    python benchmarks/bench_inference.py --out results/bench --quick    # 2-core CPU: 1024² DICOM, 224 px, 4 x 3

Writes ``bench_inference.json`` and ``bench_inference.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:
    sys.path.insert(0, str(_HERE))

import _bench_common as common  # noqa: E402

__all__ = ["GOAL_RATIO", "PRESETS", "BareHipPipeline", "main", "parse_args", "to_markdown"]

GOAL_RATIO = 1.3
PRESETS: dict[str, dict[str, Any]] = {
    "smoke": {"image_size": 128, "size": 64, "studies": 2, "reps": 1, "cold_reps": 1, "threads": 1, "onnx": True},
    "quick": {"image_size": 1024, "size": 224, "studies": 4, "reps": 3, "cold_reps": 2, "threads": 1, "onnx": True},
    "full": {"image_size": 2048, "size": 224, "studies": 10, "reps": 5, "cold_reps": 3, "threads": 0, "onnx": True},
}


class BareHipPipeline:
    """The hand-written reference: pydicom + numpy + torch, no MONAI.

    Args:
        network: the model (eval mode, on ``device``).
        size: square network input side.
        stats: clinical statistics dict (``mean``, ``std``, ``fields``, ``categorical_codes``) as saved by the bundle.
        device: torch device.
        ref_mean: young-adult reference mean (g/cm²).
        ref_sd: young-adult reference SD (g/cm²).
    """

    def __init__(self, network, size: int, stats: dict, device, ref_mean: float, ref_sd: float) -> None:
        self.network, self.size, self.device = network, size, device
        self.fields = list(stats["fields"])
        self.mean, self.std = stats["mean"], stats["std"]
        self.codes = stats.get("categorical_codes", {})
        self.ref_mean, self.ref_sd = ref_mean, ref_sd

    def image(self, path: str):
        """``(1, 1, size, size)`` float32 tensor, bone bright, [0, 1]."""
        import numpy as np
        import pydicom
        import torch
        import torch.nn.functional as F
        from pydicom.pixels import apply_modality_lut

        ds = pydicom.dcmread(path)
        x = apply_modality_lut(ds.pixel_array, ds).astype(np.float32)
        lo, hi = (float(v) for v in np.percentile(x, [0.5, 99.5]))
        x = (hi - x if ds.PhotometricInterpretation == "MONOCHROME1" else x - lo) / (hi - lo)
        t = torch.from_numpy(np.clip(x, 0.0, 1.0, out=x))[None, None]
        h, w = t.shape[-2:]
        scale = self.size / max(h, w)
        t = F.interpolate(t, size=(int(round(h * scale)), int(round(w * scale))), mode="area")
        ph, pw = self.size - t.shape[-2], self.size - t.shape[-1]
        return F.pad(t, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))

    def clinical(self, record: dict):
        """``(1, F)`` float32 tensor, standardised, NaN where missing."""
        import torch

        values = []
        for f in self.fields:
            v = record.get(f)
            if f in self.codes:
                v = self.codes[f].get(str(v)) if v is not None else None
            v = math.nan if v is None else float(v)
            values.append((v - self.mean[f]) / self.std[f])
        return torch.tensor([values], dtype=torch.float32)

    def __call__(self, record: dict) -> dict[str, Any]:
        """One study: DICOM path + record -> BMD, T-score and WHO class."""
        import torch

        image = self.image(record["image"]).to(self.device)
        clinical = self.clinical(record).to(self.device)
        with torch.no_grad():
            bmd = float(self.network(image, clinical)[0, 0])
        t = (bmd - self.ref_mean) / self.ref_sd
        who = "normal" if t >= -1.0 else ("osteoporosis" if t <= -2.5 else "osteopenia")
        return {"bmd": bmd, "t_score": t, "who_class": who}


def _overrides(args: argparse.Namespace, run: Path, input_path: Path, ckpt: Path, stats: Path) -> dict[str, Any]:
    return {
        "input": str(input_path),
        "output_dir": str(run / "out"),
        "ckpt_path": str(ckpt),
        "clinical_stats_path": str(stats),
        "spatial_size": args.size,
        "batch_size": 1,
        "num_workers": 0,
        "device": f"$torch.device({args.device!r})",
    }


def _bundle_study(parts: dict[str, Any], record: dict) -> dict[str, Any]:
    """One study through the bundle's own preprocessing, batch preparation, inferer and network."""
    import torch

    from monai_bone.data.collate import collate_records
    from monai_bone.metrics import t_score, who_class

    batch = collate_records([parts["preprocessing"](dict(record))])
    image, _, args, kwargs = parts["prepare_batch"](batch, parts["device"], parts["fast"].non_blocking)
    with torch.no_grad(), torch.autocast("cuda", enabled=parts["fast"].amp, **parts["fast"].amp_kwargs):
        pred = parts["inferer"](image, parts["network"], *args, **kwargs)
    bmd = float(pred.float()[0, 0])
    t = float(t_score(bmd, parts["ref_mean"], parts["ref_sd"]))
    return {"bmd": bmd, "t_score": t, "who_class": who_class(t)}


def _time_backends(parts: dict[str, Any], records: list[dict], work: Path, args: argparse.Namespace) -> dict:
    """Eager vs TorchScript vs ONNX Runtime forward latency on the bundle's preprocessed inputs (batch 1)."""
    import numpy as np
    import torch

    from monai_bone.data.collate import collate_records

    net = parts["network"]
    inputs = []
    prep_s = []
    for r in records:
        seconds, batch = common.timed(lambda r=r: collate_records([parts["preprocessing"](dict(r))]))
        prep_s.append(seconds)
        image, _, _, kwargs = parts["prepare_batch"](batch, parts["device"], False)
        inputs.append((image, kwargs["clinical"]))
    backends: dict[str, Any] = {"eager": lambda x, c: net(x, c)}
    info: dict[str, Any] = {}
    with torch.no_grad():
        start = time.perf_counter()
        scripted = torch.jit.script(net)
        info["torchscript_build_s"] = round(time.perf_counter() - start, 3)
        backends["torchscript"] = lambda x, c: scripted(x, c)
    if args.onnx and parts["device"].type == "cpu":
        try:
            import onnxruntime as ort

            path = work / "xattn_bmd.onnx"
            start = time.perf_counter()
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the legacy exporter's notices (tracing of the NaN-mask branch)
                torch.onnx.export(
                    net, inputs[0], str(path), input_names=["image", "clinical"], output_names=["pred"], dynamo=False
                )
            options = ort.SessionOptions()
            if args.threads:
                options.intra_op_num_threads = args.threads
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            info["onnx_build_s"] = round(time.perf_counter() - start, 3)
            info["onnxruntime"] = ort.__version__
            backends["onnxruntime"] = lambda x, c: torch.from_numpy(
                session.run(None, {"image": x.numpy(), "clinical": c.numpy()})[0]
            )
        except Exception as err:  # noqa: BLE001 - a missing or failing exporter is reported, not fatal
            info["onnx_error"] = f"{type(err).__name__}: {err}"[:300]
    elif args.onnx:
        info["onnx_error"] = "ONNX Runtime timed on CPU only"
    rows: dict[str, Any] = {}
    times: dict[str, list[float]] = {name: [] for name in backends}
    outputs: dict[str, list[np.ndarray]] = {name: [] for name in backends}
    with torch.no_grad():
        for fn in backends.values():  # warm-up (TorchScript profiles its first calls)
            for x, c in inputs[:2]:
                fn(x, c)
        for rep in range(args.reps):
            for x, c in inputs:
                names = list(backends) if rep % 2 == 0 else list(backends)[::-1]
                for name in names:
                    seconds, out = common.timed(lambda name=name, x=x, c=c: backends[name](x, c), parts["device"])
                    times[name].append(seconds)
                    if rep == 0:
                        outputs[name].append(out.float().cpu().numpy())
    eager = np.concatenate(outputs["eager"])
    prep_ms = 1000 * common.median(prep_s)
    for name in backends:
        fwd_ms = 1000 * common.median(times[name])
        rows[name] = {
            "forward_ms": round(fwd_ms, 3),
            "end_to_end_ms": round(prep_ms + fwd_ms, 3),
            "speedup_vs_eager": None,
            "max_abs_diff_vs_eager": float(np.max(np.abs(np.concatenate(outputs[name]) - eager))),
        }
    for name in rows:
        rows[name]["speedup_vs_eager"] = round(rows["eager"]["forward_ms"] / rows[name]["forward_ms"], 3)
    for name in ("torchscript", "onnxruntime"):
        if name not in rows:
            rows[name] = {"forward_ms": None, "end_to_end_ms": None, "speedup_vs_eager": None}
            rows[name]["status"] = info.get("onnx_error", "not run")
    return {"preprocess_ms": round(prep_ms, 3), "backends": rows, **info}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, write JSON + Markdown, print the table; returns the report."""
    import json

    import numpy as np
    import torch

    from monai_bone.constants import SYNTHETIC_NOTE
    from monai_bone.data.folds import load_records
    from monai_bone.transforms.clinical_fit import fit_clinical_stats

    args = parse_args(argv)
    with common.torch_threads(args.threads), tempfile.TemporaryDirectory(prefix="bench_inference_") as tmp:
        work = args.workdir or Path(tmp)
        datalist = common.make_cohort(work, "hip", max(args.studies, 5), size=args.image_size, folds=5)
        records = load_records(datalist)[: args.studies]
        stats_path, ckpt = work / "models" / "clinical_stats.json", work / "models" / "model.pt"
        fit_clinical_stats(load_records(datalist), stats_path)
        wf = common.bundle_workflow(
            "hip", ["inference.json"], "infer", **_overrides(args, work / "warm", datalist, ckpt, stats_path)
        )
        wf.initialize()
        p = wf.parser
        network = p.get_parsed_content("network")
        torch.manual_seed(0)
        for m in network.modules():  # random but non-trivial weights, saved where the bundle loads them from
            if isinstance(m, torch.nn.Linear):
                torch.nn.init.normal_(m.weight, std=0.05)
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        torch.save(network.state_dict(), ckpt)
        network.eval()
        fast = p.get_parsed_content("fast_path")
        parts = {
            "preprocessing": p.get_parsed_content("preprocessing"),
            "prepare_batch": p.get_parsed_content("prepare_batch"),
            "inferer": p.get_parsed_content("inferer"),
            "network": network,
            "device": fast.device,
            "fast": fast,
            "ref_mean": float(p.get_parsed_content("ref_mean")),
            "ref_sd": float(p.get_parsed_content("ref_sd")),
        }
        bare = BareHipPipeline(
            network,
            args.size,
            json.loads(stats_path.read_text()),
            fast.device,
            parts["ref_mean"],
            parts["ref_sd"],
        )
        print("timing single-study latency: bundle vs bare ...", file=sys.stderr, flush=True)
        for r in records[:2]:  # warm-up: imports, reader set-up, allocator
            _bundle_study(parts, r)
            bare(r)
        lat: dict[str, list[float]] = {"bundle": [], "bare": []}
        diffs, agree = [], 0
        for rep in range(args.reps):
            for i, r in enumerate(records):
                order = [("bundle", lambda r=r: _bundle_study(parts, r)), ("bare", lambda r=r: bare(r))]
                results = {}
                for name, fn in order if (rep + i) % 2 == 0 else order[::-1]:
                    seconds, results[name] = common.timed(fn, fast.device)
                    lat[name].append(seconds)
                diffs.append(abs(results["bundle"]["bmd"] - results["bare"]["bmd"]))
                agree += results["bundle"]["who_class"] == results["bare"]["who_class"]
        print("timing the bundle evaluator and cold runs ...", file=sys.stderr, flush=True)
        evaluator = p.get_parsed_content("evaluator")
        with common.log_to_file(work / "inference.log"):
            evaluator.run()  # warm-up
            eval_s = [common.timed(evaluator.run, fast.device)[0] / len(load_records(datalist)) for _ in range(2)]
            cold_s = []
            for k in range(args.cold_reps):
                run = work / f"cold_{k}"

                def cold(run: Path = run) -> None:
                    w = common.bundle_workflow(
                        "hip",
                        ["inference.json"],
                        "infer",
                        **_overrides(args, run, records[0]["image"], ckpt, stats_path),
                    )
                    w.initialize()
                    w.run()
                    w.finalize()

                cold_s.append(common.timed(cold, fast.device)[0])
        wrote = sorted(f.name for f in (work / "warm" / "out").iterdir()) if (work / "warm" / "out").is_dir() else []
        print("timing eager vs TorchScript vs ONNX Runtime ...", file=sys.stderr, flush=True)
        backends = _time_backends(parts, records, work, args)
        wf.finalize()
        environment = common.machine_info(args.mode, args.device)
    bundle_ms, bare_ms = 1000 * common.median(lat["bundle"]), 1000 * common.median(lat["bare"])
    ratio = bundle_ms / bare_ms
    evaluator_ms = 1000 * common.median(eval_s)
    report = {
        "benchmark": "bench_inference",
        "command": common.command_line("bench_inference", argv),
        "synthetic": True,
        "note": SYNTHETIC_NOTE,
        "environment": environment,
        "settings": {
            "task": "hip",
            "image_size": args.image_size,
            "size": args.size,
            "studies": len(records),
            "reps": args.reps,
            "cold_reps": args.cold_reps,
            "fast_path": fast.to_dict(),
            "preset_overrides": args.preset_overrides,
        },
        "latency": {
            "bundle_ms": round(bundle_ms, 3),
            "bare_ms": round(bare_ms, 3),
            "ratio": round(ratio, 4),
            "goal_ratio": GOAL_RATIO,
            "meets_goal": bool(ratio <= GOAL_RATIO),
            "bundle_all_ms": [round(1000 * s, 3) for s in lat["bundle"]],
            "bare_all_ms": [round(1000 * s, 3) for s in lat["bare"]],
            "max_abs_diff_bmd": float(np.max(diffs)),
            "who_class_agreement": round(agree / len(diffs), 4),
            "evaluator_per_study_ms": round(evaluator_ms, 3),
            "evaluator_ratio": round(evaluator_ms / bare_ms, 4),
            "evaluator_outputs": wrote,
            "cold_single_study_s": round(common.median(cold_s), 4),
        },
        "backends": backends,
        "meets_goal": bool(ratio <= GOAL_RATIO),
        "gpu": {"status": "measured" if fast.device.type == "cuda" else common.GPU_NOT_MEASURED},
    }
    markdown = to_markdown(report)
    common.write_outputs(args.out, "bench_inference", report, markdown)
    print(markdown, end="")
    return report


def to_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown."""
    env, s, lat, b = report["environment"], report["settings"], report["latency"], report["backends"]
    mode = common.mode_label(env["mode"], s["preset_overrides"])
    met = "met" if lat["meets_goal"] else "NOT met"
    lines = [
        "# bench_inference: single-study hip latency, DICOM -> BMD -> T-score (SYNTHETIC data)",
        "",
        f"Mode **{mode}**; device {env['device']}, {env['cpu_count']} CPU core(s), {env['torch_threads']} torch "
        f"threads, GPU: {env['gpu'] or 'none'}. {s['studies']} studies of {s['image_size']}² DICOM -> {s['size']}² "
        f"input, median of {s['reps']} passes.",
        "",
        "| path | latency per study | vs bare |",
        "| --- | ---: | ---: |",
        f"| bare: pydicom + numpy + forward + T-score | {lat['bare_ms']:.1f} ms | 1.00 |",
        f"| bundle: inference.json preprocessing + network + T-score | {lat['bundle_ms']:.1f} ms | "
        f"{lat['ratio']:.2f} (goal <= {lat['goal_ratio']}: {met}) |",
        f"| bundle evaluator (DataLoader, checkpoint load, CSV/JSON report) | {lat['evaluator_per_study_ms']:.1f} ms "
        f"| {lat['evaluator_ratio']:.2f} |",
        "| cold: new workflow for one DICOM file (index, build, run, report) "
        f"| {1000 * lat['cold_single_study_s']:.0f} ms | - |",
        "",
        f"Bundle and bare BMD differ by at most {lat['max_abs_diff_bmd']:.2e} g/cm²; same WHO class in "
        f"{100 * lat['who_class_agreement']:.0f} % of the studies.",
        "",
        f"Backends (forward on the bundle's preprocessed input, batch 1; preprocessing {b['preprocess_ms']:.1f} ms):",
        "",
        "| backend | forward ms | end-to-end ms | speed-up vs eager | max abs diff |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, r in b["backends"].items():
        if r["forward_ms"] is None:
            lines.append(f"| {name} | {r.get('status', 'not run')} | - | - | - |")
        else:
            lines.append(
                f"| {name} | {r['forward_ms']:.1f} | {r['end_to_end_ms']:.1f} | {r['speedup_vs_eager']:.2f} "
                f"| {r['max_abs_diff_vs_eager']:.1e} |"
            )
    lines += ["", f"GPU latency: {report['gpu']['status']}."]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments; ``--quick``/``--smoke`` pick smaller presets (explicit values win)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="folder for bench_inference.json and bench_inference.md")
    p.add_argument("--quick", action="store_true", help="small preset for a CPU machine (about a minute)")
    p.add_argument("--smoke", action="store_true", help="tiniest preset (test suite); not a measurement")
    p.add_argument("--image-size", type=int, default=None, help="side of the synthetic DICOM images")
    p.add_argument("--size", type=int, default=None, help="bundle spatial_size (network input side)")
    p.add_argument("--studies", type=int, default=None, help="studies timed per pass")
    p.add_argument("--reps", type=int, default=None, help="passes over the studies")
    p.add_argument("--cold-reps", type=int, default=None, help="cold whole-workflow runs")
    p.add_argument("--no-onnx", dest="onnx", action="store_false", default=None, help="skip ONNX Runtime")
    p.add_argument("--device", default=None, help="cpu or cuda[:N] (default: cuda when available)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (0: torch's choice; quick/smoke 1)")
    p.add_argument("--workdir", type=Path, default=None, help="keep the cohort and runs here (default: temporary)")
    args = p.parse_args(argv)
    args.mode = common.mode_of(args)
    common.apply_preset(args, PRESETS)
    if args.size < 32 or args.image_size < 32 or args.studies < 1 or args.reps < 1 or args.cold_reps < 1:
        p.error("--size/--image-size >= 32 and --studies/--reps/--cold-reps >= 1 are required")
    if args.device is None:
        args.device = "cuda:0" if common.cuda_available() else "cpu"
    return args


if __name__ == "__main__":
    main()
