"""Train and evaluate the ROI localiser (:class:`~monai_bone.networks.LandmarkNet`) on landmark-labelled records.

Records are datalist records with the image path and the landmark in pixels of the image as stored (``roi_row``,
``roi_col``; :func:`monai_bone.data.landmarks.attach_landmarks` adds the synthetic generator's ground truth). Images
are read once through :class:`~monai_bone.transforms.LoadXray` + :class:`~monai_bone.transforms.XrayNormalise` and
reduced to the localiser input (:func:`~monai_bone.transforms.localise.landmark_input`); training augments with
horizontal flips (the landmark flips with the image), random translations by zero-padding shifts and intensity
gamma. With ``bilateral`` on (knee), a bilateral image is reduced to its displayed-left knee first
(:func:`~monai_bone.transforms.localise.bilateral_view`; the synthetic landmark marks that knee), so the flip
augmentation never shows the localiser a landmark on either of two knees. :func:`localiser_errors` reports the
distance to the true landmark in millimetres (from PixelSpacing), the number a user needs before trusting a crop of a
given size.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from filelock import FileLock

from monai_bone.data.landmarks import attach_landmarks
from monai_bone.networks.nets.landmark import LandmarkNet
from monai_bone.transforms.array import LoadXray, XrayNormalise
from monai_bone.transforms.localise import LocateRoi, bilateral_view, landmark_input
from monai_bone.transforms.roi import image_spacing_mm
from monai_bone.utils.io import atomic_write_json, atomic_write_stream

__all__ = ["ensure_localiser", "fit_localiser", "localiser_errors", "localiser_inputs"]

logger = logging.getLogger(__name__)


def _load(path: str) -> torch.Tensor:
    return XrayNormalise()(LoadXray()(path))


def localiser_inputs(
    records: Sequence[dict], size: int, row_key: str = "roi_row", col_key: str = "roi_col", bilateral: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Localiser inputs ``(N, 1, size, size)`` and normalised targets ``(N, 1, 2)`` of landmark-labelled records.

    Args:
        records: records with ``image`` and the landmark.
        size: localiser input side.
        row_key, col_key: the landmark's keys.
        bilateral: reduce bilateral images to their displayed-left knee (module docstring).

    Raises:
        KeyError: a record without the landmark (names its image).
        ValueError: ``bilateral`` is on and a bilateral image's landmark is not in its left half (names the image).
    """
    xs, ys = [], []
    for r in records:
        if r.get(row_key) is None or r.get(col_key) is None:
            raise KeyError(f"{r.get('image')}: no landmark ({row_key}/{col_key}) for the localiser")
        img = _load(r["image"])
        if bilateral:
            img, split = bilateral_view(img)
            if split and float(r[col_key]) >= img.shape[-1]:
                raise ValueError(
                    f"{r.get('image')}: bilateral image whose landmark (column {float(r[col_key]):.0f}) is not on the "
                    "displayed-left knee; the bilateral localiser needs the left knee's landmark"
                )
        x, scale = landmark_input(img, size)
        xs.append(x)
        ys.append([(float(r[row_key]) + 0.5) * scale / size, (float(r[col_key]) + 0.5) * scale / size])
    return torch.stack(xs), torch.tensor(ys, dtype=torch.float32)[:, None, :]


def _augment(x: torch.Tensor, y: torch.Tensor, g: torch.Generator, max_shift: float) -> tuple[torch.Tensor, ...]:
    """Flip, shift (by whole pixels, zero fill) and gamma, with the landmark moved accordingly."""
    x, y = x.clone(), y.clone()
    n, _, s, _ = x.shape
    flip = torch.rand(n, generator=g) < 0.5
    x[flip] = x[flip].flip(-1)
    y[flip, :, 1] = 1.0 - y[flip, :, 1]
    shifts = ((torch.rand(n, 2, generator=g) * 2 - 1) * max_shift * s).round().int()
    for i in range(n):
        dr, dc = int(shifts[i, 0]), int(shifts[i, 1])
        x[i] = torch.roll(x[i], (dr, dc), dims=(-2, -1))
        if dr > 0:
            x[i, :, :dr] = 0
        elif dr < 0:
            x[i, :, dr:] = 0
        if dc > 0:
            x[i, :, :, :dc] = 0
        elif dc < 0:
            x[i, :, :, dc:] = 0
        y[i, :, 0] += dr / s
        y[i, :, 1] += dc / s
    gamma = torch.exp((torch.rand(n, 1, 1, 1, generator=g) - 0.5) * 0.8)
    return x.clamp(0, 1) ** gamma, y


