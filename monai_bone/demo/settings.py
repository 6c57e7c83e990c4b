"""The demo's settings: :data:`DEMO_DEFAULTS` (minutes on 2 CPU cores) and :data:`QUICK_SETTINGS` (``--quick``)."""

from __future__ import annotations

from typing import Any

__all__ = ["DEMO_DEFAULTS", "QUICK_SETTINGS"]

#: Default demo settings: the pipeline end to end in minutes on 2 CPU cores (410 s measured with other processes
#: running). On the realistic synthetic default whole images at 96 px carry no usable signal (hip R² 0.001, knee AUC
#: 0.551); on ROI crops with the hip bundle's texture token (``texture_features`` 16) the hip reaches R² 0.439 on the
#: locked test split, above the clinical-only ridge (0.342) and the trivial image baseline (0.391) but with paired CIs
#: that include 0 (n = 60; 0.254 without the token). Knee (bilateral-aware localiser, texture descriptor, no zoom):
#: AUC 0.797 vs trivial 0.555 on the 32 test studies, ΔAUC +0.242 [-0.014, +0.499], DeLong p 0.064 -- above it, CI
#: includes 0; n_knee 320 gave 0.820 vs 0.682 (p 0.11, n = 64) at 1.7x the CPU time, so 160 stays (knee model card).
DEMO_DEFAULTS: dict[str, Any] = {
    "n_hip": 300,
    "n_knee": 160,
    "epochs": 12,
    "size": 96,
    "synth_size": 1024,  # the femoral-neck texture needs the full-resolution image for the ROI crop
    "batch_size": 8,
    "learning_rate": 3e-4,  # AdamW; the bundles' 1e-4 left the ROI networks unconverged after 12 epochs (hip R2 0.013)
    "folds": 4,
    "n_infer": 4,
    "n_boot": 200,
    # region-of-interest input (issue 17 item 4): a localiser trained on the training folds' synthetic landmarks
    # finds the femoral neck / knee joint centre, and the network sees a crop of this many mm (None: whole image).
    # Measured on the locked test split (SYNTHETIC): hip 30 mm at 96 px, AdamW 3e-4, batch 8: R2 0.439 with the hip
    # bundle's texture token and texture-safe augmentation, 0.254 without (whole image 0.001); knee 50 mm: the bundle
    # adds its ROI recipe (bilateral-aware localiser, texture_features 32, no rotation/zoom; knee model card): AUC 0.797
    # vs trivial 0.555 on 32 test studies (DeLong p 0.064).
    "roi_hip_mm": 30.0,
    "roi_knee_mm": 50.0,
}
#: ``--quick``: a smoke run of the whole pipeline (tests, CI).
QUICK_SETTINGS: dict[str, Any] = {
    "n_hip": 12,
    "n_knee": 12,
    "epochs": 1,
    "size": 64,
    "synth_size": 64,
    "batch_size": 8,
    "folds": 3,
    "n_infer": 2,
    "n_boot": 20,
    "learning_rate": 1e-4,
    "roi_hip_mm": None,
    "roi_knee_mm": None,
}
