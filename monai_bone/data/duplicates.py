"""Leakage-proof grouping: exact and near-duplicate images join one group, so twins never straddle folds or train/test.

The same radiograph can reach a dataset twice: copied into two class folders, re-saved as a lower-quality JPEG,
resized, exported once as MONOCHROME1 and once as MONOCHROME2, or stored under two patient ids. If the two copies land
in different folds the model is validated on an image it trained on.

:func:`pixel_hash` decodes the pixels (pydicom for DICOM, PIL for PNG/JPEG/TIFF/BMP), samples them on a grid,
Lanczos-resamples that to a 64² thumbnail, windows it to bone-bright grey (MONOCHROME1 inverted) and takes the
``imagehash.phash`` bits of it (DCT perceptual hash, ``hash_size`` = 16 → 256 bits, an ``imagehash.ImageHash``; the
DCT as two small matrix products, :func:`dct_hash`, equal to ``imagehash.phash`` on a 64² image): robust to
re-encoding, resizing, brightness/contrast (linear modality LUT) and inversion conventions.
:func:`duplicate_components` joins images whose hashes differ in at most ``max_distance`` bits (union-find over all
pairs, vectorised). The index (:func:`monai_bone.data.datalist.build_datalist`) then

- merges the fold/test groups of the members of a component (they share every split decision),
- rejects all members of a component whose labels disagree (``conflicting_duplicate``, naming the other files),
- writes a ``near_duplicate`` warning per joined file.

Cost: the index hashes in the same file read as the header (:func:`monai_bone.data.dicom_header.read_header`).
Native (uncompressed little-endian) DICOM pixel data are not decoded by pydicom: the PixelData bytes that follow the
header are read and only the pixels of the thumbnail grid are converted (:func:`native_pixel_hash`, the same hash as
decoding the file); the grid (128-255 pixels a side) is resampled with cached Lanczos weight matrices, so a hash
costs well under a millisecond whatever the image size. Compressed DICOM (JPEG, JPEG 2000, RLE, deflate) and
PNG/JPEG files are decoded (JPEG at reduced scale), so their hashing costs a decode. ``benchmarks/bench_dedup.py``
prints throughput with hashing on vs off. ``monai-bone index --no-dedup`` skips it.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "HASH_SIZE",
    "MAX_DISTANCE",
    "THUMBNAIL",
    "dct_hash",
    "duplicate_components",
    "image_folder_patient_id",
    "grey_hash",
    "labels_conflict",
    "merge_duplicate_groups",
    "native_pixel_hash",
    "pixel_hash",
]

logger = logging.getLogger(__name__)

#: ``imagehash.phash`` size (bits = HASH_SIZE²) and the largest Hamming distance still called a duplicate. Measured on
#: 256-px SYNTHETIC radiographs (20 hip DICOM windowed to 8 bit + 20 knee PNG): the worst JPEG q40 re-save differs by
#: 12 bits, the worst half-size JPEG by 12, the worst 1.5× PNG by 16 (so a few upscaled copies are not joined); the
#: closest pair of *different* patients among 60 hip (DICOM) / 20 knee (PNG) images by 68 / 56 bits (1st percentile
#: of all pairs 84 / 64). The previous thumbnail pipeline (box 128², PIL Lanczos 64²) measured 14, 18, 26 and 66 / 60.
HASH_SIZE: int = 16
MAX_DISTANCE: int = 12
#: The pixels are sampled on a grid of at least THUMBNAIL per side, Lanczos-resampled to PHASH_SIDE² (the DCT input
#: of ``imagehash.phash`` at HASH_SIZE 16: 64²) and windowed -- cost independent of the image size.
THUMBNAIL: int = 128
PHASH_SIDE: int = 64


def _grid_step(shape: tuple[int, ...]) -> tuple[int, int]:
    """Take every step-th row and column so that each side keeps at least ``THUMBNAIL`` pixels."""
    return max(1, shape[0] // THUMBNAIL), max(1, shape[1] // THUMBNAIL)


def _window(values: np.ndarray, low: float = 0.5, high: float = 99.5) -> tuple[float, float]:
    """``np.percentile(values, (low, high))`` (linear interpolation) by one partial sort (several times faster)."""
    flat = values.reshape(-1)
    pos = np.array([low, high]) / 100.0 * (flat.size - 1)
    below = np.floor(pos).astype(int)
    above = np.minimum(below + 1, flat.size - 1)
    part = np.partition(flat, np.unique(np.concatenate([below, above])))
    lo, hi = part[below] + (part[above] - part[below]) * (pos - below)
    return float(lo), float(hi)


@functools.lru_cache(maxsize=32)
def _lanczos_matrix(n_in: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)`` Lanczos-3 resampling weights (the kernel widened by the reduction factor when shrinking, as
    PIL does), rows summing to 1: ``matrix @ column`` resamples a column of ``n_in`` pixels to ``n_out``."""
    scale = n_in / n_out
    width = max(scale, 1.0)
    offsets = (np.arange(n_in)[None, :] + 0.5 - (np.arange(n_out)[:, None] + 0.5) * scale) / width
    weights = np.sinc(offsets) * np.sinc(offsets / 3.0) * (np.abs(offsets) < 3.0)
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)


