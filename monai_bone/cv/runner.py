"""Cross-validation over a datalist's folds: baselines and bundle-trained networks in one ablation table.

Hip rows (BMD regression, screening at 0.899 g/cm^2):

- ``ost``: OST index ``0.2 × (weight − age)`` mapped to BMD by a line fitted on the training folds;
- ``clinical_ridge`` / ``clinical_gbm``: scikit-learn models on the clinical fields only (:mod:`.baselines`);
- ``image_stats``: the trivial image baseline -- ridge on block means/SDs and percentiles of the image plus the
  clinical fields (:mod:`.image_stats`); a network row that does not beat it is flagged;
- ``image``, ``clinical``, ``concat``, ``xattn``: ``XAttnBMD(fusion=...)`` trained by the hip bundle's
  ``train.json`` (``ConfigWorkflow`` with overrides), with the bundle's loss (Weighted Smooth L1);
- the two best of those (lowest pooled out-of-fold MSE) again with plain Smooth L1 (same ``beta``): the loss ablation.

Knee rows (the paper's Table I set): ``hybrid`` (the bundle's ``HybridAttentionNet``) and ``densenet169`` (MONAI's
``DenseNet169`` in the same bundle workflow: the paper's strongest baseline), and ``image_stats`` (logistic
regression on the same trivial image statistics).

Only the training split is read: records of the locked test split (``"split": "test"``) never enter a fit. Besides
``ablation.*`` the run writes ``comparisons.csv``/``.md`` (:mod:`.comparisons`): paired patient-level bootstrap
differences in MSE/MAE/R² and DeLong's ΔAUC between rows.

CV fold ``j`` of ``K`` validates on the datalist folds ``f`` with ``f % K == j`` (the datalist's folds are
patient-disjoint and BMD/label-stratified by ``monai-bone index``, so merged folds are too). Every fit's out-of-fold
predictions are kept in ``<out>/runs/<row>/fold<j>/oof.json`` with the settings that made them; rerunning the same
command reuses finished fits (a killed run resumes), and any changed setting retrains.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from monai_bone.bundle import default_bundle_dir, quiet_engines, train_and_predict
from monai_bone.constants import SYNTHETIC_NOTE
from monai_bone.data.splits import training_split
from monai_bone.tasks import get_task
from monai_bone.utils.io import atomic_write_json

from .baselines import ClinicalBaseline, OSTBaseline
from .comparisons import TRIVIAL, trivial_flags, write_comparisons
from .image_stats import ImageStatsBaseline
from .repeats import repeat_datalist, write_repeat_summary
from .screening_table import clinical_screening_rows, write_operating_points
from .subgroups import write_subgroups
from .table import write_ablation_table
from .variant_summary import FoldPrediction, VariantResult, summarise_variant

__all__ = [
    "HIP_BASELINES",
    "HIP_FUSIONS",
    "KNEE_BASELINES",
    "KNEE_VARIANTS",
    "CV_ROWS",
    "CVResult",
    "cv_splits",
    "find_cohort_info",
    "resolve_datalist",
    "run_cv",
]

logger = logging.getLogger(__name__)

HIP_BASELINES: tuple[str, ...] = ("ost", "clinical_ridge", "clinical_gbm", "image_stats")
HIP_FUSIONS: tuple[str, ...] = ("image", "clinical", "concat", "xattn")
KNEE_BASELINES: tuple[str, ...] = ("image_stats",)
KNEE_VARIANTS: tuple[str, ...] = ("hybrid", "densenet169")
#: CV rows per task: (baselines, networks). A task of the registry without an entry here has no CV ablation yet.
CV_ROWS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "hip": (HIP_BASELINES, HIP_FUSIONS),
    "knee": (KNEE_BASELINES, KNEE_VARIANTS),
}

_LABELS = {
    "ost": "OST index (linear fit)",
    "clinical_ridge": "Clinical-only ridge (sklearn)",
    "clinical_gbm": "Clinical-only gradient boosting (sklearn)",
    "image_stats": "Trivial image statistics + clinical, ridge (sklearn)",
    "image": "Image only (ResNet34)",
    "clinical": "Clinical-only net (MLP tokens)",
    "concat": "Concatenation fusion",
    "xattn": "Cross-attention (XAttn-BMD)",
    "hybrid": "HybridAttentionNet (DenseNet169 + AM)",
    "densenet169": "DenseNet169 (paper's strongest baseline)",
}
_DEFAULT_HIP_LOSS = "WeightedSmoothL1"
_ALT_HIP_LOSS = "SmoothL1"


@dataclass
class CVResult:
    """What :func:`run_cv` produced.

    Args:
        task: ``"hip"`` or ``"knee"``.
        out_dir: output folder.
        paths: written files by name (``csv``, ``markdown``, ``png``, ``folds``, ``predictions``, ``json``).
        rows: the ablation-table rows (dicts, as in ``ablation.csv``).
        synthetic: whether the data were synthetic.
        oracle_r2: the synthetic oracle R² (hip), when known.
    """

    task: str
    out_dir: Path
    paths: dict[str, Path]
    rows: list[dict[str, Any]]
    synthetic: bool
    oracle_r2: float | None = None
    notes: list[str] = field(default_factory=list)


def resolve_datalist(data: str | os.PathLike) -> Path:
    """The datalist JSON given as a file or as a folder holding ``datalist.json``.

    Raises:
        FileNotFoundError: when neither exists.
    """
    path = Path(data)
    if path.is_dir():
        path = path / "datalist.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: datalist not found (give a datalist JSON or a folder holding datalist.json; "
            "make one with `monai-bone index`)"
        )
    return path


def cv_splits(folds: Sequence[int], k: int | None = None) -> list[list[int]]:
    """Group the datalist's fold numbers into ``k`` CV folds (``f % k``).

    Args:
        folds: the fold number of every record.
        k: number of CV folds; None uses the datalist's folds as they are.

    Returns:
        For each CV fold, the datalist fold numbers it validates on.

    Raises:
        ValueError: when ``k < 2``, or ``k`` exceeds the number of distinct datalist folds.
    """
    present = sorted({int(f) for f in folds})
    k = len(present) if k is None else int(k)
    if k < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, got {k} (re-index with `--folds K`, K >= 2)")
    if k > len(present):
        raise ValueError(f"--folds {k} asked for, but the datalist has only {len(present)} folds {present}")
    splits = [[f for f in present if f % k == j] for j in range(k)]
    if any(not s for s in splits):
        raise ValueError(f"datalist folds {present} cannot be grouped into {k} non-empty CV folds")
    return splits


def find_cohort_info(datalist: Path, info: Mapping[str, Any]) -> dict[str, Any] | None:
    """The synthetic generator's ``cohort.json`` next to a synthetic datalist (or its source folder), if any."""
    if not info.get("synthetic"):
        return None
    base = datalist.parent
    candidates = [base / "cohort.json", base.parent / "cohort.json"]
    src = info.get("source")
    if isinstance(src, str) and src:
        s = Path(src) if Path(src).is_absolute() else base / src
        candidates += [s / "cohort.json", s.parent / "cohort.json"]
    for c in candidates:
        if c.is_file():
            try:
                cohort = json.loads(c.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if cohort.get("synthetic") and cohort.get("task") in (None, info.get("task")):
                return cohort
    return None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _finite(record: Mapping[str, Any], key: str) -> bool:
    v = record.get(key)
    try:
        return v is not None and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


class _FoldCache:
    """Out-of-fold predictions on disk, valid only for identical settings."""

    def __init__(self, root: Path, settings: Mapping[str, Any]) -> None:
        self.root = root
        self.settings = json.loads(json.dumps(settings, default=str))

    def path(self, row: str, fold: int) -> Path:
        return self.root / row / f"fold{fold}"

    def load(self, row: str, fold: int, extra: Mapping[str, Any]) -> FoldPrediction | None:
        f = self.path(row, fold) / "oof.json"
        if not f.is_file():
            return None
        try:
            data = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if data.get("settings") != {**self.settings, **json.loads(json.dumps(extra, default=str))}:
            return None
        pred, true = np.asarray(data["pred"], dtype=float), np.asarray(data["true"], dtype=float)
        return FoldPrediction(fold, pred, true, list(data["ids"]))

    def save(self, row: str, pred: FoldPrediction, extra: Mapping[str, Any]) -> None:
        atomic_write_json(
            self.path(row, pred.fold) / "oof.json",
            {
                "settings": {**self.settings, **json.loads(json.dumps(extra, default=str))},
                "fold": pred.fold,
                "ids": list(pred.ids),
                "pred": [float(v) for v in np.reshape(pred.pred, -1)],
                "true": [float(v) for v in np.reshape(pred.true, -1)],
            },
        )

    def clear(self, row: str, fold: int) -> Path:
        d = self.path(row, fold)
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        return d


def _knee_probability(pred: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Knee network logits → (probability of osteoporosis, 1 for osteoporosis else 0).

    One output: sigmoid of the logit. ``C`` outputs: softmax, probability of the last class ("osteoporosis" in
    both label sets); the reference becomes "osteoporosis vs rest" (the Table I screening decision).
    """
    if pred.ndim == 1:
        return 1.0 / (1.0 + np.exp(-pred)), true
    z = pred - pred.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    return p[:, -1], (true == pred.shape[1] - 1).astype(float)


def run_cv(
    task: str,
    data: str | os.PathLike,
    out_dir: str | os.PathLike,
    folds: int | None = None,
    epochs: int | None = None,
    size: int | None = None,
    batch_size: int | None = None,
    num_workers: int | None = None,
    device: str | None = None,
    bundle_dir: str | os.PathLike | None = None,
    variants: Sequence[str] | None = None,
    loss_ablation: bool = True,
    n_boot: int = 1000,
    seed: int = 0,
    overrides: Mapping[str, Any] | None = None,
    progress: bool = True,
    quiet: bool = True,
    repeats: int = 1,
) -> CVResult:
    """Run the ablation cross-validation of ``task`` on a datalist and write the table.

    Args:
        task: ``"hip"`` or ``"knee"``.
        data: datalist JSON (from ``monai-bone index``), or a folder holding ``datalist.json``.
        out_dir: output folder (table files at the top, per-fit folders under ``runs/``).
        folds: number of CV folds (default: the datalist's folds).
        epochs: training epochs per fit (default: the bundle's).
        size: image side in pixels (the bundle's ``spatial_size``; default: the bundle's).
        batch_size: training batch size (default: the bundle's).
        num_workers: data loader workers (default: the bundle's).
        device: torch device string (default: the bundle's choice, CUDA when available).
        bundle_dir: bundle folder (default: this source tree's bundle of ``task``).
        variants: rows to run (default: all of the task); hip names ``ost``, ``clinical_ridge``, ``clinical_gbm``,
            ``image``, ``clinical``, ``concat``, ``xattn``; knee ``hybrid``, ``densenet169``.
        loss_ablation: hip: rerun the two best networks with plain Smooth L1.
        n_boot: bootstrap resamples for the pooled CIs.
        seed: training and bootstrap seed.
        overrides: further bundle config overrides (ID → value).
        progress: tqdm bar over folds × rows.
        quiet: mute per-iteration engine logs while the bar runs.
        repeats: run the CV ``repeats`` times with fold seeds ``seed, seed + 1, ...`` (repeat 0 uses the datalist's
            folds; the others re-fold the training split into ``<out>/repeat<r>/``) and write ``repeats.csv``/``.md``
            with each row's spread over repeats (:mod:`.repeats`).

    Returns:
        The :class:`CVResult`.

    Raises:
        ValueError: bad task, variants, folds, or a datalist without targets for the task.
        FileNotFoundError: missing datalist or bundle.
    """
    from tqdm import tqdm

    from monai_bone.data.folds import datalist_info, load_records

    again = {
        "folds": folds,
        "epochs": epochs,
        "size": size,
        "batch_size": batch_size,
        "num_workers": num_workers,
        "device": device,
        "bundle_dir": bundle_dir,
        "variants": variants,
        "loss_ablation": loss_ablation,
        "n_boot": n_boot,
        "seed": seed,
        "overrides": overrides,
        "progress": progress,
        "quiet": quiet,
    }
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    spec = get_task(task)
    if spec.name not in CV_ROWS:
        raise ValueError(f"task must be one of {sorted(CV_ROWS)} (tasks with CV rows), got {task!r}")
    baseline_rows, network_rows = CV_ROWS[spec.name]
    allowed = (*baseline_rows, *network_rows)
    chosen = list(variants) if variants else list(allowed)
    unknown = [v for v in chosen if v not in allowed]
    if unknown:
        raise ValueError(f"unknown {task} variant(s) {unknown}; choose from {list(allowed)}")
    datalist = resolve_datalist(data).resolve()
    info = datalist_info(datalist)
    if info.get("task") not in (None, task):
        raise ValueError(f"{datalist}: datalist is for task {info.get('task')!r}, not {task!r}")
    target = spec.label_key
    # the locked test split (monai_bone.data.splits) never enters a CV fit
    records = [r for r in training_split(load_records(datalist)) if _finite(r, target)]
    if not records:
        raise ValueError(f"{datalist}: no record has a '{target}' value; index with the ground truth CSV")
    if any(not _finite(r, "fold") for r in records):
        raise ValueError(f"{datalist}: records without 'fold'; re-index with `monai-bone index --folds K`")
    splits = cv_splits([int(r["fold"]) for r in records], folds)
    k = len(splits)
    bundle = Path(bundle_dir) if bundle_dir is not None else default_bundle_dir(task)
    synthetic = bool(info.get("synthetic"))
    cohort = find_cohort_info(datalist, info)
    oracle_r2 = float(cohort["oracle_r2"]) if cohort and cohort.get("oracle_r2") is not None else None

    ov: dict[str, Any] = {"seed": seed}
    settings = {"epochs": epochs, "spatial_size": size, "batch_size": batch_size, "num_workers": num_workers}
    for key, value in settings.items():
        if value is not None:
            ov[key] = int(value)
    if device is not None:
        ov["device"] = f"$torch.device({str(device)!r})"
    ov.update(overrides or {})

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cache = _FoldCache(
        out / "runs",
        {
            "task": task,
            "datalist_sha256": _sha256(datalist),
            "train_json_sha256": _sha256(bundle / "configs" / "train.json"),
            "overrides": ov,
        },
    )

    net_rows = [v for v in chosen if v in network_rows]
    n_alt = min(2, len(net_rows)) if spec.is_regression and loss_ablation else 0
    total = k * (len(chosen) + n_alt)
    bar = tqdm(total=total, desc=f"CV {task}{' (SYNTHETIC)' if synthetic else ''}", unit="fit", disable=not progress)

    def split(j: int) -> tuple[list[dict], list[dict]]:
        val = set(splits[j])
        return [r for r in records if int(r["fold"]) not in val], [r for r in records if int(r["fold"]) in val]

    n_classes = len(info.get("labels") or (0, 1))

    def reference(recs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        if spec.is_regression:
            return np.array([float(r[target]) for r in recs])
        return np.array([float(int(r[target]) == n_classes - 1) for r in recs])  # osteoporosis vs rest

    def baseline(name: str) -> VariantResult:
        label = _LABELS[name] if spec.is_regression else "Trivial image statistics, logistic (sklearn)"
        res = VariantResult(name, label, "baseline", "-")
        for j in range(k):
            bar.set_postfix_str(f"{name} fold {j + 1}/{k}")
            train, val = split(j)
            if name == TRIVIAL:
                model = ImageStatsBaseline(task, seed=seed)
            else:
                model = OSTBaseline() if name == "ost" else ClinicalBaseline(name.split("_", 1)[1], seed=seed)
            pred = model.fit(train, reference(train)).predict(val)
            res.folds.append(FoldPrediction(j, pred, reference(val), [str(r.get("patient_id", "")) for r in val]))
            bar.update(1)
        return res

    def network(row: str, label: str, loss: str, extra: Mapping[str, Any], convert: Callable | None) -> VariantResult:
        res = VariantResult(row, label, "network", loss)
        for j in range(k):
            bar.set_postfix_str(f"{row} fold {j + 1}/{k}")
            key = {"row": row, "val_folds": splits[j], "extra": extra}
            cached = cache.load(row, j, key)
            if cached is None:
                run_dir = cache.clear(row, j)
                with quiet_engines(quiet):
                    pred, true, ids = train_and_predict(bundle, datalist, splits[j], run_dir, {**ov, **extra})
                if convert is not None:
                    pred, true = convert(pred, true)
                cached = FoldPrediction(j, pred, true, ids)
                cache.save(row, cached, key)
            else:
                logger.info("%s fold %d: reusing finished fit in %s", row, j, cache.path(row, j))
            res.folds.append(cached)
            bar.update(1)
        return res

    results: list[VariantResult] = []
    notes: list[str] = []
    try:
        if spec.is_regression:
            results += [baseline(v) for v in chosen if v in baseline_rows]
            nets = [network(v, _LABELS[v], _DEFAULT_HIP_LOSS, {"fusion": v}, None) for v in net_rows]
            results += nets
            if n_alt:
                ranked = sorted(nets, key=lambda r: summarise_variant(task, r, n_boot=1)[0]["mse_pooled"])
                beta = _hip_loss_beta(bundle, ov)
                for best in ranked[:n_alt]:
                    alt = {"fusion": best.name, "loss": {"_target_": "torch.nn.SmoothL1Loss", "beta": beta}}
                    results.append(
                        network(f"{best.name}_smoothl1", f"{_LABELS[best.name]}, Smooth L1", _ALT_HIP_LOSS, alt, None)
                    )
                notes.append(
                    f"Loss ablation: the two networks with the lowest pooled out-of-fold MSE "
                    f"({', '.join(r.name for r in ranked[:n_alt])}) retrained with plain Smooth L1 (beta {beta:g}) "
                    f"instead of the bundle's Weighted Smooth L1."
                )
        else:
            knee_loss = "BCEWithLogits" if n_classes <= 2 else "CrossEntropy"
            results += [baseline(v) for v in chosen if v in baseline_rows]
            for v in net_rows:
                extra = {} if v == "hybrid" else {"network_def": _densenet_def(bundle)}
                results.append(network(v, _LABELS[v], knee_loss, extra, _knee_probability))
    finally:
        bar.close()

    notes += [
        f"{k}-fold CV over the datalist's patient-disjoint folds {splits}; bundle {bundle.name}; "
        f"overrides {json.dumps(ov, default=str)}.",
        "Networks: out-of-fold predictions of the final-epoch network (validation runs once, after the last epoch, so "
        "no model selection sees the held-out fold).",
    ]
    if spec.is_regression:
        notes.append(
            "OST = 0.2 × (weight kg − age years), age at the radiograph (else at DXA), mapped to BMD by a line "
            "fitted on the training folds; records without weight or age get the training mean BMD."
        )
        if cohort and cohort.get("clinical_r2") is not None:
            ceiling = float(cohort["clinical_r2"])
            notes.append(f"Synthetic clinical-only ceiling (R² of the clinical part of the formula): {ceiling:.3f}.")
    if synthetic:
        notes.append(SYNTHETIC_NOTE + ".")
    pooled_mse = {r.name: summarise_variant(task, r, n_boot=1)[0].get("mse_pooled", math.nan) for r in results}
    comparisons, comparison_paths = write_comparisons(
        task, results, out, synthetic, n_boot=n_boot, seed=seed, pooled_mse=pooled_mse if spec.is_regression else None
    )
    flags = trivial_flags(task, comparisons)
    row_info = {r.name: {"flag": flags.get(r.name, "")} for r in results}
    for r in results:
        if r.kind == "network":
            row_info[r.name]["params"] = _param_count(bundle, datalist, {**ov, **_row_overrides(r.name, bundle)})
    if TRIVIAL in {r.name for r in results}:
        notes.append(
            "Trivial image baseline: scikit-learn on 4×4 block means/SDs and percentiles of the normalised image"
            + (" plus the clinical fields" if spec.uses_clinical else "")
            + "; a network row that does not beat it (paired test, comparisons.md) is flagged."
        )
    paths = write_ablation_table(
        task,
        results,
        out,
        synthetic=synthetic,
        oracle_r2=oracle_r2 if spec.is_regression else None,
        n_boot=n_boot,
        seed=seed,
        notes=notes,
        extra={"datalist": str(datalist), "bundle": str(bundle), "folds": splits, "overrides": ov},
        row_info=row_info,
    )
    paths.update(comparison_paths)
    clinical_screening = clinical_screening_rows([split(j) for j in range(k)], seed) if spec.uses_clinical else []
    paths.update(write_operating_points(task, results, out, synthetic, clinical_screening))
    paths.update(write_subgroups(task, results, records, out, synthetic))
    rows = json.loads(paths["json"].read_text(encoding="utf-8"))["rows"]
    logger.info("CV table written to %s", paths["markdown"])
    if repeats > 1:  # the same CV with other fold seeds (monai_bone.cv.repeats)
        every = [rows]
        for r in range(1, repeats):
            copy = repeat_datalist(datalist, out / f"repeat{r}" / "datalist.json", task, seed + r)
            every.append(run_cv(task, copy, out / f"repeat{r}", **{**again, "folds": k}).rows)
        paths.update(write_repeat_summary(task, every, out, synthetic))
    return CVResult(task, out, paths, rows, synthetic, oracle_r2 if spec.is_regression else None, notes)


def _hip_loss_beta(bundle: Path, ov: Mapping[str, Any]) -> float:
    """``beta`` of the bundle's loss (as configured), so Smooth L1 differs from it only in the weights."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "train.json"))
    for key in ("screening_threshold", "loss_low_weight", "loss_weights", "loss_beta", "ref_sd", "ref_mean"):
        if key in ov:
            parser[key] = ov[key]
    parser.get_parsed_content("imports")
    loss = parser.get_parsed_content("loss", instantiate=True)
    return float(getattr(loss, "beta", 1.0))


def _densenet_def(bundle: Path) -> dict[str, Any]:
    """MONAI ``DenseNet169`` with the bundle network's input/output channels and initialisation (the bundle's
    ``pretrained`` setting, as the hybrid row), replacing ``network_def``."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "train.json"))
    net = parser.get("network_def")
    return {
        "_target_": "monai_bone.networks.DenseNet169Baseline",
        "spatial_dims": 2,
        "in_channels": net.get("in_channels", 1),
        "out_channels": net.get("out_channels", 1),
        "pretrained": net.get("pretrained"),
    }


def _row_overrides(name: str, bundle: Path) -> dict[str, Any]:
    """The network overrides of a table row (fusion of a hip row, DenseNet169 for the knee baseline row)."""
    base = name.removesuffix("_smoothl1")
    if base in HIP_FUSIONS:
        return {"fusion": base}
    return {"network_def": _densenet_def(bundle)} if base == "densenet169" else {}


_NETWORK_KEYS: tuple[str, ...] = (
    "fusion",
    "network_def",
    "spatial_size",
    "in_channels",
    "num_classes",
    "image_encoder",
    "image_encoder_config",
    "pretrained",
    "pretrained_path",
    "pretrained_registry",
)
"""Overrides that shape (or initialise) a row's network, so its parameter count is that of the trained network
(``pretrained*`` as trained: the weights are already cached by then, and ``pretrained: null`` downloads nothing)."""


def _param_count(bundle: Path, datalist: Path, ov: Mapping[str, Any]) -> int | None:
    """Trainable parameters of the bundle's ``network_def`` under ``ov`` (None when it cannot be built)."""
    from monai.bundle import ConfigParser

    try:
        parser = ConfigParser()
        parser.read_config(str(bundle / "configs" / "train.json"))
        parser["datalist"] = str(datalist)
        for key, value in ov.items():
            if key in _NETWORK_KEYS:
                parser[key] = value
        parser.get_parsed_content("imports")
        net = parser.get_parsed_content("network_def", instantiate=True)
        return int(sum(p.numel() for p in net.parameters() if p.requires_grad))
    except Exception as err:  # noqa: BLE001 - the count is informative only
        logger.warning("parameter count of %s unavailable: %s", ov.get("fusion", "network"), err)
        return None
