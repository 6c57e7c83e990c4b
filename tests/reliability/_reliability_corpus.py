"""Shared helpers of the reliability tests: a tiny synthetic cohort with planted identifiers, a corpus of bad inputs,
a hand-made model for inference, subprocess runs of the bundles, and a grep for planted identifiers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pydicom
import pydicom.config
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    ExplicitVRLittleEndian,
    RLELossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)

REPO = Path(__file__).resolve().parents[2]
BUNDLES = REPO / "bundles"

#: Direct identifiers planted into every input DICOM (and a column of the clinical CSV); no output may contain them.
PLANTED_NAME = "Zzphiname^Janedoe"
PLANTED_BIRTH_DATE = "19230517"
PLANTED_ADDRESS = "17 Phistreet Nowheretown"
#: Byte strings searched for in every output file (name parts separately: a writer could split at "^").
PLANTED_NEEDLES: tuple[bytes, ...] = (b"Zzphiname", b"Janedoe", PLANTED_BIRTH_DATE.encode(), b"Phistreet")

#: One BLAS thread per process: the test machine is shared, and deterministic comparisons need a fixed thread count.
SUBPROCESS_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1"}


def plant_identifiers(path: Path, birth_date: str = PLANTED_BIRTH_DATE) -> None:
    """Add PatientName, PatientBirthDate and PatientAddress to a DICOM file (rewritten in place).

    Validation is off while planting, so that an invalid value (e.g. a malformed date) can be planted without pydicom
    warning about it here -- a warning quoting it must come from the code under test.
    """
    settings = pydicom.config.settings
    modes = settings.reading_validation_mode, settings.writing_validation_mode
    settings.reading_validation_mode = settings.writing_validation_mode = pydicom.config.IGNORE
    try:
        ds = pydicom.dcmread(path)
        ds.PatientName = PLANTED_NAME
        ds.PatientBirthDate = birth_date
        ds.PatientAddress = PLANTED_ADDRESS
        ds.save_as(path, enforce_file_format=True)
    finally:
        settings.reading_validation_mode, settings.writing_validation_mode = modes


def synth_cohort(root: Path, n: int, seed: int = 0, size: int = 64) -> Path:
    """A synthetic hip cohort (DICOM) with identifiers planted into every file; returns its folder."""
    from monai_bone.synthetic.synth import synthesize

    out = root / "cohort"
    synthesize("hip", n, out, seed=seed, size=size, fmt="dicom", progress=False)
    for path in sorted((out / "dicom").rglob("*.dcm")):
        plant_identifiers(path)
    return out


def _base_dataset(rows: int, cols: int, *, sop_class=SecondaryCaptureImageStorage, modality: str = "DX") -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientID = "BAD-0001"
    ds.PatientName = PLANTED_NAME
    ds.PatientBirthDate = PLANTED_BIRTH_DATE
    ds.PatientAddress = PLANTED_ADDRESS
    ds.PatientAge = "070Y"
    ds.PatientSex = "F"
    ds.Modality = modality
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    return ds


def _write(ds: Dataset, path: Path) -> Path:
    pydicom.dcmwrite(path, ds, enforce_file_format=True)
    return path


def _rle_constant_8bit(rows: int, cols: int, value: int = 0) -> bytes:
    """One RLE Lossless frame of an 8-bit constant image (runs never cross rows), built without an encoder."""
    row = bytearray()
    left = cols
    while left:
        run = min(left, 128)
        row += bytes([257 - run if run > 1 else 0, value]) if run > 1 else bytes([0, value])
        left -= run
    segment = bytes(row) * rows
    if len(segment) % 2:
        segment += b"\x00"
    header = (1).to_bytes(4, "little") + (64).to_bytes(4, "little") + bytes(56)
    return header + segment


def make_bad_corpus(folder: Path, good_dicom: Path) -> dict[str, str]:
    """Write one file per bad-input case into ``folder``; returns ``{file name: expected index reject reason}``
    (``"used"`` for the file that passes the header-only index and fails only when its pixels are decoded).

    Cases: truncated, zero-byte, garbage and text "DICOM", missing PixelData, multi-frame, RGB secondary capture,
    3x3 and 10000x10000 images (the latter a genuine RLE-compressed file of 1.6 MB), corrupt compressed pixel data.
    """
    folder.mkdir(parents=True, exist_ok=True)
    expected: dict[str, str] = {}
    raw = good_dicom.read_bytes()

    (folder / "truncated.dcm").write_bytes(raw[: int(len(raw) * 0.6)])
    expected["truncated.dcm"] = "no_pixel_data"
    (folder / "zero_bytes.dcm").write_bytes(b"")
    expected["zero_bytes.dcm"] = "not_dicom"
    rng = np.random.default_rng(7)
    (folder / "garbage.dcm").write_bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    expected["garbage.dcm"] = "not_dicom"
    (folder / "notes.dcm").write_text("PatientID,age\nX,70\n", encoding="utf-8")
    expected["notes.dcm"] = "not_dicom"

    ds = _base_dataset(64, 64)
    _write(ds, folder / "no_pixel_data.dcm")
    expected["no_pixel_data.dcm"] = "no_pixel_data"

    ds = _base_dataset(32, 32)
    ds.NumberOfFrames = 3
    ds.PixelData = np.zeros((3, 32, 32), dtype="<u2").tobytes()
    _write(ds, folder / "multi_frame.dcm")
    expected["multi_frame.dcm"] = "unsupported_image"

    ds = _base_dataset(32, 32, modality="OT")
    ds.Modality = "DX"  # a colour secondary capture labelled as a radiograph
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "RGB"
    ds.PlanarConfiguration = 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelData = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8).tobytes()
    _write(ds, folder / "rgb_secondary_capture.dcm")
    expected["rgb_secondary_capture.dcm"] = "unsupported_image"

    ds = _base_dataset(3, 3)
    ds.PixelData = np.arange(9, dtype="<u2").tobytes()
    _write(ds, folder / "tiny_3x3.dcm")
    expected["tiny_3x3.dcm"] = "image_size"

    ds = _base_dataset(10000, 10000)
    ds.file_meta.TransferSyntaxUID = RLELossless
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelData = encapsulate([_rle_constant_8bit(10000, 10000)])
    ds["PixelData"].VR = "OB"
    _write(ds, folder / "huge_10000x10000.dcm")
    expected["huge_10000x10000.dcm"] = "image_size"

    # header and fragment structure are fine, the RLE payload is not: only decoding finds out
    ds = _base_dataset(64, 64)
    ds.PatientID = "BAD-PIXELS"
    ds.file_meta.TransferSyntaxUID = RLELossless
    ds.PixelData = encapsulate([bytes(rng.integers(0, 256, 300, dtype=np.uint8))])
    ds["PixelData"].VR = "OB"
    _write(ds, folder / "corrupt_pixels.dcm")
    expected["corrupt_pixels.dcm"] = "used"
    return expected


def copy_pydicom_corpus(folder: Path) -> list[str]:
    """Copy every file of pydicom's test corpus (odd, compressed, CT/MR/RT, DICOMDIR, ...) into ``folder``."""
    from pydicom.data import get_testdata_files

    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i, path in enumerate(sorted(p for p in get_testdata_files() if os.path.isfile(p))):
        name = f"pydicom_{i:03d}_{Path(path).name}"
        shutil.copyfile(path, folder / name)
        names.append(name)
    return names