def _grey_thumbnail(arr: np.ndarray, invert: bool, decimated: bool = False) -> np.ndarray:
    """Bone-bright ``PHASH_SIDE``² grey thumbnail (float, 0..255) of a grey (or colour) pixel array.

    Every step-th pixel first (the hash is low-pass; ``decimated``: the caller did it already; the grid keeps at
    least ``THUMBNAIL`` pixels a side), Lanczos-resampled to ``PHASH_SIDE``² by two small matrix products (weights
    cached per grid shape), then its 0.5/99.5 percentile window to 0..255 (one partial sort of 4096 pixels).
    """
    a = np.asarray(arr)
    if a.ndim == 3:  # colour (H, W, C) or frames (F, H, W): one grey plane
        a = a.mean(axis=-1) if a.shape[-1] in (3, 4) else a[0]
    row_step, col_step = (1, 1) if decimated else _grid_step(a.shape)
    grid = np.asarray(a[::row_step, ::col_step], dtype=np.float32)
    if grid.size == 0:
        return np.zeros((PHASH_SIDE, PHASH_SIDE))
    rows, cols = _lanczos_matrix(grid.shape[0], PHASH_SIDE), _lanczos_matrix(grid.shape[1], PHASH_SIDE)
    thumb = (rows @ grid @ cols.T).astype(np.float64)
    lo, hi = _window(thumb)
    scaled = np.clip((thumb - lo) * (255.0 / (hi - lo)), 0.0, 255.0) if hi > lo else np.zeros_like(thumb)
    return 255.0 - scaled if invert else scaled


@functools.lru_cache(maxsize=4)
def _dct_rows(hash_size: int, side: int) -> np.ndarray:
    """The first ``hash_size`` rows of the unnormalised DCT-II matrix of size ``side`` (``scipy.fftpack.dct``'s)."""
    k = np.arange(hash_size)[:, None]
    n = np.arange(side)[None, :]
    return 2.0 * np.cos(np.pi * k * (2 * n + 1) / (2 * side))


def dct_hash(thumb: np.ndarray, hash_size: int = HASH_SIZE) -> Any:
    """``imagehash.phash``'s bits of a square grey thumbnail: the low ``hash_size``² DCT-II coefficients above their
    median, computed as two small matrix products (only the low rows of the DCT are needed)."""
    import imagehash

    rows = _dct_rows(hash_size, thumb.shape[0])
    low = rows @ thumb @ rows.T
    return imagehash.ImageHash(low > np.median(low))


