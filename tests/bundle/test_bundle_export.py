"""Bundle export/import: sha256 manifest, allow-listed content, tamper refusal, identical predictions."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
import torch

from monai_bone.bundle import (
    MANIFEST_NAME,
    SUMS_NAME,
    BundleIntegrityError,
    export_bundle,
    import_bundle,
    sha256_file,
    untrained_copy,
    verify_archive,
)

P = "toy/"  # the archive's top folder (the bundle folder's name)


def _toy_bundle(root: Path) -> Path:
    """A minimal bundle (linear network) plus files that must never be exported."""
    (root / "configs").mkdir(parents=True)
    (root / "models").mkdir()
    (root / "docs").mkdir()
    meta = {"name": "toy", "version": "0.1.0", "network_data_format": {"inputs": {}, "outputs": {}}}
    (root / "configs" / "metadata.json").write_text(json.dumps(meta))
    inference = {
        "bundle_root": ".",
        "network_def": {"_target_": "torch.nn.Linear", "in_features": 4, "out_features": 1},
        "stats": "$@bundle_root + '/models/clinical_stats.json'",
    }
    (root / "configs" / "inference.json").write_text(json.dumps(inference))
    (root / "configs" / "logging.conf").write_text("[loggers]\nkeys=root\n")
    (root / "docs" / "README.md").write_text("# toy bundle\n")
    (root / "LICENSE").write_text("Apache-2.0\n")
    torch.manual_seed(0)
    torch.save(torch.nn.Linear(4, 1).state_dict(), root / "models" / "model.pt")
    (root / "models" / "clinical_stats.json").write_text(json.dumps({"mean": {"age_xray": 75.0}}))
    # never exported: other checkpoints, per-study outputs, logs, data
    torch.save({"trainer": {"epoch": 1}}, root / "models" / "checkpoint_epoch=1.pt")
    (root / "eval").mkdir()
    (root / "eval" / "predictions.csv").write_text("PatientID,bmd\nSYN-H-0001,0.8\n")
    (root / "docs" / "example.dcm").write_bytes(b"\0" * 132 + b"DICM")
    (root / "train.log").write_text("epoch 1 loss 0.1\n")
    return root


@pytest.fixture
def exported(tmp_path: Path) -> tuple[Path, Path]:
    bundle = _toy_bundle(tmp_path / "toy")
    archive = tmp_path / "toy.zip"
    export_bundle(bundle, archive)
    return bundle, archive


def _rewrite(archive: Path, out: Path, change: dict[str, bytes | None], add: dict[str, bytes] | None = None) -> Path:
    """Copy ``archive`` to ``out`` with some members replaced (bytes) or dropped (None), keeping the manifest."""
    with zipfile.ZipFile(archive) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename in change:
                if change[info.filename] is None:
                    continue
                data = change[info.filename]
            dst.writestr(info.filename, data)
        for name, data in (add or {}).items():
            dst.writestr(name, data)
    return out


def test_export_contents_and_manifest(exported: tuple[Path, Path]) -> None:
    bundle, archive = exported
    with zipfile.ZipFile(archive) as zf:
        names = {n.removeprefix(P) for n in zf.namelist()}
        assert all(n.startswith(P) for n in zf.namelist())  # MONAI layout: one <bundle_name>/ top folder
        manifest = json.loads(zf.read(P + MANIFEST_NAME))
        sums = zf.read(P + SUMS_NAME).decode()
    expected = {
        "configs/metadata.json",
        "configs/inference.json",
        "configs/logging.conf",
        "docs/README.md",
        "LICENSE",
        "models/model.pt",
        "models/model.ts",
        "models/clinical_stats.json",
    }
    assert names == expected | {MANIFEST_NAME, SUMS_NAME}
    listed = {f["path"]: f["sha256"] for f in manifest["files"]}
    assert set(listed) == expected
    assert listed["models/model.pt"] == sha256_file(bundle / "models" / "model.pt")
    assert manifest["bundle_name"] == "toy" and manifest["hash_type"] == "sha256"
    assert all(f"{h}  {p}" in sums for p, h in listed.items())
    # the TorchScript model is the checkpointed network
    with zipfile.ZipFile(archive) as zf:
        ts_bytes = zf.read(P + "models/model.ts")
    ts_path = bundle.parent / "check.ts"
    ts_path.write_bytes(ts_bytes)
    ts = torch.jit.load(str(ts_path))
    net = torch.nn.Linear(4, 1)
    net.load_state_dict(torch.load(bundle / "models" / "model.pt", weights_only=True))
    x = torch.randn(3, 4)
    assert torch.equal(ts(x), net(x))


def test_import_roundtrip_identical(exported: tuple[Path, Path], tmp_path: Path) -> None:
    bundle, archive = exported
    out = import_bundle(archive, tmp_path / "imported")
    for rel in ("models/model.pt", "configs/inference.json", "models/clinical_stats.json", "LICENSE"):
        assert sha256_file(out / rel) == sha256_file(bundle / rel)
    assert (out / MANIFEST_NAME).is_file()
    assert not (out / "eval").exists() and not (out / "models" / "checkpoint_epoch=1.pt").exists()
    a, b = torch.nn.Linear(4, 1), torch.nn.Linear(4, 1)
    a.load_state_dict(torch.load(bundle / "models" / "model.pt", weights_only=True))
    b.load_state_dict(torch.load(out / "models" / "model.pt", weights_only=True))
    x = torch.randn(5, 4)
    assert torch.equal(a(x), b(x))
    # a second import into the same non-empty folder is refused unless asked
    with pytest.raises(FileExistsError, match="not empty"):
        import_bundle(archive, out)
    import_bundle(archive, out, overwrite=True)


def test_tampered_file_refused(exported: tuple[Path, Path], tmp_path: Path) -> None:
    _, archive = exported
    with zipfile.ZipFile(archive) as zf:
        weights = bytearray(zf.read(P + "models/model.pt"))
    weights[-20] ^= 0xFF
    bad = _rewrite(archive, tmp_path / "bad.zip", {P + "models/model.pt": bytes(weights)})
    with pytest.raises(BundleIntegrityError, match=r"models/model\.pt fails its sha256 check"):
        import_bundle(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]  # no staging left behind


@pytest.mark.parametrize(
    ("change", "add", "pattern"),
    [
        ({"toy/configs/inference.json": None}, None, r"configs/inference\.json is listed .* missing"),
        ({}, {"toy/models/extra.pt": b"x"}, r"models/extra\.pt is not listed"),
        ({}, {"other/x.txt": b"x"}, r"no manifest\.json"),
        ({"toy/manifest.json": None}, None, r"no manifest\.json"),
        ({"toy/sha256sums": b"0" * 64 + b"  LICENSE\n"}, None, r"sha256sums disagrees"),
        ({}, {"toy/../evil.txt": b"x"}, r"unsafe path"),
        ({}, {"/etc/evil.txt": b"x"}, r"unsafe path"),
    ],
)
def test_inconsistent_archive_refused(
    exported: tuple[Path, Path], tmp_path: Path, change: dict, add: dict | None, pattern: str
) -> None:
    _, archive = exported
    bad = _rewrite(archive, tmp_path / "bad.zip", change, add)
    with pytest.raises(BundleIntegrityError, match=pattern):
        verify_archive(bad)


def test_corrupt_and_missing_inputs(tmp_path: Path) -> None:
    not_zip = tmp_path / "x.zip"
    not_zip.write_text("hello")
    with pytest.raises(BundleIntegrityError, match="not a zip archive"):
        verify_archive(not_zip)
    with pytest.raises(FileNotFoundError, match="archive not found"):
        import_bundle(tmp_path / "missing.zip", tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="bundle folder not found"):
        export_bundle(tmp_path / "nope", tmp_path / "nope.zip")


def test_export_refuses_untrained_and_identifying(tmp_path: Path) -> None:
    bundle = _toy_bundle(tmp_path / "toy")
    (bundle / "models" / "model.pt").unlink()
    with pytest.raises(FileNotFoundError, match=r"model\.pt: required bundle file not found \(train the bundle"):
        export_bundle(bundle, tmp_path / "a.zip")
    bundle = _toy_bundle(tmp_path / "toy2")
    (bundle / "models" / "clinical_stats.json").unlink()
    with pytest.raises(FileNotFoundError, match="clinical_stats.json"):
        export_bundle(bundle, tmp_path / "b.zip")
    bundle = _toy_bundle(tmp_path / "toy3")
    (bundle / "docs" / "README.md").write_text("example: PatientName = DOE^JANE\n")
    with pytest.raises(BundleIntegrityError, match="PatientName"):
        export_bundle(bundle, tmp_path / "c.zip")
    (bundle / "docs" / "README.md").write_text("PatientName and PatientBirthDate are never stored.\n")
    (bundle / "configs" / "extra.json").write_text('{"tags": {"00100030": "19400101"}}')
    with pytest.raises(BundleIntegrityError, match="00100030"):
        export_bundle(bundle, tmp_path / "c.zip")
    (bundle / "configs" / "extra.json").unlink()
    export_bundle(bundle, tmp_path / "c.zip")  # a mention without a value is fine
    bundle = _toy_bundle(tmp_path / "toy4")
    torch.save({"net": torch.nn.Linear(4, 1)}, bundle / "models" / "model.pt", _use_new_zipfile_serialization=True)
    with pytest.raises(BundleIntegrityError, match=r"weights_only=True"):
        export_bundle(bundle, tmp_path / "d.zip")
    out = tmp_path / "e.zip"
    out.write_text("old")
    with pytest.raises(FileExistsError, match="already exists"):
        export_bundle(_toy_bundle(tmp_path / "toy5"), out)


def test_hip_bundle_roundtrip_reproduces_inference(tmp_path: Path) -> None:
    """Export the real hip bundle (weights of an instantiated network), import it, infer from both: identical."""
    import csv

    from monai_bone.bundle import bundle_workflow, default_bundle_dir
    from monai_bone.synthetic.synth import synthesize

    cohort = tmp_path / "cohort"
    synthesize("hip", 3, cohort, seed=1, size=64, progress=False)
    base = {"height": 1.6, "alcohol": 2.0, "activity": 3.0, "smoking": "never"}
    records = [
        {**base, "age_xray": 70.0 + i, "age_bmd": 70.5 + i, "weight": 60.0 + 5 * i, "bmi": 23.0 + i}
        | {"diet_score": 0.1 * i, "sex": "FM"[i % 2]}
        for i in range(6)
    ]
    bundle = untrained_copy(default_bundle_dir("hip"), tmp_path / "hip_bundle", records, seed=0)
    assert (bundle / "LICENSE").is_file() and (bundle / "docs" / "README.md").is_file()

    archive = tmp_path / "hip.zip"
    export_bundle(bundle, archive)
    imported = import_bundle(archive, tmp_path / "imported")

    outputs = []
    for root in (bundle, imported):
        out = tmp_path / f"pred_{root.name}"
        wf = bundle_workflow(
            root,
            ("inference.json",),
            "infer",
            input=str(cohort / "dicom"),
            clinical_csv=str(cohort / "clinical.csv"),
            output_dir=str(out),
            spatial_size=64,
            num_workers=0,
            device="$torch.device('cpu')",
        )
        wf.initialize()
        wf.run()
        wf.finalize()
        with open(out / "predictions.csv") as f:
            outputs.append(list(csv.DictReader(line for line in f if not line.startswith("#"))))
    assert len(outputs[0]) == 3 and all(r["bmd"] for r in outputs[0])
    assert [(r["patient_id"], r["bmd"]) for r in outputs[0]] == [(r["patient_id"], r["bmd"]) for r in outputs[1]]


def test_untrained_copy_is_seeded_and_never_overwrites(tmp_path: Path) -> None:
    from monai_bone.bundle import default_bundle_dir

    src = default_bundle_dir("knee")
    a = untrained_copy(src, tmp_path / "a", seed=3)
    b = untrained_copy(src, tmp_path / "b", seed=3)
    c = untrained_copy(src, tmp_path / "c", seed=4)
    load = lambda p: torch.load(p / "models" / "model.pt", weights_only=True)  # noqa: E731
    wa, wb, wc = load(a), load(b), load(c)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert any(not torch.equal(wa[k], wc[k]) for k in wa if wa[k].is_floating_point())
    assert not (a / "models" / "clinical_stats.json").exists()  # no records given
    assert (a / "configs" / "inference.json").read_bytes() == (src / "configs" / "inference.json").read_bytes()
    with pytest.raises(FileExistsError):
        untrained_copy(src, a)
