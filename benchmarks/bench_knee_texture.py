"""Knee ROI experiment harness: bilateral-aware localisation, texture probe, and fast network variants. SYNTHETIC.

Synthesises (once) a realistic knee cohort like the demo's (binary, DICOM, ``--size`` px render), indexes it (locked
test split, 4 folds), then on the training split only (fold 0 validates, folds 1-3 fit; the test split is scored only
with ``--on-test``):

1. fits the ROI localiser with and without ``bilateral`` and prints the landmark error (mm) on the validation fold and
   the test split, for bilateral and single-knee images apart;
2. caches the ``--roi-mm`` crop at ``--px`` pixels around the bilateral localiser's landmark for every study;
3. ``probe``: a logistic regression on a fixed (Gabor start) ``TextureEnergy`` descriptor of the crop, 4-fold
   cross-validated over the training split (pooled out-of-fold AUC) -- how much signal the crop carries;
4. ``--train VARIANT ...``: trains ``hybrid``/``densenet`` with ``--texture K`` on the cached crops (AdamW, cosine
   schedule, batch 8, flips and intensity scaling, ``--zoom-rotate`` adds the bundle's rotation/zoom) and prints the
   validation-fold AUC per epoch. One torch thread: run variants side by side.

Usage::

    python benchmarks/bench_knee_texture.py --out /tmp/knee_bench                       # localiser + probe
    python benchmarks/bench_knee_texture.py --out /tmp/knee_bench --train hybrid --texture 32 --epochs 12
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from monai_bone.data import fold_records
from monai_bone.data.datalist import build_datalist
from monai_bone.data.landmarks import attach_landmarks, read_landmarks
from monai_bone.engines.localiser import fit_localiser, localiser_errors
from monai_bone.networks import DenseNet169Baseline, HybridAttentionNet
from monai_bone.networks.blocks import TextureEnergy
from monai_bone.synthetic.synth import synthesize
from monai_bone.transforms.array import LoadXray, XrayNormalise
from monai_bone.transforms.localise import LocateRoi, bilateral_view
from monai_bone.transforms.roi import RoiCrop


def cohort(out: Path, n: int, size: int) -> tuple[list[dict], Path]:
    data = out / "knee"
    if not (data / "datalist.json").is_file():
        synthesize("knee", n, data, seed=0, size=size, fmt="dicom", n_classes=2, progress=False)
        clinical = [data / "clinical.csv", data / "ground_truth.csv"]
        build_datalist(data / "dicom", data / "datalist.json", clinical=clinical, task="knee", folds=4, progress=False)
    dl = os.fspath(data / "datalist.json")
    recs = fold_records(dl, None, "train", require="label") + fold_records(dl, 0, "test", require="label")
    recs = attach_landmarks(recs, data / "realism.csv")
    for r in recs:
        r["image"] = os.fspath((data / r["image"]).resolve())
    return recs, data


def localise(recs: list[dict], data: Path, out: Path) -> LocateRoi:
    images = {r["image"]: XrayNormalise()(LoadXray()(r["image"])) for r in recs}
    for r in recs:
        r["bilateral"] = bool(bilateral_view(images[r["image"]])[1])
    fit = [r for r in recs if r["split"] == "train" and r["fold"] != 0]
    held = {"val": [r for r in recs if r["split"] == "train" and r["fold"] == 0],
            "test": [r for r in recs if r["split"] == "test"]}  # fmt: skip
    for bilateral in (False, True):
        path = out / f"localiser_bilateral{int(bilateral)}.pt"
        if not path.is_file():
            fit_localiser(fit, path, task="knee", bilateral=bilateral)
        for name, part in held.items():
            e = np.asarray(localiser_errors(path, part)["errors_mm"])
            b = np.array([r["bilateral"] for r in part])
            print(f"localiser bilateral={bilateral} {name} (n {len(part)}, {b.sum()} bilateral): mean {e.mean():.1f} "
                  f"mm, bilateral {e[b].mean():.1f}, single {e[~b].mean():.1f}")  # fmt: skip
    return LocateRoi(out / "localiser_bilateral1.pt")


def crops(recs: list[dict], data: Path, out: Path, roi_mm: float, px: int) -> torch.Tensor:
    path = out / f"crops_{roi_mm:g}mm_{px}px.pt"
    if path.is_file():
        return torch.load(path, weights_only=True)
    locate, crop = localise(recs, data, out), RoiCrop(roi_mm, px)
    x = []
    for r in recs:
        img = XrayNormalise()(LoadXray()(r["image"]))
        x.append(torch.as_tensor(crop(img, locate(img))).float()[:1])
    x = torch.stack(x)
    torch.save(x, path)
    return x


def probe(x: torch.Tensor, recs: list[dict], features: int) -> float:
    with torch.no_grad():
        z = TextureEnergy(2, 1, features).eval()(x).numpy()
    y = np.array([r["label"] for r in recs])
    tr = [i for i, r in enumerate(recs) if r["split"] == "train"]
    oof = np.zeros(len(recs))
    for k in range(4):
        a = [i for i in tr if recs[i]["fold"] != k]
        b = [i for i in tr if recs[i]["fold"] == k]
        model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000)).fit(z[a], y[a])
        oof[b] = model.predict_proba(z[b])[:, 1]
    return float(roc_auc_score(y[tr], oof[tr]))


def train(x: torch.Tensor, recs: list[dict], a: argparse.Namespace, variant: str) -> dict:
    y = torch.tensor([float(r["label"]) for r in recs])
    tr = [i for i, r in enumerate(recs) if r["split"] == "train" and r["fold"] != 0]
    va = [
        i
        for i, r in enumerate(recs)
        if (r["split"] == "test" if a.on_test else r["split"] == "train" and r["fold"] == 0)
    ]
    torch.manual_seed(a.seed)
    g = torch.Generator().manual_seed(a.seed)
    net = (HybridAttentionNet if variant == "hybrid" else DenseNet169Baseline)(texture_features=a.texture)
    opt = torch.optim.AdamW(net.parameters(), lr=a.lr, weight_decay=1e-4)
    cosine = lambda e: 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(e, a.epochs) / a.epochs))  # noqa: E731
    sched = torch.optim.lr_scheduler.LambdaLR(opt, cosine)
    aucs, t0 = [], time.time()
    for _ in range(a.epochs):
        net.train()
        order = [tr[i] for i in torch.randperm(len(tr), generator=g)]
        for s in range(0, len(order) - 7, 8):
            xb = x[order[s : s + 8]].clone()
            flip = torch.rand(len(xb), generator=g) < 0.5
            xb[flip] = xb[flip].flip(-1)
            if a.zoom_rotate:  # as the bundle's RandRotated(0.26 rad) + RandZoomd(0.9-1.2), each with p 0.5
                n = len(xb)
                s_ = 1 / (1 + (torch.rand(n, generator=g) * 0.3 - 0.1) * (torch.rand(n, generator=g) < 0.5))
                t_ = (torch.rand(n, generator=g) * 2 - 1) * 0.26 * (torch.rand(n, generator=g) < 0.5)
                th = torch.stack([torch.stack([s_ * t_.cos(), -s_ * t_.sin(), 0 * s_], 1),
                                  torch.stack([s_ * t_.sin(), s_ * t_.cos(), 0 * s_], 1)], 1)  # fmt: skip
                xb = F.grid_sample(xb, F.affine_grid(th, list(xb.shape), align_corners=False), align_corners=False)
            xb = xb * (1 + (torch.rand(len(xb), 1, 1, 1, generator=g) * 0.2 - 0.1))
            loss = F.binary_cross_entropy_with_logits(net(xb)[:, 0], y[order[s : s + 8]])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
        net.eval()
        with torch.no_grad():
            p = torch.cat([net(x[va[i : i + 16]])[:, 0] for i in range(0, len(va), 16)]).numpy()
        aucs.append(round(float(roc_auc_score(y[va].numpy(), p)), 3))
    split = "test" if a.on_test else "val fold 0"
    return {"variant": variant, "texture": a.texture, "split": split, "n": len(va), "auc_per_epoch": aucs,
            "seconds": round(time.time() - t0)}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--n", type=int, default=160)
    p.add_argument("--size", type=int, default=1024, help="rendered image side (px)")
    p.add_argument("--roi-mm", type=float, default=50.0)
    p.add_argument("--px", type=int, default=96)
    p.add_argument("--probe-features", type=int, default=32)
    p.add_argument("--train", nargs="*", default=[], choices=["hybrid", "densenet"])
    p.add_argument("--texture", type=int, default=32)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--zoom-rotate", action="store_true")
    p.add_argument("--on-test", action="store_true", help="score the locked test split (once, after choosing)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    torch.set_num_threads(1)
    a.out.mkdir(parents=True, exist_ok=True)
    recs, data = cohort(a.out, a.n, a.size)
    assert read_landmarks(data / "realism.csv"), "a realistic-preset cohort carries landmarks"
    x = crops(recs, data, a.out, a.roi_mm, a.px)
    n_train = sum(r["split"] == "train" for r in recs)
    auc = probe(x, recs, a.probe_features)
    print(f"probe: fixed TextureEnergy({a.probe_features}) + logistic, 4-fold CV over the training split "
          f"(n {n_train}): pooled AUC {auc:.3f}")  # fmt: skip
    for variant in a.train:
        print(json.dumps(train(x, recs, a, variant)))


if __name__ == "__main__":
    main()