def write_model(bundle_dir: Path, records: Sequence[Mapping], spatial_size: int = 64) -> None:
    """An untrained hip model (``models/model.pt``, ``models/clinical_stats.json``) for inference tests."""
    import torch

    from monai_bone.networks import XAttnBMD
    from monai_bone.transforms import ClinicalStats

    models = bundle_dir / "models"
    models.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    config = json.loads((bundle_dir / "configs" / "inference.json").read_text(encoding="utf-8"))
    texture = {k: config[k] for k in ("texture_features", "texture_kernel_size") if k in config}  # the bundle's net
    net = XAttnBMD(spatial_dims=2, in_channels=1, out_channels=1, target_mean=0.85, target_std=0.13, **texture)
    torch.save(net.state_dict(), models / "model.pt")
    ClinicalStats.fit(list(records)).save(models / "clinical_stats.json")


def bundle_copy(bundle: str, dest: Path) -> Path:
    """A private copy of a bundle's configs and docs (runs write models/, eval/, runs/ beside them)."""
    target = dest / bundle
    shutil.copytree(BUNDLES / bundle / "configs", target / "configs")
    return target


def bundle_command(configs: Sequence[str], overrides: Mapping) -> list[str]:
    """``python -m monai.bundle run`` with the given config files (relative to the bundle) and overrides."""
    files = "[" + ",".join(f"'configs/{c}'" for c in configs) + "]"
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", files]
    for k, v in overrides.items():
        cmd += [f"--{k}", str(v)]
    return cmd


def run_logged(cmd: Sequence[str], cwd: Path, log: Path, timeout: int = 240) -> subprocess.CompletedProcess:
    """Run a command with stdout+stderr going to ``log`` (kept for the identifier grep)."""
    env = {**os.environ, **SUBPROCESS_ENV}
    with open(log, "w", encoding="utf-8") as out:
        return subprocess.run(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=timeout)


def grep_planted(roots: Iterable[Path], skip: Iterable[Path] = ()) -> list[str]:
    """Files under ``roots`` (recursively, zips not opened) containing a planted identifier, as ``file: needle``."""
    skipped = {Path(p).resolve() for p in skip}
    hits = []
    for root in roots:
        root = Path(root)
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            resolved = path.resolve()
            if resolved in skipped or any(s in resolved.parents for s in skipped):
                continue
            data = path.read_bytes()
            for needle in PLANTED_NEEDLES:
                if needle.lower() in data.lower():
                    hits.append(f"{path}: {needle.decode()}")
    return hits
