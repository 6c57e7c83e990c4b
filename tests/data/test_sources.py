"""Source discovery: DICOM folders (any file names), KOP-style class folders, auto-detection, URL dispatch."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from monai_bone.constants import KNEE_LABELS_BINARY, KNEE_LABELS_THREE, SYNTHETIC_NOTE
from monai_bone.data.dicom_records import RejectError
from monai_bone.data.sources import (
    DicomFolderSource,
    ImageFolderSource,
    detect_source_kind,
    open_source,
)
from monai_bone.synthetic.dicom_writer import write_dx


def _png(path, synthetic=False, mode="L"):
    path.parent.mkdir(parents=True, exist_ok=True)
    info = PngImagePlugin.PngInfo()
    if synthetic:
        info.add_text("Comment", SYNTHETIC_NOTE)
    Image.fromarray(np.full((16, 12), 100, np.uint8)).convert(mode).save(path, format="PNG", pnginfo=info)
    return path


def _dx(path, patient_id="P1"):
    return write_dx(path, np.ones((16, 16), np.uint16), patient_id=patient_id, body_part="KNEE", age_years=60)


def test_dicom_folder_lists_every_file_recursively(tmp_path):
    _dx(tmp_path / "a" / "b" / "IM0001")  # no extension
    _dx(tmp_path / "x.dcm", "P2")
    (tmp_path / "a" / "notes.txt").write_text("hello")
    (tmp_path / "out.json").write_text("{}")
    src = DicomFolderSource(tmp_path, exclude=[tmp_path / "out.json"])
    names = [p.relative_to(tmp_path).as_posix() for p in src.files()]
    assert names == ["x.dcm", "a/notes.txt", "a/b/IM0001"]
    image = src.read(tmp_path / "a" / "b" / "IM0001")
    assert image.patient_id == "P1" and image.modality == "DX" and image.class_name is None
    assert image.key_values == {"PatientID": "P1"} and image.clinical["age_xray"] == 60.0
    with pytest.raises(RejectError) as info:
        src.read(tmp_path / "a" / "notes.txt")
    assert info.value.reason == "not_dicom"
    assert src.labels is None


def test_detect_kind(tmp_path):
    _dx(tmp_path / "dicom" / "a.dcm")
    assert detect_source_kind(tmp_path / "dicom") == "dicom"
    _png(tmp_path / "kop" / "Normal" / "N1.png")
    assert detect_source_kind(tmp_path / "kop") == "kop"
    _png(tmp_path / "nested" / "train" / "osteoporosis" / "OP1.png")
    assert detect_source_kind(tmp_path / "nested") == "kop"
    (tmp_path / "empty_classes" / "normal").mkdir(parents=True)  # a class folder without images is not enough
    assert detect_source_kind(tmp_path / "empty_classes") == "dicom"


def test_kop_folder_classes_and_labels(tmp_path):
    _png(tmp_path / "normal" / "N1.png", synthetic=True)
    _png(tmp_path / "train" / "Osteoporosis" / "OP1.png", mode="RGB")
    _png(tmp_path / "loose.png")
    src = open_source(tmp_path)
    assert isinstance(src, ImageFolderSource) and src.kind == "kop"
    assert src.labels == KNEE_LABELS_BINARY
    n1 = src.read(tmp_path / "normal" / "N1.png")
    assert (n1.class_name, n1.patient_id, n1.key_values) == ("normal", "N1", {"PatientID": "N1"})
    assert n1.synthetic is True and n1.photometric == "MONOCHROME2" and n1.modality is None
    op1 = src.read(tmp_path / "train" / "Osteoporosis" / "OP1.png")
    assert op1.class_name == "osteoporosis" and op1.synthetic is False and op1.photometric == "RGB"
    assert src.read(tmp_path / "loose.png").class_name is None
    _png(tmp_path / "osteopenia" / "P1.png")
    assert ImageFolderSource(tmp_path).labels == KNEE_LABELS_THREE


def test_kop_rejects_non_images(tmp_path):
    _png(tmp_path / "normal" / "N1.png")
    (tmp_path / "normal" / "readme.txt").write_text("text")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "normal" / "x.gif", format="GIF")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "normal" / "t.tif", format="TIFF")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "normal" / "j.jpg", format="JPEG")
    src = open_source(tmp_path, kind="kop")
    with pytest.raises(RejectError) as info:
        src.read(tmp_path / "normal" / "readme.txt")
    assert info.value.reason == "not_image" and "text" in info.value.detail
    with pytest.raises(RejectError) as info:
        src.read(tmp_path / "normal" / "x.gif")
    assert info.value.reason == "not_image" and "GIF" in info.value.detail
    # TIFF (and BMP) are indexed like PNG/JPEG: the loader reads them (monai_bone.data.image_formats)
    assert src.read(tmp_path / "normal" / "t.tif").class_name == "normal"
    assert src.read(tmp_path / "normal" / "j.jpg").class_name == "normal"


def test_open_source_errors(tmp_path):
    # a URL opens a DICOMweb source (no network until its files are listed; see test_dicomweb.py)
    assert open_source("https://pacs.example.org/dicom-web", cache=tmp_path / "cache").kind == "dicomweb"
    with pytest.raises(ValueError, match="unknown source kind"):
        open_source(tmp_path, kind="pacs")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        open_source(tmp_path / "missing")
    (tmp_path / "f.dcm").write_bytes(b"x")
    with pytest.raises(ValueError, match="not a folder"):
        open_source(tmp_path / "f.dcm")
    with pytest.raises(ValueError, match="unknown source kind"):
        open_source(tmp_path, kind="pacs")
    assert isinstance(open_source(tmp_path, kind="dicom"), DicomFolderSource)
