"""Plain image files (PNG/JPEG/TIFF/BMP) as radiographs: decoding with PIL and the meta keys DICOM files get.

:func:`read_plain_image` decodes a file to a float32 grey array; :func:`plain_xray_meta` gives it the same meta keys
(:data:`~monai_bone.data.xray_reader.XRAY_META_KEYS`) as a DICOM file read by
:class:`~monai_bone.data.xray_reader.XrayPydicomReader`, so both kinds collate together.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.utils.enums import SpaceKeys
from PIL import Image, ImageOps, UnidentifiedImageError

from monai_bone.data.dicom_values import image_size_problem
from monai_bone.data.xray_reader import (
    DICOM_PLAIN_TAGS,
    LUMINANCE_WEIGHTS,
    XRAY_META_KEYS,
    XrayReadError,
    first_line,
    to_luminance,
)

__all__ = ["plain_xray_meta", "read_plain_image"]

logger = logging.getLogger(__name__)


def read_plain_image(path: Path) -> tuple[np.ndarray, str, int]:
    """Decode a PNG/JPEG/TIFF/BMP radiograph with PIL: ``(float32 (H, W) grey array, format, bits stored)``.

    8/16-bit grey kept as is, EXIF orientation applied; colour becomes grey by :data:`LUMINANCE_WEIGHTS` with a logged
    warning (images whose three channels are equal are grey already and convert silently); alpha is dropped.

    Raises:
        XrayReadError: naming the file, for unidentifiable, truncated or corrupt images, decompression bombs and
            images outside the size rule of :func:`monai_bone.data.dicom_values.image_size_problem` (not decoded).
    """
    name = f"{path}"
    try:
        with Image.open(path) as opened:
            fmt = str(opened.format or path.suffix.lstrip(".")).lower()
            problem = image_size_problem(opened.size[1], opened.size[0])
            if problem:
                raise XrayReadError(f"{name}: {problem} (size rule of monai_bone.data.dicom_values; not decoded)")
            im = ImageOps.exif_transpose(opened)
            im.load()
    except XrayReadError:
        raise
    except UnidentifiedImageError:
        raise XrayReadError(f"{name}: not a readable image file (PIL cannot identify it)") from None
    except Image.DecompressionBombError as err:
        raise XrayReadError(f"{name}: image too large to decode safely ({first_line(err)})") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise XrayReadError(f"{name}: truncated or corrupt image ({first_line(err)})") from None
    mode = im.mode
    if mode in ("L", "I;16", "I;16L", "I;16B", "I;16N", "I", "F", "1"):
        arr = np.asarray(im.convert("L") if mode == "1" else im)
        bits = {"L": 8, "1": 8, "F": 32}.get(mode, 16)
        if mode == "I" and arr.size and int(arr.max()) > 65535:
            bits = 32
    elif mode in ("LA", "La"):
        arr, bits = np.asarray(im.getchannel(0)), 8
    else:
        rgb = np.asarray(im.convert("RGB"))
        bits = 8
        if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]):
            arr = rgb[..., 0]
        else:
            logger.warning("%s: colour image (%s) converted to grey luminance (%s)", name, mode, LUMINANCE_WEIGHTS)
            arr = to_luminance(rgb)
    return np.ascontiguousarray(arr, dtype=np.float32), fmt, bits


def plain_xray_meta(name: str, shape: Sequence[int], fmt: str = "png", bits_stored: int = 8) -> dict[str, Any]:
    """The :data:`XRAY_META_KEYS` meta dict of an image without DICOM tags (PNG/JPEG files, placeholders).

    Args:
        name: ``filename_or_obj``.
        shape: ``(rows, columns)``.
        fmt: ``format`` value.
        bits_stored: ``BitsStored`` value.

    Returns:
        A new meta dict: :data:`DICOM_PLAIN_TAGS` defaults, identity affine, 1 mm spacing.
    """
    meta: dict[str, Any] = {
        key: (np.array(v, dtype=np.float64) if isinstance(v, tuple) else v) for key, v in DICOM_PLAIN_TAGS.items()
    }
    meta.update(BitsStored=int(bits_stored), Modality="")
    affine = np.eye(4, dtype=np.float64)
    meta.update(
        filename_or_obj=name,
        format=fmt,
        spatial_shape=tuple(int(s) for s in shape),
        original_channel_dim=float("nan"),
        space=SpaceKeys.LPS,
        original_affine=affine,
        affine=torch.as_tensor(affine),
        spacing=np.ones(2, dtype=np.float64),
    )
    return {k: meta[k] for k in XRAY_META_KEYS}
