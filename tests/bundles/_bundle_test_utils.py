"""Shared helpers of the bundle tests: paths, tiny synthetic cohorts, and running ``monai.bundle`` as a subprocess."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from monai_bone.constants import SYNTHETIC_NOTE

REPO = Path(__file__).resolve().parents[2]
BUNDLES = REPO / "bundles"
#: the MONAI bundle metadata schema, kept beside the project (``<repo>/../shared/schemas``), not inside it
SCHEMA = REPO.parent / "shared" / "schemas" / "meta_schema_20240725.json"
#: tiny-run overrides every bundle test uses (CPU, 2 cores shared): small images, small batches, no workers; and
#: random initialisation, passed explicitly: the bundles default to ImageNet weights, which CI cannot download
#: ("null" as text: `python -m monai.bundle run` drops overrides whose value is None)
TINY = {"spatial_size": 64, "batch_size": 4, "val_batch_size": 4, "num_workers": 0, "pretrained": "null"}


def schema_path() -> Path:
    if not SCHEMA.is_file():
        pytest.skip(f"bundle metadata schema not found at {SCHEMA} (expected beside the project in ../shared)")
    return SCHEMA


def make_cohort(
    root: Path,
    task: str,
    n: int,
    folds: int,
    seed: int,
    fmt: str = "dicom",
    n_classes: int = 2,
    test_fraction: float = 0.0,
) -> Path:
    """Synthesize a tiny cohort and index it with its ground truth; returns the datalist path.

    ``test_fraction`` defaults to 0 here (no locked test split) so the bundle tests score the validation fold; the
    test-split path is covered by ``tests/data/test_test_split.py``.
    """
    from monai_bone.data.datalist import build_datalist
    from monai_bone.synthetic.synth import synthesize

    out = root / f"{task}_{fmt}_{n_classes}"
    synthesize(task, n, out, seed=seed, size=64, fmt=fmt, n_classes=n_classes, progress=False)
    source = out / ("dicom" if fmt == "dicom" else "")
    clinical = [out / "clinical.csv", out / "ground_truth.csv"]
    datalist = out / "datalist.json"
    build_datalist(
        source,
        datalist,
        clinical=clinical,
        task=task,
        folds=folds,
        seed=seed,
        progress=False,
        test_fraction=test_fraction,
    )
    return datalist


def _env() -> dict:
    env = dict(os.environ)
    # one BLAS thread per process: the suite shares two cores, and oversubscription is 10x slower here
    env.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1"})
    return env


def _override_args(overrides: Mapping) -> list[str]:
    args: list[str] = []
    for k, v in overrides.items():
        args += [f"--{k}", str(v)]
    return args


def run_bundle(
    bundle: str,
    config_files: Sequence[str],
    overrides: Mapping,
    timeout: int = 300,
    nproc: int | None = None,
    extra: Sequence[str] = (),
) -> str:
    """Run ``python -m monai.bundle run`` (or under ``torchrun`` when ``nproc``) in the bundle folder.

    Returns:
        The combined stdout/stderr; a non-zero exit fails the test with the tail of that log.
    """
    configs = "[" + ",".join(f"'configs/{c}'" for c in config_files) + "]"
    if nproc:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
        launcher += ["-m", "monai.bundle"]
    else:
        launcher = [sys.executable, "-m", "monai.bundle"]
    cmd = [*launcher, "run", "--config_file", configs, *_override_args(overrides), *extra]
    proc = subprocess.run(
        cmd, cwd=BUNDLES / bundle, env=_env(), capture_output=True, text=True, timeout=timeout, check=False
    )
    log = proc.stdout + proc.stderr
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited with {proc.returncode}:\n{log[-6000:]}")
    return log


def read_synthetic_csv(path: Path) -> list[dict]:
    """Rows of a CSV the bundles write for synthetic data, asserting its first line is the synthetic note."""
    lines = path.read_text().splitlines()
    assert lines[0] == f"# {SYNTHETIC_NOTE}"
    return list(csv.DictReader(io.StringIO("\n".join(lines[1:]))))
