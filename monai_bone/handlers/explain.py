"""Optional explanation outputs of the inference bundles: per-field metadata attention (hip) and Grad-CAM PNGs.

Both are Ignite handlers attached to the inference ``SupervisedEvaluator`` before the prediction writer. They run at
``ITERATION_COMPLETED``, after MONAI has decollated ``engine.state.batch`` / ``engine.state.output`` into one
dictionary per study, and add to each study's output:

- :class:`FieldAttentionHandler`: ``field_weights`` ``(F,)`` from ``XAttnBMD.attention_maps`` (which clinical field
  the image attended to), which :class:`~monai_bone.handlers.BonePredictionWriter` writes as ``attn_<field>`` columns.
- :class:`GradCamSaver`: a Grad-CAM overlay PNG per study (``monai.visualize.GradCAM``), its path as
  ``gradcam`` and the map itself as ``gradcam_map``.
"""

from __future__ import annotations

import copy
import io
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from monai.utils import IgniteInfo, ImageMetaKey, min_version, optional_import

from monai_bone.utils.io import atomic_write_bytes
from monai_bone.utils.options import as_bool

from .explain_roi import place_in_window, roi_box_of

Events, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Events")
if TYPE_CHECKING:
    from ignite.engine import Engine
else:
    Engine, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Engine")

__all__ = ["FieldAttentionHandler", "GradCamSaver"]

logger = logging.getLogger(__name__)


def _bare(network: torch.nn.Module) -> torch.nn.Module:
    return network.module if isinstance(network, torch.nn.parallel.DistributedDataParallel) else network


def _items(data: Any, what: str) -> list:
    if isinstance(data, (list, tuple)):
        return list(data)
    raise TypeError(f"{what} must be decollated (one dictionary per study); keep the evaluator's decollate=True")


def _stack(items: list[Mapping], key: str, device: torch.device) -> torch.Tensor:
    values = [torch.as_tensor(it[key]) for it in items]
    return torch.stack([v.as_tensor() if hasattr(v, "as_tensor") else v for v in values]).to(device)


def _extra(items: list[Mapping], extra_keys: Mapping[str, str] | None, device: torch.device) -> dict:
    return {arg: _stack(items, key, device) for arg, key in (extra_keys or {}).items()}


class FieldAttentionHandler:
    """Add the per-field metadata attention of ``XAttnBMD`` to every study's output.

    Args:
        network: the ``XAttnBMD`` network (``fusion="xattn"``), possibly wrapped in ``DistributedDataParallel``.
        extra_keys: forward keyword argument -> batch key, as ``PrepareBatchExtraInput`` (e.g. ``{"clinical":
            "clinical"}``).
        image_key: batch key of the image.
        output_key: output key the ``(F,)`` weights are written to.

    Raises:
        ValueError: when the network has no attention maps (another fusion or another network).
    """

    def __init__(
        self,
        network: torch.nn.Module,
        extra_keys: Mapping[str, str] | None = None,
        image_key: str = "image",
        output_key: str = "field_weights",
    ) -> None:
        net = _bare(network)
        if not hasattr(net, "attention_maps") or getattr(net, "cross_attention", True) is None:
            raise ValueError(
                f"save_attention needs an XAttnBMD network with fusion='xattn', got {type(net).__name__} "
                f"(fusion={getattr(net, 'fusion', None)!r})"
            )
        self.network = network
        self.extra_keys = dict(extra_keys or {})
        self.image_key = image_key
        self.output_key = output_key

    def attach(self, engine: Engine) -> None:
        """Run after every iteration of ``engine`` (attach before the prediction writer)."""
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        """Compute the attention of the current batch and store it in each output item."""
        batch = _items(engine.state.batch, "engine.state.batch")
        output = _items(engine.state.output, "engine.state.output")
        if not batch:
            return
        device = torch.device(engine.state.device) if getattr(engine.state, "device", None) else torch.device("cpu")
        net = _bare(self.network)
        was_training = net.training
        net.eval()
        try:
            maps = net.attention_maps(_stack(batch, self.image_key, device), **_extra(batch, self.extra_keys, device))
        finally:
            net.train(was_training)
        weights = maps["field_weights"].detach().float().cpu()
        for i, item in enumerate(output):
            item[self.output_key] = weights[i]


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "study"


