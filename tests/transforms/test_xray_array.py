"""LoadXray / XrayNormalise: orientation, modality LUT, MONOCHROME1, windows, percentiles, PNG, error messages."""

from __future__ import annotations

import logging

import numpy as np
import pydicom
import pytest
import torch
from _xray_test_files import gradient, marker_image, write_dicom
from monai.data import MetaTensor
from PIL import Image
from pydicom.data import get_testdata_file

from monai_bone.data.xray_reader import LUMINANCE_WEIGHTS, XRAY_META_KEYS
from monai_bone.transforms import LoadXray, XrayNormalise, XrayReadError

LOGGER = "monai_bone.transforms.array"

# ---------------------------------------------------------------------------------------------------------------- load


@pytest.fixture(scope="module")
def loader() -> LoadXray:
    return LoadXray()


def test_dicom_orientation_rows_first(tmp_path, loader):
    stored = marker_image()
    path = write_dicom(tmp_path / "marker.dcm", stored)
    img = loader(path)
    assert isinstance(img, MetaTensor)
    assert img.shape == (1, 24, 40) and img.dtype == torch.float32
    assert img[0, 0, 0] == 3000 and img[0, 3, 1] == 3000 + 1
    assert img[0, 2, 30] == 3000 + 30
    assert img[0, 30 % 24, 2] < 1000  # the transposed position of the single bright pixel is dark
    np.testing.assert_array_equal(img[0].numpy(), stored.astype(np.float32))


def test_png_orientation_rows_first(tmp_path, loader):
    stored = marker_image(low=10, high=200).astype(np.uint8)
    path = tmp_path / "marker.png"
    Image.fromarray(stored).save(path)
    img = loader(path)
    assert img.shape == (1, 24, 40)
    assert img[0, 0, 0] == 200 and img[0, 2, 30] == 200 + 30
    np.testing.assert_array_equal(img[0].numpy(), stored.astype(np.float32))


def test_rescale_slope_intercept_applied_once(tmp_path, loader):
    stored = gradient(16, 16, top=1000)
    path = write_dicom(tmp_path / "rescaled.dcm", stored, rescale=(2.0, -100.0))
    img = loader(path)
    np.testing.assert_allclose(img[0].numpy(), stored.astype(np.float32) * 2.0 - 100.0)
    assert img.meta["RescaleSlope"] == 2.0 and img.meta["RescaleIntercept"] == -100.0


def test_rescale_of_pydicom_cr_file(loader):
    # real CR file: MONOCHROME1, RescaleSlope 0.684, RescaleIntercept 200
    path = get_testdata_file("dicomdirtests/77654033/CR1/6154")
    ds = pydicom.dcmread(path)
    img = loader(path)
    expected = ds.pixel_array.astype(np.float32) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_allclose(img[0].numpy(), expected, rtol=1e-6)
    assert img.meta["PhotometricInterpretation"] == "MONOCHROME1"


def test_meta_plain_keys_and_no_identifiers(tmp_path, loader):
    path = write_dicom(
        tmp_path / "tags.dcm",
        gradient(),
        window=(["1500", "800"], ["2000", "600"]),
        voi_function="LINEAR_EXACT",
        pixel_spacing=(0.15, 0.16),
        imager_pixel_spacing=(0.14, 0.14),
        patient_name="Doe^Jane",
        extra={"PatientBirthDate": "19400101"},
    )
    img = loader(path)
    assert tuple(img.meta) == XRAY_META_KEYS
    assert img.meta["WindowCenter"] == 1500.0 and img.meta["WindowWidth"] == 2000.0  # first of multi-valued
    assert img.meta["VOILUTFunction"] == "LINEAR_EXACT"
    assert img.meta["BitsStored"] == 12 and img.meta["Modality"] == "DX" and img.meta["format"] == "dicom"
    np.testing.assert_allclose(img.meta["PixelSpacing"], [0.15, 0.16])
    np.testing.assert_allclose(img.meta["ImagerPixelSpacing"], [0.14, 0.14])
    np.testing.assert_allclose(img.pixdim[:2], [0.15, 0.16])  # affine follows PixelSpacing (rows, cols)
    assert img.meta["filename_or_obj"] == str(path)
    text = repr(dict(img.meta))
    assert "Doe" not in text and "19400101" not in text and "00100010" not in text


