"""Every image file of pydicom's test corpus either loads as a finite [0, 1] radiograph or fails with a ValueError
naming the file; lossless compressed variants load equal to their uncompressed reference."""

from __future__ import annotations

import logging
import os

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file, get_testdata_files

from monai_bone.transforms import LoadXray, LoadXrayd, XrayNormalise, XrayNormalised

_ROOT = os.path.dirname(get_testdata_file("MR_small.dcm"))
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


def _image_files() -> list[str]:
    """Corpus files whose header read (forced, pixel data deferred) shows pixel data."""
    files = []
    for path in sorted(get_testdata_files()):
        if os.path.isdir(path):
            continue
        try:
            ds = pydicom.dcmread(path, force=True, defer_size=256)
        except Exception:
            continue
        if any(kw in ds for kw in _PIXEL_KEYWORDS):
            files.append(path)
    return files


IMAGE_FILES = _image_files()

#: Must load: uncompressed, deflated, RLE, JPEG-LS, JPEG 2000, JPEG extended, colour (luminance), CR MONOCHROME1.
KNOWN_GOOD = (
    "MR_small.dcm",
    "MR_small_RLE.dcm",
    "MR_small_jp2klossless.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
    "MR_small_bigendian.dcm",
    "CT_small.dcm",
    "693_J2KI.dcm",
    "JPEG2000.dcm",
    "JPGExtended.dcm",
    "JPEGLSNearLossless_16.dcm",
    "image_dfl.dcm",
    "SC_rgb_jpeg_dcmtk.dcm",
    "SC_rgb_rle.dcm",
    "dicomdirtests/77654033/CR1/6154",
    "dicomdirtests/77654033/CR2/6247",
)
#: Must be refused (truncated pixel data, multi-frame, palette colour, segmentation).
KNOWN_BAD = ("MR_truncated.dcm", "rtdose.dcm", "examples_ybr_color.dcm", "examples_palette.dcm", "liver_1frame.dcm")

#: (reference, variant, atol on the normalised image): lossless pairs are exact, lossy JPEG close.
PAIRS = (
    ("MR_small.dcm", "MR_small_RLE.dcm", 0.0),
    ("MR_small.dcm", "MR_small_jp2klossless.dcm", 0.0),
    ("MR_small.dcm", "MR_small_jpeg_ls_lossless.dcm", 0.0),
    ("MR_small.dcm", "MR_small_bigendian.dcm", 0.0),
    ("MR_small.dcm", "MR_small_expb.dcm", 0.0),
    ("MR_small.dcm", "MR_small_implicit.dcm", 0.0),
    ("MR_small.dcm", "MR_small_padded.dcm", 0.0),
    ("rtdose_1frame.dcm", "rtdose_rle_1frame.dcm", 0.0),
    ("rtdose_1frame.dcm", "rtdose_expb_1frame.dcm", 0.0),
    ("SC_rgb_rle.dcm", "SC_rgb_jpeg_gdcm.dcm", 0.0),
    ("SC_rgb_rle.dcm", "SC_rgb_gdcm_KY.dcm", 0.0),
    ("SC_rgb_rle.dcm", "SC_rgb_dcmtk_+eb+cr.dcm", 0.02),
)


@pytest.fixture(scope="module")
def pipeline():
    load, norm = LoadXrayd("image"), XrayNormalised("image")
    return lambda path: norm(load({"image": path}))["image"]


def test_corpus_is_found():
    names = {os.path.relpath(p, _ROOT) for p in IMAGE_FILES}
    assert len(IMAGE_FILES) > 60
    assert set(KNOWN_GOOD) <= names and set(KNOWN_BAD) <= names


@pytest.mark.parametrize("path", IMAGE_FILES, ids=lambda p: os.path.relpath(p, _ROOT))
def test_loads_or_names_the_file(path, pipeline, caplog):
    caplog.set_level(logging.CRITICAL)  # pydicom logs every failing decoder plugin with a traceback
    name = os.path.relpath(path, _ROOT)
    try:
        img = pipeline(path)
    except ValueError as err:
        assert path in str(err) and "\n" not in str(err), str(err)
        assert name not in KNOWN_GOOD, f"{name} should load: {err}"
        return
    assert name not in KNOWN_BAD, f"{name} should have been refused"
    assert img.ndim == 3 and img.shape[0] == 1 and min(img.shape[1:]) >= 1
    assert np.isfinite(img.numpy()).all()
    assert float(img.min()) >= 0.0 and float(img.max()) <= 1.0


@pytest.mark.parametrize("reference, variant, atol", PAIRS, ids=lambda v: str(v))
def test_compressed_variants_equal_reference(reference, variant, atol, caplog):
    caplog.set_level(logging.ERROR)
    load, norm = LoadXray(), XrayNormalise()
    ref, var = load(get_testdata_file(reference)), load(get_testdata_file(variant))
    assert ref.shape == var.shape
    if atol == 0.0:
        np.testing.assert_array_equal(ref.numpy(), var.numpy())
    np.testing.assert_allclose(norm(ref).numpy(), norm(var).numpy(), atol=max(atol, 1e-6))


def test_cr_monochrome1_is_inverted():
    path = get_testdata_file("dicomdirtests/77654033/CR1/6154")
    raw = pydicom.dcmread(path).pixel_array.astype(np.float64)
    out = XrayNormalise()(LoadXray()(path))[0].numpy().astype(np.float64)
    # MONOCHROME1: high stored value = dark; after normalisation bright must follow low stored values
    assert np.corrcoef(raw.ravel(), out.ravel())[0, 1] < -0.9
    as_stored = XrayNormalise(invert_monochrome1=False)(LoadXray()(path))[0].numpy()
    np.testing.assert_allclose(out, 1.0 - as_stored, atol=1e-5)  # symmetric percentiles: exact mirror