def grey_hash(arr: np.ndarray, invert: bool, hash_size: int = HASH_SIZE, decimated: bool = False) -> Any:
    """Perceptual (DCT) hash of a decoded pixel array (MONOCHROME1: ``invert=True``), via :func:`_grey_thumbnail`
    and :func:`dct_hash`; an ``imagehash.ImageHash`` of ``hash_size``² bits."""
    return dct_hash(_grey_thumbnail(arr, invert, decimated), hash_size)


#: numpy dtypes of native (uncompressed, little-endian) DICOM pixel data by (BitsAllocated, PixelRepresentation).
_NATIVE_DTYPES = {(8, 0): "<u1", (8, 1): "<i1", (16, 0): "<u2", (16, 1): "<i2", (32, 0): "<u4", (32, 1): "<i4"}


def native_pixel_hash(
    data: Any,
    rows: int,
    columns: int,
    bits_allocated: int,
    bits_stored: int | None,
    signed: bool,
    invert: bool,
    offset: int = 0,
    hash_size: int = HASH_SIZE,
) -> Any:
    """Perceptual hash of native (uncompressed little-endian) single-frame grey DICOM pixel bytes, without pydicom.

    The index calls it on a memory map of the file it is reading the header from
    (:func:`monai_bone.data.dicom_header.read_header`), so only the pages holding the thumbnail grid's rows are read;
    it gives the hash that :func:`pixel_hash` gives for the decoded file (unused high bits masked, signed values
    sign-extended, as pydicom decodes them).

    Args:
        data: a buffer (bytes, memory map) holding the pixel values at ``offset``.
        rows, columns, bits_allocated, bits_stored: the image geometry from the header.
        signed: PixelRepresentation 1.
        invert: MONOCHROME1.
        offset: byte offset of the first pixel value in ``data``.
        hash_size: ``imagehash.phash`` hash size.

    Returns:
        An ``imagehash.ImageHash``, or ``None`` for a layout it does not handle (the caller decodes the file instead).
    """
    dtype = _NATIVE_DTYPES.get((bits_allocated, int(bool(signed))))
    if dtype is None or len(data) - offset < rows * columns * bits_allocated // 8:
        return None
    row_step, col_step = _grid_step((rows, columns))
    arr = np.frombuffer(data, dtype=dtype, count=rows * columns, offset=offset).reshape(rows, columns)
    grid = np.array(arr[::row_step, ::col_step])  # a copy: only the grid's pages of a memory map are touched
    del arr  # no view of ``data`` outlives this call (a memory map can then be closed)
    if bits_stored and bits_stored < bits_allocated:
        shift = bits_allocated - bits_stored
        grid = (grid << shift) >> shift if signed else grid & ((1 << bits_stored) - 1)
    return grey_hash(grid, invert, hash_size, decimated=True)


def pixel_hash(path: str | os.PathLike, dicom: bool, hash_size: int = HASH_SIZE) -> Any:
    """Perceptual hash of the decoded pixels of one image (``None`` when the pixels cannot be decoded).

    Args:
        path: DICOM or PNG/JPEG/TIFF/BMP file.
        dicom: whether the file is DICOM (decoded with pydicom; MONOCHROME1 inverted) or a PIL image.
        hash_size: ``imagehash.phash`` hash size.

    Returns:
        An ``imagehash.ImageHash`` or ``None`` (with a debug log) when decoding fails.
    """
    from PIL import Image

    try:
        if dicom:
            import pydicom

            ds = pydicom.dcmread(os.fspath(path))
            invert = str(getattr(ds, "PhotometricInterpretation", "")).upper() == "MONOCHROME1"
            return grey_hash(ds.pixel_array, invert, hash_size)
        with Image.open(path) as img:
            img.draft("L", (THUMBNAIL * 2, THUMBNAIL * 2))  # JPEG: decode at reduced scale
            # 16-bit / float images keep their values (convert("L") would clip them at 255)
            wide = img.mode in ("I", "I;16", "I;16B", "I;16L", "F")
            return grey_hash(np.asarray(img) if wide else np.asarray(img.convert("L")), False, hash_size)
    except Exception as err:  # noqa: BLE001 - a file the hash cannot decode is simply not de-duplicated
        logger.debug("%s: no pixel hash (%s: %s)", path, type(err).__name__, err)
        return None