def fit_localiser(
    records: Sequence[dict],
    path: str | os.PathLike,
    size: int = 96,
    epochs: int = 30,
    batch_size: int = 16,
    learning_rate: float = 2e-3,
    channels: Sequence[int] = (8, 16, 32, 64),
    seed: int = 0,
    max_shift: float = 0.08,
    task: str | None = None,
    bilateral: bool = False,
) -> dict[str, Any]:
    """Train a :class:`LandmarkNet` on landmark-labelled records and save it (file format: :mod:`.localise`).

    The file is written atomically, and the caller's torch random state is left as it was (the fit seeds its own).

    Args:
        records: training records with ``image``, ``roi_row``, ``roi_col`` (never the test split).
        path: output file (``torch.save`` dictionary; a ``.json`` summary is written next to it).
        size: input side of the localiser (multiple of 16).
        epochs: training epochs (Adam, cosine learning rate).
        batch_size: batch size.
        learning_rate: peak learning rate.
        channels: encoder widths.
        seed: random seed (initialisation, batches, augmentation).
        max_shift: largest random translation as a fraction of the input side.
        task: recorded in the file (``"hip"``/``"knee"``).
        bilateral: fit (and, recorded in the file, locate) on the displayed-left knee of bilateral knee images
            (module docstring); use it for knee localisers.

    Returns:
        ``{"path", "n_train", "epochs", "final_loss", "size"}``.

    Raises:
        ValueError: ``size`` not a positive multiple of 16, or no records.
    """
    if size < 16 or size % 16:
        raise ValueError(f"size must be a positive multiple of 16, got {size}")
    if not records:
        raise ValueError("fit_localiser needs at least one landmark-labelled record")
    with torch.random.fork_rng(devices=[]):  # the caller's random state is left as it was (same on every rank)
        return _fit(records, path, size, epochs, batch_size, learning_rate, channels, seed, max_shift, task, bilateral)


