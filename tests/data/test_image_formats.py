"""One image-type table (monai_bone.data.image_formats): what the loader reads, the index indexes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from monai_bone.data.datalist import build_datalist
from monai_bone.data.duplicates import pixel_hash
from monai_bone.data.image_formats import IMAGE_SUFFIXES, PIL_FORMATS, PLAIN_IMAGE_FORMATS, PLAIN_IMAGE_SUFFIXES
from monai_bone.transforms import LoadXray


def _grey(seed: int, size: int = 96) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.kron(rng.random((6, 6)), np.ones((size // 6, size // 6)))


def test_one_table():
    assert set(PLAIN_IMAGE_SUFFIXES) == set(PLAIN_IMAGE_FORMATS) >= {".png", ".jpg", ".tif", ".tiff", ".bmp"}
    assert {"PNG", "JPEG", "TIFF", "BMP"} == PIL_FORMATS
    assert set(IMAGE_SUFFIXES) == {".dcm", ".dicom", *PLAIN_IMAGE_SUFFIXES}


def test_every_type_the_loader_reads_is_indexed(tmp_path):
    root = tmp_path / "kop"
    (root / "normal").mkdir(parents=True)
    (root / "osteoporosis").mkdir()
    wide = (_grey(1) * 60000).astype(np.uint16)  # a 16-bit TIFF (values far above 255)
    Image.fromarray(wide).save(root / "normal" / "a.tif")
    Image.fromarray((_grey(2) * 255).astype(np.uint8)).save(root / "normal" / "b.bmp")
    Image.fromarray((_grey(3) * 255).astype(np.uint8)).save(root / "osteoporosis" / "c.png")
    Image.fromarray((_grey(4) * 255).astype(np.uint8)).save(root / "osteoporosis" / "d.jpg", quality=95)
    summary = build_datalist(root, tmp_path / "out" / "dl.json", task="knee", folds=2, progress=False, test_fraction=0)
    assert (summary.seen, summary.used, summary.rejected) == (4, 4, 0)
    images = {Path(r["image"]).name for r in json.loads((tmp_path / "out" / "dl.json").read_text())["training"]}
    assert images == {"a.tif", "b.bmp", "c.png", "d.jpg"}
    img = LoadXray()(root / "normal" / "a.tif")
    assert img.shape == (1, 96, 96) and float(img.max()) > 255  # 16 bits kept


def test_16bit_image_hash_keeps_its_values(tmp_path):
    """convert("L") would clip a 16-bit image at 255 (nearly all white): the hash reads the wide values instead."""
    wide = (_grey(1) * 60000).astype(np.uint16)
    Image.fromarray(wide).save(tmp_path / "a16.tif")
    Image.fromarray((wide / 60000 * 255).astype(np.uint8)).save(tmp_path / "a8.png")
    Image.fromarray((_grey(2) * 60000).astype(np.uint16)).save(tmp_path / "b16.tif")
    a16, a8, b16 = (pixel_hash(tmp_path / n, dicom=False) for n in ("a16.tif", "a8.png", "b16.tif"))
    assert a16 - a8 <= 4
    assert a16 - b16 > 40
