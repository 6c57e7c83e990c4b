"""How much BMD signal does a region-of-interest crop carry? SYNTHETIC hip cohort, no network training.

Synthesises a realistic hip cohort, indexes it (locked test split), and on the test split compares ridge regressions
fitted on the training split:

* ``clinical``: the clinical-only ridge (monai-bone's baseline);
* ``trivial``: the trivial whole-image statistics + clinical ridge (monai-bone's baseline);
* ``band@true``: 16 radial band energies (log power spectrum) of the ``--roi-mm`` crop at ``--px`` pixels around the
  TRUE femoral-neck landmark (``realism.csv``), + the clinical ridge's prediction;
* ``band@localiser``: the same around the landmark of a ``LandmarkNet`` fitted on the training split's landmarks.

It prints R² per row, the ratio to the trivial baseline's R² and the localiser's test error in mm. Band energies are
a hand-made texture descriptor: they show the signal is in the crop, they are not a model we ship.

Usage::

    python benchmarks/bench_roi_texture.py --n 300 --size 1024 --out /tmp/roi_bench
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from monai_bone.cv.split_baselines import ClinicalBaseline, ImageStatsBaseline
from monai_bone.data import fold_records
from monai_bone.data.datalist import build_datalist
from monai_bone.data.landmarks import attach_landmarks
from monai_bone.engines.localiser import fit_localiser, localiser_errors
from monai_bone.metrics import regression_metrics
from monai_bone.synthetic.synth import synthesize
from monai_bone.transforms.array import LoadXray, XrayNormalise
from monai_bone.transforms.localise import LocateRoi
from monai_bone.transforms.roi import RoiCrop


def band_energies(crop: np.ndarray, bands: int = 16) -> np.ndarray:
    """Log mean power in ``bands`` radial frequency bands of a standardised crop."""
    x = (crop - crop.mean()) / (crop.std() + 1e-6)
    power = np.abs(np.fft.rfft2(x)) ** 2
    fy, fx = np.fft.fftfreq(x.shape[0])[:, None], np.fft.rfftfreq(x.shape[1])[None, :]
    rad, edges = np.sqrt(fy**2 + fx**2), np.linspace(0.0, 0.5, bands + 1)
    return np.array([np.log(power[(rad >= lo) & (rad < hi)].mean() + 1e-9) for lo, hi in zip(edges[:-1], edges[1:])])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=300)
    p.add_argument("--size", type=int, default=1024, help="rendered image side (px)")
    p.add_argument("--roi-mm", type=float, default=30.0)
    p.add_argument("--px", type=int, default=96)
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args()
    data = a.out / "hip"
    if not (data / "datalist.json").is_file():
        synthesize("hip", a.n, data, seed=0, size=a.size, progress=False)
        clinical = [data / "clinical.csv", data / "ground_truth.csv"]
        build_datalist(data / "dicom", data / "datalist.json", clinical=clinical, task="hip", folds=4, progress=False)
    dl = os.fspath(data / "datalist.json")
    train = attach_landmarks(fold_records(dl, None, "train", require="bmd"), data / "realism.csv")
    test = attach_landmarks(fold_records(dl, 0, "test", require="bmd"), data / "realism.csv")
    y, t = np.array([r["bmd"] for r in train]), np.array([r["bmd"] for r in test])
    loc_path = a.out / "localiser.pt"
    if not loc_path.is_file():
        fit_localiser(train, loc_path, task="hip")
    locate, crop = LocateRoi(loc_path), RoiCrop(a.roi_mm, a.px)
    images = {r["image"]: XrayNormalise()(LoadXray()(r["image"])) for r in train + test}

    def features(records: list[dict], true: bool) -> np.ndarray:
        out = []
        for r in records:
            img = images[r["image"]]
            centre = (r["roi_row"], r["roi_col"]) if true else locate(img)
            out.append(band_energies(crop(img, centre)[0].numpy()))
        return np.asarray(out)

    clin = ClinicalBaseline("ridge", seed=0).fit(train, y)
    rows = {
        "clinical": clin.predict(test),
        "trivial": ImageStatsBaseline("hip", seed=0).fit(train, y).predict(test),
    }
    for name, true in (("band@true", True), ("band@localiser", False)):
        xtr, xte = np.c_[features(train, true), clin.predict(train)], np.c_[features(test, true), clin.predict(test)]
        model = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13))).fit(xtr, y)
        rows[name] = model.predict(xte)
    r2 = {k: regression_metrics(v, t)["r2"] for k, v in rows.items()}
    err = localiser_errors(loc_path, test)
    result = {
        "synthetic": True,
        "split": "test",
        "n_test": len(test),
        "n_train": len(train),
        "selected_on_split": False,
        "settings": vars(a) | {"out": str(a.out)},
        "r2": r2,
        "ratio_to_trivial": {k: v / r2["trivial"] for k, v in r2.items()},
        "localiser_test_mean_mm": err["mean_mm"],
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
