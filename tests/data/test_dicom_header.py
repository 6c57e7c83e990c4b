"""Header-only DICOM reading: age/sex parsing, X-ray checks, pixel-data sanity and decoder availability."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.pixels import get_decoder
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    DigitalXRayImageStorageForProcessing,
    JPEG2000Lossless,
    RLELossless,
)

from monai_bone.data.dicom_header import read_header, sniff_file_type
from monai_bone.data.dicom_pixels import check_decodable
from monai_bone.data.dicom_records import REJECT_REASONS, RejectError
from monai_bone.data.dicom_values import normalise_sex, parse_age
from monai_bone.synthetic.dicom_writer import write_dx


def _dx(path: Path, patient_id: str = "P-1", **kwargs) -> Path:
    pixels = (np.arange(48 * 40).reshape(48, 40) % 4000).astype(np.uint16)
    args = {"body_part": "HIP", "sex": "F", "age_years": 75.6, "height_m": 1.62, "weight_kg": 61.5}
    args.update(kwargs)
    return write_dx(path, pixels, patient_id=patient_id, **args)


def _modify(src: Path, dst: Path, **attrs) -> Path:
    ds = pydicom.dcmread(src)
    for name, value in attrs.items():
        if value is None:
            delattr(ds, name)
        else:
            setattr(ds, name, value)
    ds.save_as(dst, enforce_file_format=True)
    return dst


def _reject(path: Path) -> RejectError:
    with pytest.raises(RejectError) as info:
        read_header(path)
    assert info.value.reason in REJECT_REASONS
    return info.value


@pytest.mark.parametrize(
    "text, years",
    [
        ("075Y", 75.0),
        ("900M", 75.0),
        ("052W", 52 * 7 / 365.25),
        ("010D", 10 / 365.25),
        ("75", 75.0),
        (" 080y ", 80.0),
        ("74.5", 74.5),
        (70, 70.0),
    ],
)
def test_parse_age(text, years):
    assert math.isclose(parse_age(text), years, rel_tol=1e-12)


@pytest.mark.parametrize("text", ["", "   ", None])
def test_parse_age_empty(text):
    assert parse_age(text) is None


@pytest.mark.parametrize("text", ["abc", "75X", "-5", "Y075", "nan"])
def test_parse_age_invalid(text):
    with pytest.raises(ValueError, match="age"):
        parse_age(text)


@pytest.mark.parametrize(
    "value, code",
    [("F", "F"), ("m", "M"), (" female ", "F"), ("Male", "M"), ("W", "F"), (0, "F"), ("1", "M"), ("", None)],
)
def test_normalise_sex(value, code):
    assert normalise_sex(value) == code


@pytest.mark.parametrize("value", ["O", "x", 2, "unknown"])
def test_normalise_sex_invalid(value):
    with pytest.raises(ValueError, match="sex"):
        normalise_sex(value)


def test_read_header_dx_fields(tmp_path):
    path = _dx(tmp_path / "noext", photometric="MONOCHROME1")  # any file name works
    header = read_header(path, keys=("PatientID", "StudyID"))
    assert header.modality == "DX"
    assert header.photometric == "MONOCHROME1"
    assert header.presentation_intent == "FOR PRESENTATION"
    assert header.body_part == "HIP"
    assert (header.rows, header.columns, header.bits_stored) == (48, 40, 12)
    assert header.synthetic is True
    assert header.patient_id == "P-1"
    assert header.keys == {"PatientID": "P-1", "StudyID": "1"}
    assert header.clinical == {"age_xray": 75.0, "sex": "F", "height": 1.62, "weight": 61.5}
    assert header.warnings == []
    assert header.sop_instance_uid and header.study_instance_uid


def test_read_header_not_synthetic_and_bad_fields(tmp_path):
    path = _dx(tmp_path / "a.dcm", synthetic=False)
    bad = _modify(path, tmp_path / "bad.dcm", PatientAge="7S5Y", PatientSex="O", PatientWeight="0")
    header = read_header(bad)
    assert header.synthetic is False
    assert header.clinical["age_xray"] is None and header.clinical["sex"] is None
    assert header.clinical["weight"] is None and header.clinical["height"] == 1.62
    fields = {(w.field, w.code) for w in header.warnings}
    assert {("age_xray", "unparseable"), ("sex", "unknown_code"), ("weight", "implausible")} <= fields
    assert all(w.source == "dicom" for w in header.warnings)


def test_height_in_cm_is_returned_raw(tmp_path):
    # unit correction is the index's job (it applies to CSV values too)
    path = _modify(_dx(tmp_path / "a.dcm"), tmp_path / "cm.dcm", PatientSize="162")
    assert read_header(path).clinical["height"] == 162.0


def test_dx_for_processing_is_kept_with_a_note(tmp_path):
    path = _modify(
        _dx(tmp_path / "a.dcm"),
        tmp_path / "proc.dcm",
        PresentationIntentType=None,
        SOPClassUID=DigitalXRayImageStorageForProcessing,
    )
    header = read_header(path)
    assert header.presentation_intent == "FOR PROCESSING"
    assert [w.code for w in header.warnings if w.field == "presentation_intent"] == ["note"]


def test_missing_modality_uses_sop_class(tmp_path):
    path = _modify(_dx(tmp_path / "a.dcm"), tmp_path / "nomod.dcm", Modality=None)
    assert read_header(path).modality == "DX"


@pytest.mark.parametrize("modality", ["CT", "MR", "MG", "XA"])
def test_other_modalities_rejected(tmp_path, modality):
    path = _modify(_dx(tmp_path / "a.dcm"), tmp_path / "m.dcm", Modality=modality)
    err = _reject(path)
    assert err.reason == "not_xray"
    assert f"Modality {modality}" in err.detail


def test_pydicom_ct_and_dicomdir_are_not_xray():
    err = _reject(Path(get_testdata_file("CT_small.dcm")))
    assert err.reason == "not_xray" and "CT" in err.detail
    err = _reject(Path(get_testdata_file("DICOMDIR")))
    assert err.reason == "not_xray" and "Directory" in err.detail


def test_not_dicom_files(tmp_path):
    (tmp_path / "notes.txt").write_text("this is not DICOM\n" * 20)
    err = _reject(tmp_path / "notes.txt")
    assert err.reason == "not_dicom" and "text file" in err.detail
    from PIL import Image

    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "x.dcm", format="PNG")
    err = _reject(tmp_path / "x.dcm")
    assert err.reason == "not_dicom" and "PNG" in err.detail
    (tmp_path / "empty.dcm").write_bytes(b"")
    err = _reject(tmp_path / "empty.dcm")
    assert err.reason == "not_dicom" and "empty" in err.detail
    assert "PNG" in sniff_file_type(tmp_path / "x.dcm")


def test_unreadable_files(tmp_path):
    err = _reject(tmp_path / "nope.dcm")
    assert err.reason == "unreadable"
    data = _dx(tmp_path / "a.dcm").read_bytes()
    # 'DICM' prefix followed by a file meta group whose length runs far past the end of the file
    corrupt = data[:132] + b"\x02\x00\x00\x00UL\x04\x00\xff\xff\xff\x7f" + bytes(range(256))
    (tmp_path / "corrupt.dcm").write_bytes(corrupt)
    err = _reject(tmp_path / "corrupt.dcm")
    assert err.reason == "unreadable" and "corrupt" in err.detail


def test_truncated_native_pixel_data(tmp_path):
    data = _dx(tmp_path / "a.dcm").read_bytes()
    (tmp_path / "t.dcm").write_bytes(data[:-500])
    err = _reject(tmp_path / "t.dcm")
    assert err.reason == "no_pixel_data"
    assert "truncated" in err.detail and "3840 bytes" in err.detail  # 48 x 40 x 2 bytes declared


def test_file_cut_inside_header(tmp_path):
    data = _dx(tmp_path / "a.dcm").read_bytes()
    (tmp_path / "t.dcm").write_bytes(data[:400])
    err = _reject(tmp_path / "t.dcm")
    assert err.reason == "no_pixel_data" and "no PixelData" in err.detail


def test_missing_and_short_pixel_data(tmp_path):
    path = _dx(tmp_path / "a.dcm")
    err = _reject(_modify(path, tmp_path / "nopix.dcm", PixelData=None))
    assert err.reason == "no_pixel_data" and "no PixelData" in err.detail
    err = _reject(_modify(path, tmp_path / "short.dcm", PixelData=b"\x00\x01" * 100))
    assert err.reason == "no_pixel_data" and "needs 3840" in err.detail


def test_unsupported_images(tmp_path):
    path = _dx(tmp_path / "a.dcm")
    err = _reject(_modify(path, tmp_path / "rgb.dcm", PhotometricInterpretation="RGB"))
    assert err.reason == "unsupported_image" and "RGB" in err.detail
    err = _reject(_modify(path, tmp_path / "mf.dcm", NumberOfFrames=2, PixelData=b"\x00" * (48 * 40 * 4)))
    assert err.reason == "unsupported_image" and "multi-frame" in err.detail


@pytest.mark.parametrize("syntax", [RLELossless, JPEG2000Lossless], ids=["rle", "j2k"])
def test_compressed_dx_used_and_truncation_detected(tmp_path, syntax):
    ds = pydicom.dcmread(_dx(tmp_path / "a.dcm"))
    ds.compress(syntax)
    ds.save_as(tmp_path / "c.dcm", enforce_file_format=True)
    assert read_header(tmp_path / "c.dcm").transfer_syntax == str(syntax)
    data = (tmp_path / "c.dcm").read_bytes()
    (tmp_path / "ct.dcm").write_bytes(data[:-60])
    err = _reject(tmp_path / "ct.dcm")
    assert err.reason == "no_pixel_data" and "truncated" in err.detail and "fragment" in err.detail


def test_deflated_dx_used(tmp_path):
    ds = pydicom.dcmread(_dx(tmp_path / "a.dcm"))
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    ds.save_as(tmp_path / "d.dcm", enforce_file_format=True)
    assert read_header(tmp_path / "d.dcm").transfer_syntax == str(DeflatedExplicitVRLittleEndian)


def test_undecodable_private_syntax(tmp_path):
    ds = pydicom.dcmread(_dx(tmp_path / "a.dcm"))
    ds.file_meta.TransferSyntaxUID = "1.3.6.1.4.1.99999.1.2"
    pydicom.dcmwrite(tmp_path / "u.dcm", ds, implicit_vr=False, little_endian=True, enforce_file_format=True)
    err = _reject(tmp_path / "u.dcm")
    assert err.reason == "undecodable" and "1.3.6.1.4.1.99999.1.2" in err.detail


def test_undecodable_when_plugin_missing(tmp_path, monkeypatch):
    """Simulate a missing decoder plugin through pydicom's own availability bookkeeping."""
    ds = pydicom.dcmread(_dx(tmp_path / "a.dcm"))
    ds.compress(JPEG2000Lossless)
    ds.save_as(tmp_path / "c.dcm", enforce_file_format=True)
    decoder = get_decoder(JPEG2000Lossless)
    monkeypatch.setattr(decoder, "_available", {})
    monkeypatch.setattr(decoder, "_unavailable", {"pylibjpeg": ("pylibjpeg>=2.0", "pylibjpeg-openjpeg>=2.0")})
    check_decodable.cache_clear()
    try:
        assert decoder.is_available is False
        err = _reject(tmp_path / "c.dcm")
    finally:
        check_decodable.cache_clear()
    assert err.reason == "undecodable"
    assert "JPEG 2000" in err.detail and "pylibjpeg-openjpeg" in err.detail


