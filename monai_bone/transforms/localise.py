"""Locate the region of interest with a trained :class:`~monai_bone.networks.LandmarkNet` (array and dict versions).

:func:`landmark_input` turns a normalised radiograph ``(1, H, W)`` into the localiser's fixed square input (longest
side resized to ``size`` with area averaging, zero padding at the bottom/right) and returns the factor that maps
back to image pixels. :class:`LocateRoi` runs the network on it and returns the landmark ``(row, col)`` in pixels of
the image as loaded; :class:`LocateRoid` writes it to ``data[centre_key]`` for :class:`~monai_bone.transforms.RoiCropd`.

Bilateral knee images (both knees side by side) hold two joint centres, and a localiser fitted on whole bilateral
images learns the point between them. With ``bilateral`` on (knee localisers; recorded in the localiser file),
:func:`bilateral_view` keeps the displayed-left knee of an image that
:func:`~monai_bone.data.image_guards.is_bilateral` flags, both when fitting and when locating, so the landmark is
always one knee's joint centre (the synthetic generator marks that knee; both knees are one subject).

The localiser file is written by :func:`monai_bone.engines.localiser.fit_localiser`: a ``torch.save`` dictionary with
``state_dict``, ``size``, ``channels`` and ``landmarks`` (read with ``weights_only=True``).
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from monai.config import KeysCollection
from monai.transforms import Compose, Resized, SpatialPadd
from monai.transforms.transform import MapTransform, Transform
from monai.utils import TransformBackends

from monai_bone.data.image_guards import is_bilateral
from monai_bone.networks.nets.landmark import LandmarkNet
from monai_bone.transforms.roi import RoiCropd

__all__ = [
    "LocateRoi",
    "LocateRoiD",
    "LocateRoiDict",
    "LocateRoid",
    "RoiInputd",
    "bilateral_view",
    "landmark_input",
    "load_localiser",
]


def bilateral_view(img: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """The displayed-left knee of a bilateral knee image, or the image itself.

    Args:
        img: ``(C, H, W)`` normalised radiograph (bone bright).

    Returns:
        ``(view, split)``: ``view`` is the left half ``img[..., :W // 2]`` (as
        :func:`~monai_bone.data.image_guards.split_halves` and ``monai-bone index --bilateral split`` cut it; same
        row and column origin as ``img``) when :func:`~monai_bone.data.image_guards.is_bilateral` flags channel 0,
        else ``img``; ``split`` says which.
    """
    x = torch.as_tensor(img)
    plain = x.as_tensor() if hasattr(x, "as_tensor") else x
    if not is_bilateral(plain[0].detach().float().cpu().numpy()):
        return img, False
    return img[..., : img.shape[-1] // 2], True  # the "left" half of split_halves, kept a tensor


def landmark_input(img: torch.Tensor, size: int) -> tuple[torch.Tensor, float]:
    """The localiser input of a ``(C, H, W)`` image: channel 0, longest side ``size``, zero-padded to a square.

    Returns:
        ``(x, scale)``: ``x`` is ``(1, size, size)`` float32 and an input pixel ``(r, c)`` maps to image pixel
        ``((r + 0.5) / scale - 0.5, (c + 0.5) / scale - 0.5)``.
    """
    x = torch.as_tensor(img).float()
    x = x.as_tensor() if hasattr(x, "as_tensor") else x
    h, w = x.shape[-2:]
    scale = size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    small = F.interpolate(x[None, :1], size=(nh, nw), mode="area")[0]
    out = small.new_zeros((1, size, size))
    out[:, :nh, :nw] = small
    return out, scale


def load_localiser(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[LandmarkNet, dict[str, Any]]:
    """Load a localiser file (module docstring) as an eval-mode network and its settings.

    Raises:
        FileNotFoundError: the file does not exist (names it and how to make one).
        ValueError: the file is not a localiser checkpoint.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no ROI localiser here; train one with monai_bone.engines.fit_localiser")
    ckpt = torch.load(path, map_location=device, weights_only=True)
    if not isinstance(ckpt, dict) or not {"state_dict", "size", "channels"} <= set(ckpt):
        raise ValueError(f"{path}: not a monai-bone ROI localiser file (needs state_dict, size, channels)")
    net = LandmarkNet(2, 1, len(ckpt.get("landmarks", ["roi"])), channels=tuple(ckpt["channels"]))
    net.load_state_dict(ckpt["state_dict"])
    return net.to(device).eval(), {k: v for k, v in ckpt.items() if k != "state_dict"}


