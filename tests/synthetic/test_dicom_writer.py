"""Tests of ``write_dx`` (DX DICOM writer): pixel conventions, tags, validation."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.pixels import apply_modality_lut

from monai_bone.constants import SYNTHETIC_NOTE
from monai_bone.synthetic.dicom_writer import dicom_age, dx_uids, write_dx


def _pixels(bits: int = 12) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 2**bits, size=(40, 56), dtype=np.uint16)


@pytest.mark.parametrize("bits", [8, 12, 16])
def test_monochrome_conventions_and_round_trip(tmp_path, bits):
    pix = _pixels(bits)
    common = {"patient_id": "SYN-H-0001", "body_part": "hip", "bits_stored": bits}
    d2 = pydicom.dcmread(write_dx(tmp_path / "m2.dcm", pix, **common))
    d1 = pydicom.dcmread(write_dx(tmp_path / "m1.dcm", pix, photometric="MONOCHROME1", **common))
    np.testing.assert_array_equal(d2.pixel_array, pix)
    np.testing.assert_array_equal(d1.pixel_array.astype(np.int64) + pix, 2**bits - 1)
    assert d1.PresentationLUTShape == "INVERSE" and d2.PresentationLUTShape == "IDENTITY"
    assert d2.BodyPartExamined == "HIP" and d2.BitsStored == bits and d2.HighBit == bits - 1


def test_rescale_sets_the_modality_lut_without_changing_stored_values(tmp_path):
    pix = _pixels()
    ds = pydicom.dcmread(write_dx(tmp_path / "r.dcm", pix, patient_id="P", body_part="KNEE", rescale=(2.0, -100.0)))
    np.testing.assert_array_equal(ds.pixel_array, pix)
    np.testing.assert_allclose(apply_modality_lut(ds.pixel_array, ds), pix * 2.0 - 100.0)
    assert ds.RescaleType == "US"
    plain = pydicom.dcmread(write_dx(tmp_path / "n.dcm", pix, patient_id="P", body_part="KNEE", rescale=None))
    assert "RescaleSlope" not in plain and "RescaleIntercept" not in plain


def test_clinical_tags_identity_and_determinism(tmp_path):
    pix = _pixels()
    kwargs = {
        "patient_id": "SYN-K-0007",
        "body_part": "KNEE",
        "sex": "F",
        "age_years": 75.9,
        "height_m": 1.62,
        "weight_kg": 70.1,
        "pixel_spacing_mm": (0.2, 0.25),
        "uid_seed": "cohort-a",
        "laterality": "L",
        "window": (2000, 1000),
    }
    a = write_dx(tmp_path / "a" / "x.dcm", pix, **kwargs)
    b = write_dx(tmp_path / "b" / "x.dcm", pix, **kwargs)
    assert a.read_bytes() == b.read_bytes()
    ds = pydicom.dcmread(a)
    assert ds.Modality == "DX" and ds.ViewPosition == "AP" and ds.ImageLaterality == "L"
    assert ds.PatientAge == "075Y" and ds.PatientSex == "F"
    assert float(ds.PatientSize) == 1.62 and float(ds.PatientWeight) == 70.1
    assert str(ds.PatientName) == "" and ds.PatientBirthDate == ""
    assert [float(v) for v in ds.PixelSpacing] == [0.2, 0.25]
    assert [float(v) for v in ds.ImagerPixelSpacing] == [0.2, 0.25]
    assert float(ds.WindowCenter) == 2000 and float(ds.WindowWidth) == 1000
    assert ds.ImageComments == SYNTHETIC_NOTE
    assert ds.SOPInstanceUID == dx_uids("SYN-K-0007", "cohort-a")["SOPInstanceUID"]
    assert ds.SOPInstanceUID != dx_uids("SYN-K-0007", "cohort-b")["SOPInstanceUID"]
    assert ds.AnatomicRegionSequence[0].CodeValue == "72696002"
    unknown = pydicom.dcmread(write_dx(tmp_path / "u.dcm", pix, patient_id="P", body_part="HIP"))
    assert unknown.PatientSex == "" and unknown.PatientAge == "" and unknown.ImageLaterality == "U"


def test_dicom_age():
    assert dicom_age(75.99) == "075Y"
    assert dicom_age(0.5) == "006M"
    assert dicom_age(101) == "101Y"
    with pytest.raises(ValueError):
        dicom_age(-1)


@pytest.mark.parametrize(
    "pixels, kwargs, match",
    [
        (np.zeros((4,), np.uint16), {}, "2-D"),
        (np.full((4, 4), 5000, np.uint16), {"bits_stored": 12}, r"outside \[0, 4095\]"),
        (np.full((4, 4), -1, np.int32), {}, "outside"),
        (np.full((4, 4), 0.5), {}, "integral"),
        (np.zeros((4, 4), np.uint16), {"bits_stored": 17}, "bits_stored"),
        (np.zeros((4, 4), np.uint16), {"photometric": "RGB"}, "photometric"),
        (np.zeros((4, 4), np.uint16), {"sex": "female"}, "sex"),
        (np.zeros((4, 4), np.uint16), {"age_years": 1200}, "age"),
        (np.zeros((4, 4), np.uint16), {"height_m": 175}, "height_m"),
        (np.zeros((4, 4), np.uint16), {"rescale": (0.0, 0.0)}, "rescale"),
        (np.zeros((4, 4), np.uint16), {"extra": {"NotAKeyword": 1}}, "not a DICOM keyword"),
    ],
)
def test_bad_input_names_the_file(tmp_path, pixels, kwargs, match):
    path = tmp_path / "bad.dcm"
    with pytest.raises(ValueError, match=match) as exc:
        write_dx(path, pixels, patient_id="P", body_part="HIP", **kwargs)
    assert str(path) in str(exc.value)
    assert not path.exists()


def test_voi_lut_displays_the_same_picture_in_both_photometrics(tmp_path):
    """A VOI LUT given over the MONOCHROME2 pixel range gives the same displayed picture for both variants."""
    from pydicom.pixels import apply_voi_lut

    bits = 12
    pix = _pixels(bits)
    lut = np.rint(65535 * (np.arange(2**bits) / (2**bits - 1)) ** 0.5).astype(np.uint16)  # a gamma tone curve
    shown = {}
    for photometric in ("MONOCHROME1", "MONOCHROME2"):
        path = write_dx(
            tmp_path / f"{photometric}.dcm",
            pix,
            patient_id="P",
            body_part="HIP",
            bits_stored=bits,
            photometric=photometric,
            voi_lut=lut,
            voi_function="SIGMOID",
            burned_in=True,
        )
        ds = pydicom.dcmread(path)
        assert ds.VOILUTFunction == "SIGMOID" and ds.BurnedInAnnotation == "YES"
        assert "WindowCenter" in ds  # a DX For Presentation image always carries a window too
        out = apply_voi_lut(ds.pixel_array, ds, prefer_lut=True).astype(np.int64)
        shown[photometric] = out if photometric == "MONOCHROME2" else 65535 - out
    np.testing.assert_array_equal(shown["MONOCHROME2"], lut[pix])
    np.testing.assert_array_equal(shown["MONOCHROME1"], shown["MONOCHROME2"])