def test_missing_tags_defaults(tmp_path, loader):
    path = write_dicom(tmp_path / "bare.dcm", gradient(), pixel_spacing=None)
    meta = loader(path).meta
    assert tuple(meta) == XRAY_META_KEYS
    assert np.isnan(meta["WindowCenter"]) and np.isnan(meta["WindowWidth"])
    assert np.all(np.isnan(meta["PixelSpacing"])) and meta["RescaleSlope"] == 1.0 and meta["VOILUTFunction"] == ""


def test_png_8_and_16_bit(tmp_path, loader):
    eight = (np.arange(12 * 10) % 256).astype(np.uint8).reshape(12, 10)
    Image.fromarray(eight).save(tmp_path / "eight.png")
    sixteen = (np.arange(12 * 10, dtype=np.uint16) * 531).reshape(12, 10)
    Image.fromarray(sixteen).save(tmp_path / "sixteen.png")
    img8, img16 = loader(tmp_path / "eight.png"), loader(tmp_path / "sixteen.png")
    np.testing.assert_array_equal(img8[0].numpy(), eight.astype(np.float32))
    np.testing.assert_array_equal(img16[0].numpy(), sixteen.astype(np.float32))
    assert img8.meta["BitsStored"] == 8 and img16.meta["BitsStored"] == 16
    assert tuple(img8.meta) == XRAY_META_KEYS and img8.meta["format"] == "png"
    assert img8.meta["PhotometricInterpretation"] == "MONOCHROME2"


def test_png_rgb_luminance_with_warning(tmp_path, loader, caplog):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(8, 9, 3), dtype=np.uint8)
    Image.fromarray(rgb, mode="RGB").save(tmp_path / "colour.png")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        img = loader(tmp_path / "colour.png")
    expected = rgb.astype(np.float32) @ np.asarray(LUMINANCE_WEIGHTS, dtype=np.float32)
    np.testing.assert_allclose(img[0].numpy(), expected, rtol=1e-6)
    assert any("colour.png" in r.getMessage() and "luminance" in r.getMessage() for r in caplog.records)


def test_png_grey_stored_as_rgb_is_silent(tmp_path, loader, caplog):
    grey = np.arange(64, dtype=np.uint8).reshape(8, 8)
    Image.fromarray(np.stack([grey] * 3, -1), mode="RGB").save(tmp_path / "grey_rgb.png")
    Image.fromarray(np.stack([grey] * 3 + [np.full_like(grey, 255)], -1), mode="RGBA").save(tmp_path / "grey.png")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        a, b = loader(tmp_path / "grey_rgb.png"), loader(tmp_path / "grey.png")
    np.testing.assert_array_equal(a[0].numpy(), grey.astype(np.float32))
    np.testing.assert_array_equal(b[0].numpy(), grey.astype(np.float32))
    assert not caplog.records


def test_rgb_dicom_luminance_or_reject(loader):
    path = get_testdata_file("SC_rgb_rle.dcm")
    rgb = pydicom.dcmread(path).pixel_array
    img = loader(path)
    expected = rgb.astype(np.float32) @ np.asarray(LUMINANCE_WEIGHTS, dtype=np.float32)
    np.testing.assert_allclose(img[0].numpy(), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="SC_rgb_rle.dcm: colour image"):
        LoadXray(allow_rgb=False)(path)


# ------------------------------------------------------------------------------------------------------------ errors


def _assert_names(excinfo, path, *words):
    message = str(excinfo.value)
    assert str(path) in message, message
    for word in words:
        assert word in message, message
    assert "\n" not in message


