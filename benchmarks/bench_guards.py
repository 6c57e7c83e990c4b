"""Image guards measured on SYNTHETIC images: bilateral knee detection and the blank-image rule.

* **bilateral** -- detection rate of :func:`monai_bone.data.image_guards.is_bilateral` on generated bilateral knees
  (:func:`monai_bone.synthetic.bilateral_phantom.render_bilateral_knee`, both polarities) and false-positive rates on
  single knees (square phantoms) and on wide single knees padded with air (the hard negatives).
* **blank** -- false-rejection rate of :func:`monai_bone.data.image_guards.blank_image_problem` on hip and knee
  phantoms (random BitsStored 8-16) and its detection rate on degenerate images: constant, constant plus noise of a
  few grey levels, a faint 1 %-of-range gradient, two-level (burnt-out) images with 97 % of pixels saturated.

Everything is SYNTHETIC: real bilateral radiographs (e.g. in the Kaggle KOP set) may differ. Usage::

    python benchmarks/bench_guards.py --out bench_out [--quick]

Writes ``bench_guards.json`` and ``bench_guards.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np


def bench_bilateral(n: int, size: int) -> dict[str, Any]:
    from monai_bone.data.image_guards import is_bilateral
    from monai_bone.synthetic.bilateral_phantom import render_bilateral_knee, render_wide_single_knee
    from monai_bone.synthetic.phantom import render_phantom

    bilateral = [render_bilateral_knee(s, size=size) for s in range(n)]
    hits = sum(is_bilateral(b) for b in bilateral)
    inverted = sum(is_bilateral(int(b.max()) - b, monochrome1=True) for b in bilateral)
    single = sum(is_bilateral(render_phantom("knee", 0.8, 27.0, size=size, seed=1000 + s).pixels) for s in range(n))
    wide = sum(is_bilateral(render_wide_single_knee(2000 + s, size=size)) for s in range(n))
    return {
        "n_per_kind": n,
        "size": size,
        "bilateral_detected": hits / n,
        "bilateral_monochrome1_detected": inverted / n,
        "single_false_positive": single / n,
        "wide_single_false_positive": wide / n,
    }


def _degenerate(rng: np.random.Generator, kind: str, size: int) -> tuple[np.ndarray, int]:
    if kind == "constant":
        return np.full((size, size), float(rng.integers(0, 4096))), 12
    if kind == "constant_plus_noise":
        return 2000.0 + rng.integers(-3, 4, (size, size)).astype(float), 12
    if kind == "faint_gradient":
        return 1000.0 + np.tile(np.linspace(0.0, 0.009 * 65535, size), (size, 1)).round(), 16
    saturated = np.full((size, size), 4095.0)
    saturated.reshape(-1)[rng.choice(size * size, int(0.03 * size * size), replace=False)] = rng.integers(
        0, 4095, int(0.03 * size * size)
    )
    return saturated, 12


def bench_blank(n: int, size: int) -> dict[str, Any]:
    from monai_bone.data.image_guards import blank_image_problem
    from monai_bone.synthetic.phantom import render_phantom

    rng = np.random.default_rng(0)
    false_rejects = 0
    for s in range(n):
        task = ("hip", "knee")[s % 2]
        bits = int(rng.integers(8, 17))
        image = render_phantom(
            task, float(rng.uniform(0.5, 1.2)), float(rng.uniform(18, 38)), size=size, seed=s, bits_stored=bits
        )
        false_rejects += blank_image_problem(image.pixels, bits) is not None
    kinds = ("constant", "constant_plus_noise", "faint_gradient", "saturated")
    detected = {}
    for kind in kinds:
        found = 0
        for _ in range(n):
            arr, bits = _degenerate(rng, kind, size)
            found += blank_image_problem(arr, bits) is not None
        detected[kind] = found / n
    return {"n_per_kind": n, "size": size, "phantom_false_reject": false_rejects / n, "degenerate_detected": detected}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--quick", action="store_true", help="40 images per kind at 192 px (default 100 at 256 px)")
    args = parser.parse_args(argv)
    n, size = (40, 192) if args.quick else (100, 256)
    result = {"synthetic": True, "bilateral": bench_bilateral(n, size), "blank": bench_blank(n, size)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_guards.json").write_text(json.dumps(result, indent=2) + "\n")
    b, k = result["bilateral"], result["blank"]
    lines = [
        "# Image guards (SYNTHETIC images)",
        "",
        "| Measurement | Rate |",
        "|---|---|",
        f"| bilateral knees detected (n={n}, {size} px each knee) | {b['bilateral_detected']:.2f} |",
        f"| same, stored as MONOCHROME1 | {b['bilateral_monochrome1_detected']:.2f} |",
        f"| single square knees flagged bilateral (n={n}) | {b['single_false_positive']:.2f} |",
        f"| wide single knees (padded 1.25-1.6x) flagged bilateral (n={n}) | {b['wide_single_false_positive']:.2f} |",
        f"| hip/knee phantoms refused as blank (n={n}) | {k['phantom_false_reject']:.2f} |",
    ]
    lines += [
        f"| degenerate '{kind}' refused as blank (n={n}) | {v:.2f} |" for kind, v in k["degenerate_detected"].items()
    ]
    text = "\n".join(lines) + "\n"
    (out / "bench_guards.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