def test_check_decodable_available_syntaxes():
    assert check_decodable("1.2.840.10008.1.2.1") is None
    assert check_decodable(str(RLELossless)) is None
    assert "no pixel data decoder" in check_decodable("1.2.3.4.5")


def test_never_decodes_pixels(tmp_path, monkeypatch):
    """read_header must not touch pixel decoding: make every decoder call fail."""
    ds = pydicom.dcmread(_dx(tmp_path / "a.dcm"))
    ds.compress(RLELossless)
    ds.save_as(tmp_path / "c.dcm", enforce_file_format=True)

    def boom(*args, **kwargs):
        raise AssertionError("pixel data was decoded")

    from pydicom.pixels.decoders.base import Decoder

    monkeypatch.setattr(Decoder, "as_array", boom)
    monkeypatch.setattr(Decoder, "as_buffer", boom)
    monkeypatch.setattr(Decoder, "iter_array", boom)
    assert read_header(tmp_path / "c.dcm").modality == "DX"
    with pytest.raises(AssertionError, match="decoded"):
        pydicom.dcmread(tmp_path / "c.dcm").pixel_array  # noqa: B018 - the guard itself works


def test_reject_error_validates_reason():
    with pytest.raises(ValueError, match="unknown reject reason"):
        RejectError("bogus", "x")


