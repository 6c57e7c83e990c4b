"""The duplicate hash computed in the index's header read (native DICOM pixel bytes, no pydicom decode) equals the
hash of the decoded file, and groups re-encoded / resized DICOM copies (monai_bone.data.duplicates)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.uid import RLELossless

from monai_bone.data.dicom_header import read_header
from monai_bone.data.duplicates import MAX_DISTANCE, duplicate_components, pixel_hash

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "transforms"))
from _xray_test_files import write_dicom  # noqa: E402


def _stored(seed: int, size: int = 160, top: int = 4000) -> np.ndarray:
    """A smooth random 12-bit image (distinct per seed)."""
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.random((10, 10)).astype(np.float32)).resize((size, size), Image.Resampling.BICUBIC)
    return (np.clip(np.asarray(img), 0, 1) * top).astype(np.uint16)


@pytest.mark.parametrize(
    ("photometric", "signed"), [("MONOCHROME2", False), ("MONOCHROME1", False), ("MONOCHROME2", True)]
)
def test_same_read_hash_equals_decoded_hash(tmp_path, photometric, signed):
    stored = _stored(1).astype(np.int32)
    if signed:
        stored = (stored - 2048).astype(np.int16)  # negative values: sign extension of 12 stored bits
    path = write_dicom(tmp_path / "a.dcm", stored, photometric=photometric, bits_stored=12)
    header = read_header(path, pixel_hash=True)
    assert header.pixel_hash is not None
    assert header.pixel_hash - pixel_hash(path, dicom=True) == 0
    assert read_header(path).pixel_hash is None  # the plain header read does not touch the pixels


def test_reencoded_and_resized_dicom_copies_share_a_component(tmp_path):
    original = write_dicom(tmp_path / "a.dcm", _stored(1), bits_stored=12)
    ds = pydicom.dcmread(original)
    ds.compress(RLELossless)  # compressed: hashed through the decoder
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    ds.save_as(tmp_path / "a_rle.dcm", enforce_file_format=True)
    half = np.asarray(Image.fromarray(_stored(1).astype(np.float32)).resize((80, 80), Image.Resampling.BILINEAR))
    write_dicom(tmp_path / "a_half.dcm", half.astype(np.uint16), bits_stored=12)
    inverted = write_dicom(tmp_path / "a_inv.dcm", 4095 - _stored(1), photometric="MONOCHROME1", bits_stored=12)
    other = write_dicom(tmp_path / "b.dcm", _stored(2), bits_stored=12)
    names = [original, tmp_path / "a_rle.dcm", tmp_path / "a_half.dcm", inverted, other]
    hashes = [read_header(p, pixel_hash=True).pixel_hash for p in names]
    assert read_header(tmp_path / "a_rle.dcm").transfer_syntax == RLELossless
    assert hashes[1] - hashes[0] == 0  # lossless re-encoding: the same pixels
    assert hashes[3] - hashes[0] <= 2  # MONOCHROME1 with inverted values: the same bone-bright image
    assert hashes[2] - hashes[0] <= MAX_DISTANCE
    assert hashes[4] - hashes[0] > 3 * MAX_DISTANCE
    assert duplicate_components(hashes) == [0, 0, 0, 0, 4]
