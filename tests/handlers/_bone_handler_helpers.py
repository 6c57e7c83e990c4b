"""Tiny in-memory cohorts, networks and evaluators shared by the handler tests (not a test module)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from monai.data import DataLoader, Dataset, MetaTensor
from monai.engines import SupervisedEvaluator

SIZE = 4  # images are (1, 4, 4)

# hip: true BMD spanning both screening thresholds (0.899 and T -2.5 = 0.719), predictions = truth + error
HIP_TRUE = np.array([0.65, 0.70, 0.719, 0.80, 0.899, 0.95, 1.10])
HIP_PRED = HIP_TRUE + np.array([0.03, -0.02, 0.01, 0.05, -0.04, 0.02, -0.03])
KNEE_BINARY_LABELS = [0, 1, 0, 1, 1, 0, 1]
KNEE_THREE_LABELS = [0, 1, 2, 0, 1, 2, 2]


def pixel_net() -> torch.nn.Module:
    """Flatten + Linear reading the first pixel exactly (weights 1, 0, ..., 0): constant images encode the output."""
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(SIZE * SIZE, 1))
    with torch.no_grad():
        net[1].weight.zero_()
        net[1].weight[0, 0] = 1.0
        net[1].bias.zero_()
    return net


def linear_net(out_channels: int, seed: int = 0) -> torch.nn.Module:
    """Flatten + Linear with seeded random weights (a real, untrained classifier)."""
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(SIZE * SIZE, out_channels))


def image(value: float | torch.Tensor, i: int) -> MetaTensor:
    data = torch.full((1, SIZE, SIZE), float(value)) if not isinstance(value, torch.Tensor) else value
    return MetaTensor(data.float(), meta={"filename_or_obj": f"/data/study_{i:02d}.dcm"})


def hip_records(values: Sequence[float] = HIP_PRED, truth: Sequence[float] | None = HIP_TRUE, errors=None) -> list:
    """One record per study: the image encodes the wanted prediction; ``label`` is the true BMD."""
    records = []
    for i, v in enumerate(values):
        r = {"image": image(v, i), "patient_id": f"SYN-H-{i + 1:04d}"}
        if truth is not None:
            # (1,) like the prediction, as MONAI's MSE/MAE handlers need
            r["label"] = torch.tensor([float(truth[i])], dtype=torch.float64)
        if errors is not None:
            r["error"] = errors[i]
        records.append(r)
    return records


def knee_records(labels: Sequence[int], seed: int = 1) -> list:
    gen = torch.Generator().manual_seed(seed)
    return [
        {"image": image(torch.randn(1, SIZE, SIZE, generator=gen), i), "label": int(y), "patient_id": f"SYN-K-{i:04d}"}
        for i, y in enumerate(labels)
    ]


def direct_outputs(net: torch.nn.Module, records: list) -> np.ndarray:
    """The network outputs for all records in one forward pass, as float64 numpy (N, C)."""
    with torch.no_grad():
        x = torch.stack([torch.as_tensor(r["image"]) for r in records])
        return net(x).double().numpy()


def evaluator(net, records, handlers=(), key_metric=None, metrics=None, batch_size=3, postprocessing=None):
    loader = DataLoader(Dataset(records), batch_size=batch_size, num_workers=0, shuffle=False)
    return SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=loader,
        network=net,
        key_val_metric=key_metric,
        additional_metrics=metrics,
        val_handlers=list(handlers),
        postprocessing=postprocessing,
    )


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Rows of a CSV written by monai-bone; returns (comment lines, rows)."""
    lines = Path(path).read_text().splitlines()
    comments = [ln for ln in lines if ln.startswith("#")]
    body = [ln for ln in lines if not ln.startswith("#")]
    return comments, list(csv.DictReader(body))


def assert_png(path: Path, min_size: int = 200) -> None:
    from PIL import Image

    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.size[0] >= min_size and im.size[1] >= min_size, im.size
