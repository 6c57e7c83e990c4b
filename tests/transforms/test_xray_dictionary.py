"""LoadXrayd / XrayNormalised / ClinicalVectord inside a MONAI Compose + Dataset + DataLoader."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _xray_test_files import gradient, marker_image, write_dicom
from monai.data import DataLoader, Dataset, MetaTensor
from monai.transforms import Compose, RepeatChanneld, Resized, SpatialPadd
from PIL import Image
from pydicom.data import get_testdata_file

from monai_bone.transforms import (
    ClinicalStats,
    ClinicalVectorD,
    ClinicalVectord,
    ClinicalVectorDict,
    LoadXray,
    LoadXrayD,
    LoadXrayd,
    LoadXrayDict,
    XrayNormalise,
    XrayNormaliseD,
    XrayNormalised,
    XrayNormaliseDict,
)


@pytest.fixture
def mixed_files(tmp_path):
    """Files with different tag sets, sizes, formats and polarities."""
    rich = write_dicom(
        tmp_path / "rich.dcm",
        4095 - marker_image(rows=40, cols=30, high=4000),
        photometric="MONOCHROME1",
        rescale=(2.0, -100.0),
        window=(["3000", "2500"], ["4000", "3000"]),
        voi_function="LINEAR",
        pixel_spacing=(0.15, 0.15),
        imager_pixel_spacing=(0.14, 0.14),
    )
    bare = write_dicom(tmp_path / "bare.dcm", gradient(20, 50), pixel_spacing=None, modality="CR")
    png = tmp_path / "knee.png"
    Image.fromarray((marker_image(rows=33, cols=17, high=60000)).astype(np.uint16)).save(png)
    corpus = get_testdata_file("dicomdirtests/77654033/CR1/6154")  # real CR, MONOCHROME1, slope 0.684
    return [str(rich), str(bare), str(png), corpus]


def _pipeline(fields, stats=None, window=None):
    return Compose(
        [
            LoadXrayd("image"),
            XrayNormalised("image", window=window),
            Resized("image", spatial_size=64, size_mode="longest"),
            SpatialPadd("image", spatial_size=(64, 64)),
            RepeatChanneld("image", repeats=3),
            ClinicalVectord(fields=fields, stats=stats, remove_fields=True),
        ]
    )


def test_aliases():
    assert LoadXrayD is LoadXrayDict is LoadXrayd
    assert XrayNormaliseD is XrayNormaliseDict is XrayNormalised
    assert ClinicalVectorD is ClinicalVectorDict is ClinicalVectord


def test_dictionary_matches_array(mixed_files):
    d = XrayNormalised("image")(LoadXrayd("image")({"image": mixed_files[0], "other": 1}))
    a = XrayNormalise()(LoadXray()(mixed_files[0]))
    assert d["other"] == 1
    np.testing.assert_array_equal(d["image"].numpy(), a.numpy())
    assert LoadXrayd(["image", "mask"], allow_missing_keys=True)({"image": mixed_files[1]})["image"].shape == (
        1,
        20,
        50,
    )
    with pytest.raises(KeyError):
        LoadXrayd("mask")({"image": mixed_files[1]})


@pytest.mark.parametrize("window", [None, "voi"])
def test_compose_dataset_dataloader_collates_mixed_tags(mixed_files, window):
    items = [
        {"image": f, "age_xray": 70.0 + i, "sex": ("F", "M", None, "F")[i], "weight": (60.0, None, 80.0, 75.0)[i]}
        for i, f in enumerate(mixed_files)
    ]
    fields = ("age_xray", "weight", "sex")
    transform = _pipeline(fields, stats=ClinicalStats.fit(items, fields=fields), window=window)
    loader = DataLoader(Dataset(items, transform), batch_size=4, num_workers=0)
    batch = next(iter(loader))
    image = batch["image"]
    assert isinstance(image, MetaTensor) and image.shape == (4, 3, 64, 64) and image.dtype == torch.float32
    assert torch.isfinite(image).all() and image.min() >= 0 and image.max() <= 1
    meta = image.meta
    assert list(meta["filename_or_obj"]) == mixed_files
    assert meta["PhotometricInterpretation"] == ["MONOCHROME2"] * 4  # MONOCHROME1 inputs were inverted
    wc = meta["WindowCenter"]
    assert wc.shape == (4,) and wc[0] == 3000 and torch.isnan(wc[1]) and torch.isnan(wc[2]) and wc[3] == 1600
    assert meta["PixelSpacing"].shape == (4, 2) and torch.isnan(meta["PixelSpacing"][1]).all()
    assert meta["BitsStored"].tolist() == [12, 12, 16, 12]
    assert meta["RescaleSlope"][0] == 2.0 and meta["RescaleSlope"][3] == pytest.approx(0.684)
    assert batch["clinical"].shape == (4, 3) and batch["clinical_mask"].tolist()[1] == [1.0, 0.0, 1.0]
    # orientation survives the chain: the (inverted) MONOCHROME1 marker block is bright at the top-left of the
    # image, which sits 8 columns in (40 x 30 -> 64 x 48, padded symmetrically to 64 x 64)
    assert float(image[0, 0, :, :8].abs().max()) == 0.0
    if window is None:
        assert float(image[0, 0, 0, 8]) > 0.9 and float(image[0, 0, -1, 8:56].max()) < 0.5