def _fit(
    records: Sequence[dict],
    path: str | os.PathLike,
    size: int,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    channels: Sequence[int],
    seed: int,
    max_shift: float,
    task: str | None,
    bilateral: bool,
) -> dict[str, Any]:
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    x, y = localiser_inputs(records, size, bilateral=bilateral)
    net = LandmarkNet(2, 1, 1, channels=channels)
    opt = torch.optim.Adam(net.parameters(), lr=learning_rate)
    steps = max(1, epochs * math.ceil(len(x) / batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=learning_rate, total_steps=steps, pct_start=0.1)
    loss = torch.zeros(())
    for epoch in range(epochs):
        net.train()
        perm = torch.randperm(len(x), generator=g)
        total = 0.0
        for i in range(0, len(perm), batch_size):
            idx = perm[i : i + batch_size]
            if len(idx) < 2:  # batch norm needs two samples
                continue
            xb, yb = _augment(x[idx], y[idx], g, max_shift)
            loss = torch.nn.functional.l1_loss(net(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        logger.info("localiser epoch %d/%d: L1 %.4f (fraction of the image side)", epoch + 1, epochs, total / len(x))
    info = {
        "size": int(size),
        "channels": [int(c) for c in channels],
        "landmarks": ["roi"],
        "task": task,
        "bilateral": bool(bilateral),
        "n_train": len(x),
        "epochs": int(epochs),
    }
    state = {"state_dict": net.state_dict(), **info}
    atomic_write_stream(path, lambda f: torch.save(state, f))  # a reader never sees a half-written file
    summary = {"path": str(path), "final_loss": float(loss.detach()), **info}
    atomic_write_json(os.fspath(path) + ".json", summary)
    return summary


def localiser_errors(
    localiser: str | os.PathLike | LandmarkNet, records: Sequence[dict], size: int | None = None
) -> dict[str, Any]:
    """Distance (mm) between predicted and true landmarks on held-out records.

    Returns:
        ``{"n", "mean_mm", "median_mm", "p90_mm", "max_mm", "errors_mm"}``.
    """
    locate = LocateRoi(localiser, size=size)
    errors = []
    for r in records:
        img = _load(r["image"])
        rc = locate(img)
        sr, sc = image_spacing_mm(img, fallback_mm=1.0)
        errors.append(math.hypot((rc[0] - float(r["roi_row"])) * sr, (rc[1] - float(r["roi_col"])) * sc))
    e = np.asarray(errors, dtype=float)
    if not e.size:
        return {"n": 0, "mean_mm": float("nan"), "median_mm": float("nan"), "p90_mm": float("nan"),
                "max_mm": float("nan"), "errors_mm": []}  # fmt: skip
    return {
        "n": int(e.size),
        "mean_mm": float(e.mean()),
        "median_mm": float(np.median(e)),
        "p90_mm": float(np.percentile(e, 90)),
        "max_mm": float(e.max()),
        "errors_mm": [round(float(v), 3) for v in e],
    }


def ensure_localiser(
    path: str | os.PathLike,
    train_records: Sequence[dict],
    landmarks_csv: str | os.PathLike | None = None,
    held_out: Sequence[dict] | None = None,
    **fit_kwargs: Any,
) -> str:
    """The bundles' ROI step: reuse the localiser at ``path``, or fit one on the training records' landmarks.

    Safe when several processes run it at once (the ranks of a ``torchrun`` training, two runs sharing a
    ``ckpt_dir``): the first to take the file lock ``<path>.lock`` fits and writes the file atomically, the others
    wait for the lock and then load that file instead of fitting their own.

    Args:
        path: localiser file (kept when it exists: delete it to refit).
        train_records: the training records (never the test split); landmarks come from their ``roi_row``/``roi_col``
            or from ``landmarks_csv``.
        landmarks_csv: a synthetic cohort's ``realism.csv`` (:func:`monai_bone.data.landmarks.attach_landmarks`).
        held_out: records not used for fitting (e.g. the validation fold) on which the landmark error in mm is
            measured and written to ``<path>.json`` as ``held_out``.
        fit_kwargs: passed to :func:`fit_localiser`.

    Returns:
        ``path`` as a string.

    Raises:
        FileNotFoundError: no localiser file and no landmarks to fit one (says what to provide).
    """
    path = os.fspath(path)
    if os.path.isfile(path):
        return path
    records = attach_landmarks(train_records, landmarks_csv) if landmarks_csv else list(train_records)
    labelled = [r for r in records if r.get("roi_row") is not None and r.get("roi_col") is not None]
    if not labelled:
        raise FileNotFoundError(
            f"{path}: no ROI localiser, and no training record carries a landmark (roi_row/roi_col) to fit one; "
            "pass landmarks_csv (a synthetic cohort's realism.csv), copy a trained localiser.pt there, "
            "or set roi_size_mm to null for whole-image input"
        )
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with FileLock(path + ".lock"):
        if os.path.isfile(path):  # fitted by another process while this one waited for the lock
            logger.info("ROI localiser %s was fitted by another process; using it", path)
            return path
        _fit_and_measure(path, labelled, landmarks_csv, held_out, fit_kwargs)
    return path


def _fit_and_measure(
    path: str, labelled: list[dict], landmarks_csv: Any, held_out: Sequence[dict] | None, fit_kwargs: dict
) -> None:
    """Fit the localiser, then add its landmark error on ``held_out`` to ``<path>.json``."""
    logger.info("fitting the ROI localiser %s on %d landmark-labelled training studies", path, len(labelled))
    summary = fit_localiser(labelled, path, **fit_kwargs)
    if held_out:
        held = attach_landmarks(held_out, landmarks_csv) if landmarks_csv else list(held_out)
        held = [r for r in held if r.get("roi_row") is not None and r.get("roi_col") is not None]
        if held:
            err = localiser_errors(path, held)
            summary["held_out"] = {k: v for k, v in err.items() if k != "errors_mm"}
            logger.info("ROI localiser: mean landmark error %.2f mm on %d held-out studies", err["mean_mm"], err["n"])
            atomic_write_json(path + ".json", summary)
