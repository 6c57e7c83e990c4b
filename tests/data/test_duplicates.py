"""Duplicate grouping and image-folder patient ids in the index (monai_bone.data.duplicates)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from PIL import Image

from monai_bone.data.datalist import DATALIST_KEY, build_datalist
from monai_bone.data.duplicates import duplicate_components, pixel_hash


def _image(seed: int, size: int = 128) -> Image.Image:
    """A smooth random grey image (distinct per seed, survives JPEG re-encoding)."""
    rng = np.random.default_rng(seed)
    small = rng.random((8, 8))
    big = np.kron(small, np.ones((size // 8, size // 8)))
    return Image.fromarray((big * 200 + 20).astype(np.uint8))


def _kop(root: Path, n: int = 8) -> None:
    for i in range(n):
        for cls, offset in (("normal", 0), ("osteoporosis", 1000)):
            (root / cls).mkdir(parents=True, exist_ok=True)
            _image(seed=offset + i).save(root / cls / f"img{i}.png")


def _rows(path: Path) -> list[dict]:
    return list(csv.DictReader(line for line in path.read_text().splitlines() if not line.startswith("#")))


def test_hash_is_robust_to_reencoding_and_separates_different_images(tmp_path):
    img = _image(1)
    img.save(tmp_path / "a.png")
    img.save(tmp_path / "a_q40.jpg", quality=40)
    img.resize((64, 64)).save(tmp_path / "a_small.png")
    _image(2).save(tmp_path / "b.png")
    hashes = [pixel_hash(tmp_path / f, dicom=False) for f in ("a.png", "a_q40.jpg", "a_small.png", "b.png")]
    assert duplicate_components(hashes) == [0, 0, 0, 3]
    assert duplicate_components([None, None]) == [0, 1]


def test_image_folder_duplicates_and_patient_ids(tmp_path):
    src = tmp_path / "kop"
    _kop(src)
    # the same image copied into both class folders: conflicting labels
    _image(77).save(src / "normal" / "copy.png")
    _image(77).save(src / "osteoporosis" / "copy_again.png")
    # a near duplicate (re-saved as JPEG q40) with the same label under another name
    _image(3).save(src / "normal" / "img3_resaved.jpg", quality=40)
    out = tmp_path / "index" / "datalist.json"
    summary = build_datalist(src, out, task="knee", folds=2, progress=False, test_fraction=0)
    assert summary.reasons == {"conflicting_duplicate": 2}
    rejects = {r["path"].split("/kop/")[-1]: r for r in _rows(out.parent / "rejects.csv")}
    assert set(rejects) == {"normal/copy.png", "osteoporosis/copy_again.png"}
    assert "osteoporosis/copy_again.png" in rejects["normal/copy.png"]["detail"]
    assert "normal/copy.png" in rejects["osteoporosis/copy_again.png"]["detail"]

    records = {r["image"].split("/kop/")[-1]: r for r in json.loads(out.read_text())[DATALIST_KEY]}
    assert records["normal/img3_resaved.jpg"]["fold"] == records["normal/img3.png"]["fold"]
    # distinct files with one stem in different class folders are different patients
    assert records["normal/img1.png"]["patient_id"] == "normal/img1"
    assert records["osteoporosis/img1.png"]["patient_id"] == "osteoporosis/img1"
    warnings = _rows(out.parent / "warnings.csv")
    assert sum(w["code"] == "patient_id_from_file_name" for w in warnings) == 1
    assert any(w["code"] == "near_duplicate" and w["path"].endswith("img3_resaved.jpg") for w in warnings)

    # twins never straddle train/test either
    split = tmp_path / "split" / "datalist.json"
    build_datalist(src, split, task="knee", folds=2, progress=False, test_fraction=0.3, seed=3)
    recs = {r["image"].split("/kop/")[-1]: r for r in json.loads(split.read_text())[DATALIST_KEY]}
    assert recs["normal/img3_resaved.jpg"]["split"] == recs["normal/img3.png"]["split"]


def test_patient_id_column_for_image_folders(tmp_path):
    src = tmp_path / "kop"
    _kop(src, n=6)
    table = tmp_path / "patients.csv"
    rows = [f"img{i},P{i // 2}" for i in range(6)]  # two files per patient (the stem joins both class folders)
    table.write_text("PatientID,patient_id\n" + "\n".join(rows) + "\n")
    out = tmp_path / "dl.json"
    build_datalist(src, out, clinical=table, task="knee", folds=2, progress=False, test_fraction=0)
    records = json.loads(out.read_text())[DATALIST_KEY]
    assert {r["patient_id"] for r in records} == {"P0", "P1", "P2"}
    folds = {}
    for r in records:
        folds.setdefault(r["patient_id"], set()).add(r["fold"])
    assert all(len(f) == 1 for f in folds.values())
    assert not any(w["code"] == "patient_id_from_file_name" for w in _rows(tmp_path / "warnings.csv"))


def test_dct_hash_equals_imagehash_phash():
    """The matrix DCT gives imagehash.phash's bits (on a 64² grey image phash does not resize)."""
    import imagehash

    from monai_bone.data.duplicates import HASH_SIZE, PHASH_SIDE, dct_hash

    for seed in range(3):
        img = _image(seed, size=PHASH_SIDE)
        noisy = np.clip(np.asarray(img, dtype=float) + np.random.default_rng(seed).normal(0, 8, img.size), 0, 255)
        img = Image.fromarray(noisy.astype(np.uint8))
        ours = dct_hash(np.asarray(img, dtype=np.float64), HASH_SIZE)
        assert ours - imagehash.phash(img, hash_size=HASH_SIZE) == 0