def _overlay_png(image: np.ndarray, cam: np.ndarray, title: str, box: tuple[int, int, int, int] | None = None) -> bytes:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    fig = Figure(figsize=(4, 4), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(image, cmap="gray", vmin=0.0, vmax=1.0)
    if box is None:
        ax.imshow(cam, cmap="jet", alpha=0.35, vmin=0.0, vmax=1.0)
    else:  # the map covers only the ROI window: transparent elsewhere, the window outlined
        ax.imshow(np.ma.masked_where(cam <= 0, cam), cmap="jet", alpha=0.35, vmin=0.0, vmax=1.0)
        r0, c0, h, w = box
        ax.add_patch(Rectangle((c0 - 0.5, r0 - 0.5), w, h, fill=False, edgecolor="red", linewidth=1.0))
    ax.text(0.01, 0.99, title, transform=ax.transAxes, color="white", fontsize=7, va="top")
    ax.axis("off")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _source_image(path: str) -> np.ndarray:
    """The whole radiograph an ROI was cropped from, as the pipeline loads and normalises it (``(H, W)`` in [0, 1])."""
    from monai_bone.transforms.array import LoadXray, XrayNormalise

    return XrayNormalise()(LoadXray()(path))[0].detach().float().cpu().numpy()


class GradCamSaver:
    """Save a Grad-CAM overlay PNG per study (``monai.visualize.GradCAM`` on ``target_layer``).

    For the hip regressor the map explains the predicted BMD (its gradient); for the knee classifier the predicted
    class (the single logit of a binary model). With an ROI input (``roi_size_mm``) the overlay shows the whole
    radiograph with the map placed on the window the crop came from (outlined in red), never the crop's map stretched
    over the image; the stored map stays in network-input geometry (the DICOM writers place it the same way).
    File names are ``<patient_id>_<image stem>.png``; the path is also
    stored in each output item under ``output_key``. Studies with an ``error`` message (placeholders of unreadable
    files, see :class:`~monai_bone.transforms.SafeXrayd`) are skipped.

    Args:
        network: the network (possibly wrapped in ``DistributedDataParallel``).
        target_layer: name of the layer to take activations from (``"encoder.layer4"`` for XAttnBMD,
            ``"features.norm5"`` for HybridAttentionNet).
        output_dir: folder of the PNG files (created).
        extra_keys: forward keyword argument -> batch key (``{"clinical": "clinical"}`` for the hip model).
        image_key: batch key of the image.
        id_key: batch key of the patient identifier (used in the file name).
        output_key: output key the PNG path is written to.
        synthetic: add "SYNTHETIC" to the title of every image.
        map_key: output key the heat map itself (network-input geometry, ``(H, W)`` array) is written to (read by
            :class:`~monai_bone.results.DicomResultsSaver`).
        pseudonymous_names: name files ``<patient_id>_<last digits of the SOP Instance UID>.png`` (with a
            pseudonymised datalist: pseudonyms only) instead of after the input file (whose name may carry a
            patient ID); studies without a UID are numbered.

    Raises:
        ValueError: when ``target_layer`` is not a layer of the network.
    """

    def __init__(
        self,
        network: torch.nn.Module,
        target_layer: str,
        output_dir: str | os.PathLike,
        extra_keys: Mapping[str, str] | None = None,
        image_key: str = "image",
        id_key: str = "patient_id",
        output_key: str = "gradcam",
        synthetic: bool = False,
        map_key: str = "gradcam_map",
        pseudonymous_names: bool | str = False,
    ) -> None:
        net = _bare(network)
        names = {n for n, _ in net.named_modules()}
        if target_layer not in names:
            raise ValueError(f"gradcam_layer {target_layer!r} is not a layer of {type(net).__name__}")
        self.network = network
        self.target_layer = target_layer
        self.output_dir = Path(output_dir)
        self.extra_keys = dict(extra_keys or {})
        self.image_key = image_key
        self.id_key = id_key
        self.output_key = output_key
        self.map_key = map_key
        self.synthetic = bool(synthetic)
        self.pseudonymous_names = as_bool(pseudonymous_names, "pseudonymous_names")
        self._cam = None

    def attach(self, engine: Engine) -> None:
        """Run after every iteration of ``engine`` (a fresh network copy is hooked at every epoch start)."""
        engine.add_event_handler(Events.EPOCH_STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def _reset(self, _engine: Engine | None = None) -> None:
        self._cam = None

    def _gradcam(self):
        """GradCAM on a private copy of the network: MONAI's hooks stay registered and need non in-place layers,
        so the network the evaluator runs is left untouched."""
        from monai.visualize import GradCAM

        if self._cam is None:
            net = copy.deepcopy(_bare(self.network)).eval()
            for m in net.modules():
                if getattr(m, "inplace", False) is True:
                    m.inplace = False
            self._cam = GradCAM(nn_module=net, target_layers=self.target_layer)
        return self._cam

    def __call__(self, engine: Engine) -> None:
        """Compute and save the Grad-CAM of every study of the current batch."""
        batch = _items(engine.state.batch, "engine.state.batch")
        output = _items(engine.state.output, "engine.state.output")
        if not batch:
            return
        device = torch.device(engine.state.device) if getattr(engine.state, "device", None) else torch.device("cpu")
        cam = self._gradcam()
        self.output_dir.mkdir(parents=True, exist_ok=True)
        for i, item in enumerate(batch):
            if item.get("error"):  # a placeholder of an unreadable study (SafeXrayd): nothing to explain
                continue
            image = _stack([item], self.image_key, device)
            with torch.enable_grad():
                heat = cam(image, **_extra([item], self.extra_keys, device))
            heat_np = heat[0, 0].detach().float().cpu().numpy()
            img = item.get(self.image_key)
            src = getattr(img, "meta", {}).get(ImageMetaKey.FILENAME_OR_OBJ, "") if hasattr(img, "meta") else ""
            roi = roi_box_of(item, self.image_key)
            box = roi if src else None  # an ROI input without its source file: the crop's own overlay, titled so
            if box is None:
                shown, drawn = image[0, 0].detach().float().cpu().numpy(), heat_np
            else:  # ROI input: draw on the whole radiograph, the map where the crop came from
                shown = _source_image(src)
                drawn = place_in_window(heat_np, shown.shape, box)
            pid = str(item.get(self.id_key) or "")
            stem = Path(str(src)).stem if src else f"study{engine.state.iteration}_{i}"
            if self.pseudonymous_names:  # input file names may carry patient IDs: name after the pseudonyms only
                uid = str(item.get("sop_instance_uid") or "")
                stem = uid.rsplit(".", 1)[-1][-12:] if uid else f"study{engine.state.iteration}_{i}"
            name = _safe_name(f"{pid}_{stem}" if pid else stem) + ".png"
            title = ("SYNTHETIC - " if self.synthetic else "") + f"Grad-CAM {self.target_layer}"
            if box is not None:
                title += f" on the ROI (red, rows {box[0]}+{box[2]}, cols {box[1]}+{box[3]})"
            elif roi is not None:
                title += " (ROI crop only)"
            path = atomic_write_bytes(self.output_dir / name, _overlay_png(shown, drawn, title, box))
            if i < len(output):
                output[i][self.output_key] = str(path)
                output[i][self.map_key] = heat_np