@pytest.mark.parametrize(
    "limits", [(256, 512), (256, 3000), (3000, 4000), (100_000, 200_000)], ids=["file", "grown", "first", "whole"]
)
def test_header_parsed_in_memory_equals_file_parse(tmp_path, monkeypatch, limits):
    """The header is parsed from the first bytes read (grown when the header is longer, else the file itself): the
    result and every reject are those of the default read, whichever path is taken (files larger than each limit)."""
    import monai_bone.data.dicom_header as dicom_header

    ds = pydicom.dcmread(_dx(tmp_path / "a.dcm"))
    ds.add_new(0x00091010, "LO", "MONAI-BONE TEST")  # private creator, then a long private value in the header
    ds.add_new(0x00091011, "OB", bytes(range(256)) * 4)
    ds.save_as(tmp_path / "long.dcm", enforce_file_format=True)
    data = (tmp_path / "long.dcm").read_bytes()
    (tmp_path / "cut_pixels.dcm").write_bytes(data[:-500])
    (tmp_path / "cut_header.dcm").write_bytes(data[:700])
    (tmp_path / "pixels_gone.dcm").write_bytes(data[: data.rfind(b"\xe0\x7f\x10\x00")] + b"\x00" * 200)
    names = ["long.dcm", "cut_pixels.dcm", "cut_header.dcm", "pixels_gone.dcm"]
    assert data.rfind(b"\xe0\x7f\x10\x00") in range(2600, 2900) and len(data) > 6000  # the limits straddle these

    def outcome(name):
        try:
            return read_header(tmp_path / name)
        except RejectError as err:
            return (err.reason, err.detail)

    expected = {name: outcome(name) for name in names}
    assert expected["long.dcm"].patient_id == "P-1" and expected["long.dcm"].rows == 48
    assert [expected[n][0] for n in names[1:]] == ["no_pixel_data"] * 3
    monkeypatch.setattr(dicom_header, "HEAD_BYTES", limits[0])
    monkeypatch.setattr(dicom_header, "HEAD_BYTES_MAX", limits[1])
    for name in names:
        assert outcome(name) == expected[name], name