def duplicate_components(hashes: Sequence[Any], max_distance: int = MAX_DISTANCE) -> list[int]:
    """Component index per image: images whose hashes differ in at most ``max_distance`` bits share a component.

    Args:
        hashes: ``imagehash.ImageHash`` per image (``None``: the image is its own component).
        max_distance: Hamming distance threshold.

    Returns:
        The component (the smallest member index) of each image.
    """
    n = len(hashes)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    known = [i for i, h in enumerate(hashes) if h is not None]
    if len(known) > 1:
        bits = np.stack([np.asarray(hashes[i].hash, dtype=bool).reshape(-1) for i in known])
        packed = np.packbits(bits, axis=1)
        for row, i in enumerate(known[:-1]):
            dist = np.unpackbits(np.bitwise_xor(packed[row + 1 :], packed[row]), axis=1).sum(axis=1)
            for j in np.flatnonzero(dist <= max_distance):
                a, b = find(i), find(known[row + 1 + int(j)])
                if a != b:
                    parent[max(a, b)] = min(a, b)
    return [find(i) for i in range(n)]


def labels_conflict(records: Sequence[dict], keys: Sequence[str] = ("bmd", "label"), tol: float = 1e-6) -> bool:
    """Whether duplicate records carry different labels (BMD differing by more than ``tol``, or different classes)."""
    for key in keys:
        values = [r.get(key) for r in records if r.get(key) is not None]
        if len(values) > 1 and (max(values) - min(values) > tol if key == "bmd" else len(set(values)) > 1):
            return True
    return False


def image_folder_patient_id(path: os.PathLike, root: os.PathLike, row: dict | None) -> tuple[str, bool]:
    """Patient id of an image-folder file: the clinical CSV's ``patient_id`` when given, else the file's path inside
    the source without its suffix (``normal/1`` and ``osteoporosis/1`` are different patients).

    Returns:
        ``(patient_id, from_csv)``.
    """
    value = (row or {}).get("patient_id")
    if value is not None and str(value).strip():
        return str(value).strip(), True
    rel = os.path.relpath(os.fspath(path), os.fspath(root))
    return os.path.splitext(rel)[0].replace(os.sep, "/"), False


def merge_duplicate_groups(
    records: Sequence[dict], groups: Sequence[str], hashes: Sequence[Any], max_distance: int = MAX_DISTANCE
) -> tuple[list[str], list[list[int]], list[list[int]]]:
    """Fold/test groups with duplicate images joined, and the duplicate components found.

    Args:
        records: the index records (``image``, ``bmd``/``label``).
        groups: patient group per record.
        hashes: :func:`pixel_hash` per record (``None``: not hashed).
        max_distance: Hamming distance threshold.

    Returns:
        ``(groups, consistent, conflicting)``: the merged group per record (every group touched by a duplicate
        component is joined, so all studies of both patients share every split decision); the components (record
        index lists, > 1 member) whose labels agree, and those whose labels disagree (to reject).
    """
    comp = duplicate_components(hashes, max_distance)
    members: dict[int, list[int]] = {}
    for i, c in enumerate(comp):
        members.setdefault(c, []).append(i)
    dup = [m for m in members.values() if len(m) > 1]
    conflicting = [m for m in dup if labels_conflict([records[i] for i in m])]
    consistent = [m for m in dup if m not in conflicting]
    parent: dict[str, str] = {}

    def find(g: str) -> str:
        while parent.get(g, g) != g:
            g = parent[g]
        return g

    for m in consistent:
        roots = sorted({find(groups[i]) for i in m})
        for r in roots[1:]:
            parent[r] = roots[0]
    return [find(g) for g in groups], consistent, conflicting