@pytest.mark.parametrize("suffix", [".dcm", ".png", ""])
def test_zero_byte_file(tmp_path, loader, suffix):
    path = tmp_path / f"empty{suffix}"
    path.write_bytes(b"")
    with pytest.raises(XrayReadError) as excinfo:
        loader(path)
    _assert_names(excinfo, path, "empty file")


def test_garbage_files(tmp_path, loader):
    rng = np.random.default_rng(1)
    dcm = tmp_path / "garbage.dcm"
    dcm.write_bytes(rng.integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(ValueError) as excinfo:
        loader(dcm)
    _assert_names(excinfo, dcm, "not a DICOM file")
    png = tmp_path / "garbage.png"
    png.write_bytes(b"this is not an image" * 20)
    with pytest.raises(ValueError) as excinfo:
        loader(png)
    _assert_names(excinfo, png, "not a readable image")


def test_truncated_files(tmp_path, loader):
    full = write_dicom(tmp_path / "full.dcm", gradient(64, 64)).read_bytes()
    cut_pixels = tmp_path / "cut_pixels.dcm"
    cut_pixels.write_bytes(full[: len(full) - 1000])
    with pytest.raises(ValueError) as excinfo:
        loader(cut_pixels)
    _assert_names(excinfo, cut_pixels, "pixel data")
    cut_header = tmp_path / "cut_header.dcm"
    cut_header.write_bytes(full[:200])
    with pytest.raises(ValueError) as excinfo:
        loader(cut_header)
    _assert_names(excinfo, cut_header)
    whole_png = tmp_path / "whole.png"
    noise = np.random.default_rng(2).integers(0, 65535, size=(64, 64), dtype=np.uint16)
    Image.fromarray(noise).save(whole_png)
    cut_png = tmp_path / "cut.png"
    cut_png.write_bytes(whole_png.read_bytes()[: whole_png.stat().st_size // 2])
    with pytest.raises(ValueError) as excinfo:
        loader(cut_png)
    _assert_names(excinfo, cut_png, "truncated or corrupt")


def test_no_pixel_data_and_multiframe(tmp_path, loader):
    nopix = write_dicom(tmp_path / "nopix.dcm", gradient(), with_pixels=False)
    with pytest.raises(ValueError) as excinfo:
        loader(nopix)
    _assert_names(excinfo, nopix, "no pixel data")
    multi = write_dicom(tmp_path / "multi.dcm", np.stack([gradient()] * 3), frames=3)
    with pytest.raises(ValueError) as excinfo:
        loader(multi)
    _assert_names(excinfo, multi, "multi-frame", "3 frames")


def test_missing_decoder_plugin_is_named(monkeypatch, loader):
    path = get_testdata_file("MR_small_jp2klossless.dcm")
    decoder = pydicom.pixels.get_decoder(pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID)
    monkeypatch.setattr(decoder, "_available", {})
    with pytest.raises(ValueError) as excinfo:
        loader(path)
    _assert_names(excinfo, path, "no decoder plugin", "pylibjpeg-openjpeg", "JPEG 2000")


def test_folder_and_missing_file(tmp_path, loader):
    with pytest.raises(ValueError, match="is a folder"):
        loader(tmp_path)
    with pytest.raises(FileNotFoundError, match="nowhere.dcm"):
        loader(tmp_path / "nowhere.dcm")


def test_dicom_without_preamble_is_read(tmp_path, loader):
    path = write_dicom(tmp_path / "with_preamble.dcm", gradient())
    ds = pydicom.dcmread(path)
    ds.preamble = None
    del ds.file_meta  # a bare explicit-VR dataset: no preamble, no file meta, no TransferSyntaxUID
    raw = tmp_path / "raw.dcm"
    pydicom.dcmwrite(raw, ds, implicit_vr=False, little_endian=True, enforce_file_format=False)
    assert raw.read_bytes()[128:132] != b"DICM"
    np.testing.assert_array_equal(loader(raw)[0].numpy(), loader(path)[0].numpy())
    with pytest.raises(ValueError, match="raw.dcm: not a DICOM file"):
        LoadXray(allow_no_preamble=False)(raw)


# --------------------------------------------------------------------------------------------------------- normalise


def test_normalise_range_dtype_and_meta(tmp_path, loader):
    img = loader(write_dicom(tmp_path / "g.dcm", gradient(), photometric="MONOCHROME1", window=(2000, 3000)))
    before = img.clone()
    for kwargs in ({}, {"window": "voi"}, {"window": (100.0, 50.0), "percentiles": None}):
        XrayNormalise(**kwargs)(img)
    np.testing.assert_array_equal(img.numpy(), before.numpy())  # the input is never modified in place
    assert img.meta["PhotometricInterpretation"] == "MONOCHROME1"
    out = XrayNormalise()(img)
    assert isinstance(out, MetaTensor) and out.dtype == torch.float32 and out.shape == img.shape
    assert float(out.min()) == 0.0 and float(out.max()) == 1.0
    assert out.meta["filename_or_obj"] == img.meta["filename_or_obj"]
    arr = XrayNormalise()(np.random.default_rng(0).normal(size=(1, 20, 20)) * 1e4)  # numpy in, tensor out (MONAI)
    assert isinstance(arr, torch.Tensor) and arr.dtype == torch.float32 and arr.min() >= 0 and arr.max() <= 1


def test_monochrome1_inversion_from_meta_and_argument(tmp_path, loader):
    stored = gradient(top=4095)
    m2 = loader(write_dicom(tmp_path / "m2.dcm", stored))
    m1 = loader(write_dicom(tmp_path / "m1.dcm", 4095 - stored, photometric="MONOCHROME1"))
    norm = XrayNormalise(percentiles=(2.0, 95.0))  # asymmetric: inversion must come before the percentiles
    a, b = norm(m2), norm(m1)
    np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)
    assert b.meta["PhotometricInterpretation"] == "MONOCHROME2"
    # a second pass does not invert again (the output meta says MONOCHROME2)
    np.testing.assert_allclose(norm(b).numpy(), XrayNormalise(invert_monochrome1=False, percentiles=(2.0, 95.0))(b))
    # explicit argument on a plain array (no meta), and overriding the meta
    plain = (4095 - stored).astype(np.float32)[None]
    by_argument = XrayNormalise(photometric="MONOCHROME1", percentiles=(2.0, 95.0))(plain)
    np.testing.assert_allclose(by_argument, a.numpy(), atol=1e-6)
    not_inverted = XrayNormalise(photometric="MONOCHROME2", percentiles=(2.0, 95.0))(m1)
    assert float(not_inverted[0, 0, 0]) == 1.0 and float(a[0, 0, 0]) == 0.0
    kept = XrayNormalise(invert_monochrome1=False, percentiles=(2.0, 95.0))(m1)
    np.testing.assert_allclose(kept.numpy(), not_inverted.numpy())


def test_explicit_window_linear():
    x = torch.tensor([[[800.0, 900.0, 1000.0, 1100.0, 1300.0]]])
    out = XrayNormalise(window=(1000.0, 201.0), percentiles=None)(x)
    # DICOM LINEAR: (x - (c - 0.5)) / (w - 1) + 0.5, clipped; then min-max (already 0..1)
    expected = np.clip((x.numpy() - 999.5) / 200.0 + 0.5, 0, 1)
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-6)


def test_voi_window_functions_and_fallback(tmp_path, loader, caplog):
    stored = gradient(top=4000)
    lin = loader(write_dicom(tmp_path / "lin.dcm", stored, window=(2000, 1000)))
    out = XrayNormalise(window="voi", percentiles=None)(lin)
    np.testing.assert_allclose(out[0].numpy(), np.clip((stored - 1999.5) / 999.0 + 0.5, 0, 1), atol=1e-5)
    exact = loader(write_dicom(tmp_path / "exact.dcm", stored, window=(2000, 1000), voi_function="LINEAR_EXACT"))
    np.testing.assert_allclose(
        XrayNormalise(window="voi", percentiles=None)(exact)[0].numpy(),
        np.clip((stored - 2000.0) / 1000.0 + 0.5, 0, 1),
        atol=1e-5,
    )
    sig = loader(write_dicom(tmp_path / "sig.dcm", stored, window=(2000, 1000), voi_function="SIGMOID"))
    s = 1 / (1 + np.exp(-4 * (stored - 2000.0) / 1000.0))
    np.testing.assert_allclose(
        XrayNormalise(window="voi", percentiles=None)(sig)[0].numpy(), (s - s.min()) / (s.max() - s.min()), atol=1e-5
    )
    bare = loader(write_dicom(tmp_path / "nowin.dcm", stored))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        fallback = XrayNormalise(window="voi")(bare)
    assert any("nowin.dcm" in r.getMessage() and "no window" in r.getMessage() for r in caplog.records)
    np.testing.assert_allclose(fallback.numpy(), XrayNormalise()(bare).numpy())


def test_window_saturation_warning(caplog):
    x = torch.linspace(0, 1000, 400).reshape(1, 20, 20)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        XrayNormalise(window=(5000.0, 10.0))(x)
    assert any("saturates" in r.getMessage() for r in caplog.records)


def test_percentile_clip():
    rng = np.random.default_rng(3)
    values = rng.normal(1000, 100, size=(1, 50, 50)).astype(np.float32)
    values[0, 0, 0] = 1e6  # hot pixel
    values[0, 0, 1] = -1e6
    out = XrayNormalise(percentiles=(1.0, 99.0))(values)
    lo, hi = np.percentile(values, [1.0, 99.0])
    np.testing.assert_allclose(out, np.clip((values - lo) / (hi - lo), 0, 1), atol=1e-4)
    assert out[0, 0, 0] == 1.0 and out[0, 0, 1] == 0.0
    assert np.mean((out > 0) & (out < 1)) > 0.9
    minmax = XrayNormalise(percentiles=None)(values)
    assert np.mean((minmax > 0.45) & (minmax < 0.55)) > 0.99  # the hot pixels squeeze the body into the middle


def test_percentile_subsample_close_to_exact():
    values = np.random.default_rng(4).uniform(0.0, 3000.0, size=(1, 100, 100)).astype(np.float32)
    exact = XrayNormalise()(values)
    sub = XrayNormalise(max_percentile_pixels=2500)(values)  # every 2nd row and column
    assert np.abs(exact - sub).max() < 0.02
    assert not np.array_equal(exact, sub)


def test_constant_image_warns(caplog):
    img = MetaTensor(torch.full((1, 8, 8), 7.0), meta={"filename_or_obj": "flat.dcm"})
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        out = XrayNormalise()(img)
    assert float(out.abs().max()) == 0.0
    assert any("flat.dcm" in r.getMessage() and "constant" in r.getMessage() for r in caplog.records)


def test_non_finite_input_names_file():
    img = MetaTensor(torch.tensor([[[1.0, float("nan")], [2.0, 3.0]]]), meta={"filename_or_obj": "bad.dcm"})
    with pytest.raises(ValueError, match="bad.dcm: image contains non-finite"):
        XrayNormalise()(img)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"photometric": "RGB"},
        {"window": "auto"},
        {"window": (100.0, 0.0)},
        {"window": (1.0, 2.0, 3.0)},
        {"percentiles": (50.0, 10.0)},
        {"percentiles": (-1.0, 99.0)},
        {"max_percentile_pixels": 0},
    ],
)
def test_invalid_arguments(kwargs):
    with pytest.raises(ValueError):
        XrayNormalise(**kwargs)
