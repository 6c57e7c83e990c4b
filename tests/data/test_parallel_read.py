"""Header reading in worker processes gives the index exactly what one process gives: same records, same rejects."""

from __future__ import annotations

import json

from monai_bone.data.datalist import build_datalist
from monai_bone.data.parallel_read import read_headers
from monai_bone.data.sources import open_source
from monai_bone.synthetic.synth import synthesize


def test_workers_give_the_same_index(tmp_path):
    synthesize("hip", 5, tmp_path / "hip", size=64, seed=3, progress=False)
    src = tmp_path / "hip" / "dicom"
    (src / "notes.txt").write_text("not an image\n")
    (src / "empty.dcm").write_bytes(b"")
    clinical = [tmp_path / "hip" / "clinical.csv", tmp_path / "hip" / "ground_truth.csv"]
    docs, rejects = [], []
    for workers in (1, 2):
        out = tmp_path / f"w{workers}" / "datalist.json"
        build_datalist(src, out, clinical=clinical, task="hip", folds=2, progress=False, workers=workers)
        doc = json.loads(out.read_text())
        doc.pop("run_id")
        docs.append(doc)
        rejects.append((out.parent / "rejects.csv").read_text().split("\n", 1)[1])
    assert docs[0] == docs[1] and rejects[0] == rejects[1] and len(docs[0]["training"]) == 5
    source = open_source(src, kind="dicom")
    files = source.files()
    outcomes = list(read_headers(source, files, ("PatientID",), workers=2))
    assert [p for p, _ in outcomes] == files  # file order kept across chunks
