"""One-study predictions with a bundle's own ``inference.json``: what the MONAI Label app runs per request.

:class:`BundlePredictor` parses the bundle's ``configs/inference.json`` with MONAI's ``ConfigParser`` once and takes
from it the very objects the bundle's inference evaluator uses -- ``preprocessing``, ``network`` (with the weights of
``models/model.pt``), ``prepare_batch``, ``inferer``, ``postprocessing`` and the settings of its
:class:`~monai_bone.handlers.BonePredictionWriter` (reference mean/SD, screening threshold, knee class names and
decision threshold) -- so a served prediction is the bundle's prediction, with no second copy of the pipeline. Per
request it runs the iteration ``SupervisedEvaluator`` runs (collate, prepare_batch, inferer under the bundle's AMP
setting, postprocessing) on one study and formats the result with the writer's own row logic.

A bundle may be a folder or an archive written by ``monai-bone export`` (verified against its sha256 manifest and
unpacked into ``work_dir``). ID overrides (``{"spatial_size": 128}``) are applied as ``monai.bundle run`` would apply
them, e.g. to serve a bundle trained at a smaller size than its config's default.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Mapping
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch

from monai_bone.bundle import import_bundle
from monai_bone.constants import CLINICAL_FIELDS, SYNTHETIC_NOTE
from monai_bone.tasks import get_task

from .request import PredictionError, error_reason, study_input

__all__ = ["WRITER_SETTINGS", "BundlePredictor", "resolve_bundle"]

logger = logging.getLogger(__name__)

#: Arguments of the bundle's ``BonePredictionWriter`` that shape a prediction (the rest are about files).
WRITER_SETTINGS: tuple[str, ...] = (
    "task",
    "ref_mean",
    "ref_sd",
    "labels",
    "screening_threshold",
    "logits",
    "threshold",
    "fields",
    "pred_key",
    "attention_key",
)


def resolve_bundle(bundle: str | os.PathLike, work_dir: str | os.PathLike | None = None) -> Path:
    """A bundle folder: ``bundle`` itself, or an exported archive verified and unpacked under ``work_dir``.

    Args:
        bundle: bundle folder, or ``.zip`` written by ``monai-bone export``.
        work_dir: where an archive is unpacked (``<work_dir>/<archive stem>``; default a new temporary folder).

    Returns:
        The bundle folder.

    Raises:
        FileNotFoundError: when ``bundle`` or its ``configs/inference.json`` / ``models/model.pt`` is missing.
        monai_bone.bundle.BundleIntegrityError: when an archive fails its checksums.
    """
    path = Path(bundle).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"bundle not found: {path}")
    if path.is_file():
        base = Path(work_dir) if work_dir is not None else Path(tempfile.mkdtemp(prefix="monai_bone_bundle_"))
        path = import_bundle(path, base / path.name.removesuffix(".zip"), overwrite=True)
    for rel in ("configs/inference.json", "models/model.pt"):
        if not (path / rel).is_file():
            hint = " (train the bundle first, e.g. `monai-bone demo` writes trained copies)" if "model" in rel else ""
            raise FileNotFoundError(f"{path}: {rel} not found{hint}")
    return path.resolve()


def _writer_index(handlers: Any) -> int:
    for i, h in enumerate(handlers or []):
        if isinstance(h, Mapping) and str(h.get("_target_", "")).endswith("BonePredictionWriter"):
            return i
    raise ValueError("inference.json has no BonePredictionWriter handler; cannot tell the task and its settings")


def _checkpoint_path(parser: Any) -> str:
    for i, h in enumerate(parser["handlers"]):
        if isinstance(h, Mapping) and str(h.get("_target_", "")).endswith("CheckpointLoader"):
            return str(parser.get_parsed_content(f"handlers#{i}#load_path"))
    return str(parser.get_parsed_content("ckpt_path"))


class BundlePredictor:
    """Predict one study at a time with a bundle's inference configuration.

    Args:
        bundle: bundle folder or exported ``.zip`` (see :func:`resolve_bundle`).
        device: torch device (default: the bundle's choice, CUDA when available).
        overrides: config ID -> value, applied on top of ``inference.json``.
        work_dir: where an archive is unpacked and where the writer would put files (it writes none here).
        name: model name reported in results (default: the bundle folder name).

    Raises:
        FileNotFoundError: for a missing bundle, config or weights.
        monai_bone.handlers.CheckpointFileError: when the weights do not load into the configured network.
    """

    def __init__(
        self,
        bundle: str | os.PathLike,
        device: str | torch.device | None = None,
        overrides: Mapping[str, Any] | None = None,
        work_dir: str | os.PathLike | None = None,
        name: str | None = None,
    ) -> None:
        # Imported when a predictor is built, not with the module: `import monai_bone.label` (the server launcher,
        # label.process, `monai-bone watch`'s resolve_bundle) then costs torch and bundle/ only (~3.4 s on a loaded
        # machine). Each of the three below, imported alone after this module, loads MONAI (measured 00:05 UTC on the
        # shared, loaded 2-core machine: ~9-13 s each, and the first pays for all):
        from monai.bundle import ConfigParser  # MONAI's bundle machinery (monai + its transforms): ~13 s

        from monai_bone.data.collate import collate_records  # monai.data's list_data_collate: ~8.5 s

        # the Ignite handlers (monai.handlers + ignite): ~9.6 s
        from monai_bone.handlers import BonePredictionWriter, CheckpointFileError, load_checkpoint

        self.bundle_dir = resolve_bundle(bundle, work_dir)
        self.name = name or self.bundle_dir.name
        parser = ConfigParser()
        parser.read_config(str(self.bundle_dir / "configs" / "inference.json"))
        parser.read_meta(str(self.bundle_dir / "configs" / "metadata.json"))
        parser["bundle_root"] = str(self.bundle_dir)
        if device is not None:
            parser["device"] = f"$torch.device({str(device)!r})"
        for key, value in (overrides or {}).items():
            parser[key] = value
        parser.get_parsed_content("imports")
        self.parser = parser
        self.device = torch.device(parser.get_parsed_content("device"))
        w = _writer_index(parser["handlers"])
        raw = parser[f"handlers#{w}"]
        settings = {k: parser.get_parsed_content(f"handlers#{w}#{k}") for k in WRITER_SETTINGS if k in raw}
        work = Path(work_dir) if work_dir is not None else Path(tempfile.gettempdir())
        self.writer = BonePredictionWriter(output_dir=work, **settings)
        self.task = self.writer.task
        self.spec = get_task(self.task)
        self.fields = list(self.writer.fields) if self.spec.uses_clinical else []
        self.labels = list(self.spec.class_names) if self.spec.is_regression else list(self.writer.labels or [])
        self.preprocessing = parser.get_parsed_content("preprocessing")
        self.fast_path = parser.get_parsed_content("fast_path")
        self.network = parser.get_parsed_content("network")
        ckpt = _checkpoint_path(parser)
        state = load_checkpoint(ckpt, map_location=self.device)
        if isinstance(state, Mapping) and "model" in state and isinstance(state["model"], Mapping):
            state = state["model"]
        try:
            self.network.load_state_dict(state)
        except (RuntimeError, KeyError, TypeError) as err:
            msg = " ".join(str(err).split())[:500]
            raise CheckpointFileError(f"{ckpt}: does not fit the bundle's network ({msg})") from None
        self.network.eval()
        self.prepare_batch = parser.get_parsed_content("prepare_batch")
        self.inferer = parser.get_parsed_content("inferer")
        self.postprocessing = parser.get_parsed_content("postprocessing")
        self._collate = collate_records
        net = getattr(self.network, "_orig_mod", self.network)
        cross_attention = hasattr(net, "attention_maps") and getattr(net, "cross_attention", None) is not None
        self.attention = self.spec.uses_clinical and cross_attention
        self._lock = threading.Lock()
        logger.info("%s: %s model from %s on %s", self.name, self.task, self.bundle_dir, self.device)

    def info(self) -> dict[str, Any]:
        """What the model predicts and expects (for MONAI Label's ``/info/``)."""
        out: dict[str, Any] = {"bundle": str(self.bundle_dir), "task": self.task, "labels": self.labels}
        if self.spec.is_regression:
            out.update(
                {
                    "outputs": ["bmd (g/cm^2)", "t_score", "who_class", "screening_positive", "field_attention"],
                    "clinical_fields": self.fields,
                    "reference": {"mean": round(self.writer.ref_mean, 6), "sd": round(self.writer.ref_sd, 6)},
                    "screening_threshold": self.writer.screening_threshold,
                }
            )
        else:
            out.update({"outputs": ["prediction", "class_name", "probability"], "threshold": self.writer.threshold})
        return out

    def _forward(self, item: Mapping) -> dict[str, Any]:
        batch = self._collate([item])
        prepared = self.prepare_batch(batch, self.device, self.fast_path.non_blocking)
        inputs, args, kwargs = (prepared[0], (), {}) if len(prepared) == 2 else (prepared[0], prepared[2], prepared[3])
        amp = torch.autocast(self.device.type, **self.fast_path.amp_kwargs) if self.fast_path.amp else nullcontext()
        with torch.no_grad():
            with amp:
                pred = self.inferer(inputs, self.network, *args, **kwargs)
            out: dict[str, Any] = self.postprocessing({"pred": pred[0]})
            if self.attention:
                net = getattr(self.network, "_orig_mod", self.network)
                maps = net.attention_maps(inputs, *args, **kwargs)
                out["field_weights"] = maps["field_weights"][0].detach().float().cpu()
        return out

    def predict(self, image: str | os.PathLike, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Predict one study.

        Args:
            image: DICOM file, PNG/JPEG file, or folder of one retrieved DICOM series.
            params: request parameters; hip clinical values may be given as described in
                :func:`monai_bone.label.request.clinical_from_request` (they fill or replace header values).

        Returns:
            Knee: ``{"prediction": [{"label", "score"}, ...] (most likely first), "class_name", "class_index",
            "probability", "probabilities"}``. Hip: ``{"prediction": [{"label": <WHO class>, "bmd", "t_score"}],
            "bmd", "bmd_unit", "t_score", "who_class", "screening_positive", "screening_threshold", "reference",
            "field_attention", "clinical", "clinical_source", "missing_fields"}``. Both add ``model``, ``task``,
            ``warnings`` and ``synthetic`` (with ``note`` when the study is synthetic).

        Raises:
            PredictionError: with a 4xx status for an unusable request (see
                :func:`monai_bone.label.request.study_input`; 422 when the image cannot be decoded).
        """
        study = study_input(image, params)
        with self._lock:
            item = self.preprocessing(dict(study.record))
            if item.get("error"):
                name = Path(study.record["image"]).name
                raise PredictionError(f"{name}: {item['error']}", 422, error_reason(item["error"]))
            out = self._forward(item)
            row = self.writer.make_row(item, out)
        result: dict[str, Any] = {"model": self.name, "task": self.task}
        if self.spec.is_regression:
            result["prediction"] = [{"label": row["who_class"], "bmd": row["bmd"], "t_score": row["t_score"]}]
            result.update(
                {
                    "bmd": row["bmd"],
                    "bmd_unit": "g/cm^2",
                    "t_score": row["t_score"],
                    "who_class": row["who_class"],
                    "screening_positive": row["screening_positive"],
                    "screening_threshold": self.writer.screening_threshold,
                    "reference": {"mean": round(self.writer.ref_mean, 6), "sd": round(self.writer.ref_sd, 6)},
                    "field_attention": {k[len("attn_") :]: v for k, v in row.items() if k.startswith("attn_")},
                    "clinical": {f: study.record.get(f) for f in CLINICAL_FIELDS},
                    "clinical_source": study.sources,
                    "missing_fields": study.missing,
                }
            )
        else:
            probs = {k[len("prob_") :]: v for k, v in row.items() if k.startswith("prob_")}
            ranked = sorted(probs.items(), key=lambda kv: -kv[1])
            result["prediction"] = [{"label": k, "score": v} for k, v in ranked]
            result.update(
                {
                    "class_name": row["class_name"],
                    "class_index": row["class_index"],
                    "probability": row["probability"],
                    "probabilities": probs,
                }
            )
        result["warnings"] = study.warnings
        result["synthetic"] = study.synthetic
        if study.synthetic:
            result["note"] = SYNTHETIC_NOTE
        return result