class LocateRoi(Transform):
    """Predict the landmark ``(row, col)`` (pixels of the input image) with a trained localiser.

    Args:
        localiser: path of a localiser file, or a :class:`LandmarkNet` (then ``size`` is needed).
        size: localiser input side (read from the file when ``localiser`` is a path).
        landmark: index of the landmark when the network predicts several.
        device: where the localiser runs.
        bilateral: locate in the displayed-left knee of bilateral images (:func:`bilateral_view`). ``None``: as the
            localiser file records (``bilateral``; off for a network or an older file).
    """

    backend = [TransformBackends.TORCH]

    def __init__(
        self,
        localiser: str | os.PathLike | LandmarkNet,
        size: int | None = None,
        landmark: int = 0,
        device: str | torch.device = "cpu",
        bilateral: bool | None = None,
    ) -> None:
        info: dict[str, Any] = {}
        if isinstance(localiser, LandmarkNet):
            if size is None:
                raise ValueError("size is needed when localiser is a network")
            self.net, self.size = localiser.eval(), int(size)
        else:
            self.net, info = load_localiser(localiser, device)
            self.size = int(size or info["size"])
        self.landmark, self.device = int(landmark), torch.device(device)
        self.bilateral = bool(info.get("bilateral", False) if bilateral is None else bilateral)

    def __call__(self, img: torch.Tensor) -> np.ndarray:
        if self.bilateral:
            img, _ = bilateral_view(img)  # the left half keeps the image's pixel origin: no offset to add back
        x, scale = landmark_input(img, self.size)
        with torch.no_grad():
            rc = self.net(x[None].to(self.device))[0, self.landmark].double().cpu().numpy()
        return rc * self.size / scale - 0.5


class LocateRoid(MapTransform):
    """Dictionary-based wrapper of :class:`LocateRoi`: writes ``data[centre_key] = (row, col)`` from ``keys``' image.

    Args:
        keys: the image key (the first one is used).
        localiser: path of a localiser file or a network (see :class:`LocateRoi`).
        centre_key: where the landmark goes.
        overwrite: replace a landmark already present (``False`` keeps e.g. a datalist's ground truth).
        size: localiser input side (for a network).
        device: where the localiser runs.
    """

    def __init__(
        self,
        keys: KeysCollection,
        localiser: str | os.PathLike | LandmarkNet,
        centre_key: str = "roi",
        overwrite: bool = True,
        size: int | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__(keys)
        self.locate = LocateRoi(localiser, size=size, device=device)
        self.centre_key, self.overwrite = centre_key, overwrite

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        if self.overwrite or d.get(self.centre_key) is None:
            key = next(iter(self.key_iterator(d)))
            d[self.centre_key] = self.locate(d[key])
        return d


LocateRoiD = LocateRoiDict = LocateRoid


class RoiInputd(MapTransform):
    """The encoder input: an ROI crop around the located landmark, or (no ROI) the whole image resized and padded.

    With ``roi_size_mm`` set: :class:`LocateRoid` (the localiser) then
    :class:`~monai_bone.transforms.roi.RoiCropd` (``roi_size_mm`` square, ``spatial_size`` pixels). Without it:
    MONAI ``Resized`` (longest side ``spatial_size``, area) and ``SpatialPadd`` to a square, the bundles' whole-image
    default. One config entry switches between the two, so the train, evaluate and inference chains stay aligned.

    Args:
        keys: the image key.
        spatial_size: output side in pixels.
        roi_size_mm: side of the ROI in mm, or ``None`` for the whole image.
        localiser: localiser file or network (needed when ``roi_size_mm`` is set).
        centre_key: where the landmark is written.
        fallback_spacing_mm: spacing assumed for images without PixelSpacing (ROI mode).

    Raises:
        ValueError: ``roi_size_mm`` is set without a localiser.
    """

    def __init__(
        self,
        keys: KeysCollection,
        spatial_size: int,
        roi_size_mm: float | None = None,
        localiser: str | os.PathLike | LandmarkNet | None = None,
        centre_key: str = "roi",
        fallback_spacing_mm: float | None = None,
    ) -> None:
        super().__init__(keys)
        size = int(spatial_size)
        if roi_size_mm:
            if localiser is None:
                raise ValueError("roi_size_mm is set but no ROI localiser was given")
            self.chain = Compose(
                [
                    LocateRoid(keys, localiser, centre_key=centre_key),
                    RoiCropd(keys, centre_key, roi_size_mm, size, None, None, fallback_spacing_mm),
                ]
            )
        else:
            self.chain = Compose(
                [
                    Resized(keys, spatial_size=size, size_mode="longest", mode="area"),
                    SpatialPadd(keys, spatial_size=(size, size)),
                ]
            )

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        return self.chain(dict(data))
