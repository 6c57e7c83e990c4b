"""Exported bundles work with MONAI's own tools: ``monai.bundle.download(url=file://...)`` + ``monai.bundle.load``,
``load_bundle_config`` on the zip, hip ONNX / TorchScript with the clinical inputs, fp16 sharing, model-zoo folder.

Weights are those of an untrained copy (seeded): the checks are about packaging, not accuracy.
"""

from __future__ import annotations

import functools
import http.server
import importlib.metadata
import json
import os
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from monai_bone.bundle import BUNDLE_NAMES, default_bundle_dir, export_bundle, untrained_copy
from monai_bone.bundle.onnx_export import example_inputs
from monai_bone.bundle.zoo import MODEL_ZOO_MAX_BYTES, write_model_zoo_folder

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
SCHEMA = Path(os.environ.get("MONAI_BONE_SCHEMA", REPO.parent / "shared" / "schemas" / "meta_schema_20240725.json"))
RECORDS = [
    {"age_xray": 70.0 + i, "age_bmd": 70.5 + i, "height": 1.6, "weight": 60.0 + 5 * i, "bmi": 23.0 + i}
    | {"alcohol": 2.0, "activity": 3.0, "diet_score": 0.1 * i, "sex": "FM"[i % 2], "smoking": "never"}
    for i in range(6)
]


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _bundle(root: Path, task: str) -> Path:
    records = RECORDS if task == "hip" else None
    return untrained_copy(default_bundle_dir(task), root / BUNDLE_NAMES[task], records, seed=0)


@pytest.fixture(scope="module")
def hip(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An untrained hip bundle and its export with ONNX (one ~30 s export shared by the tests here)."""
    tmp = tmp_path_factory.mktemp("hip")
    bundle = _bundle(tmp, "hip")
    archive = tmp / "dist" / "hip_bmd_xattn.zip"
    export_bundle(bundle, archive, onnx=True)
    return {"bundle": bundle, "archive": archive, "tmp": tmp}


def _network(bundle: Path) -> torch.nn.Module:
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "inference.json"))
    parser["bundle_root"] = str(bundle)
    parser.get_parsed_content("imports")
    net = parser.get_parsed_content("network_def")
    net.load_state_dict(torch.load(bundle / "models" / "model.pt", weights_only=True))
    return net.eval()


def _synthetic_study(bundle: Path, task: str, tmp: Path) -> tuple[torch.Tensor, ...]:
    """One synthetic study through the bundle's own inference preprocessing (64 px): network inputs with batch 1."""
    from monai.bundle import ConfigParser

    from monai_bone.synthetic.synth import synthesize

    cohort = tmp / f"{task}_cohort"
    synthesize(task, 1, cohort, seed=3, size=64, progress=False)
    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "inference.json"))
    parser.update(
        {
            "bundle_root": str(bundle),
            "input": str(cohort / "dicom"),
            "output_dir": str(tmp / f"{task}_pre"),
            "spatial_size": 64,
        }
    )
    if task == "hip":
        parser["clinical_csv"] = str(cohort / "clinical.csv")
    parser.get_parsed_content("imports")
    item = parser.get_parsed_content("preprocessing")(parser.get_parsed_content("data")[0])
    inputs = [torch.as_tensor(item["image"]).unsqueeze(0).float()]
    if task == "hip":
        inputs.append(torch.as_tensor(item["clinical"]).unsqueeze(0).float())
    return tuple(inputs)


@pytest.mark.parametrize("task", ["hip", "knee"])
def test_download_then_load_default_workflow(task: str, hip: dict[str, Path], tmp_path: Path) -> None:
    import monai.bundle

    name = BUNDLE_NAMES[task]
    if task == "hip":
        bundle, archive = hip["bundle"], hip["archive"]
    else:
        bundle = _bundle(tmp_path, task)
        archive = tmp_path / "dist" / f"{name}.zip"
        export_bundle(bundle, archive)
    parser = monai.bundle.load_bundle_config(str(archive), "inference.json")  # reads the zip in place
    assert (
        parser["network_def"]["_target_"]
        == f"monai_bone.networks.{'XAttnBMD' if task == 'hip' else 'HybridAttentionNet'}"
    )
    monai.bundle.download(name=name, url=archive.resolve().as_uri(), bundle_dir=str(tmp_path / "hub"), progress=False)
    assert (tmp_path / "hub" / name / "configs" / "metadata.json").is_file()
    loaded = monai.bundle.load(name=name, bundle_dir=str(tmp_path / "hub"), device="cpu")  # workflow_type="train"
    assert isinstance(loaded, torch.nn.Module), type(loaded)
    inputs = _synthetic_study(bundle, task, tmp_path)
    original = _network(bundle)
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(*inputs), original(*inputs), rtol=0, atol=1e-6)
        infer = monai.bundle.load(name=name, bundle_dir=str(tmp_path / "hub"), device="cpu", workflow_type="inference")
        torch.testing.assert_close(infer.eval()(*inputs), original(*inputs), rtol=0, atol=1e-6)
    meta = json.loads((tmp_path / "hub" / name / "configs" / "metadata.json").read_text())
    assert meta["exact_versions"]["torch"] == importlib.metadata.version("torch") and "python" in meta["exact_versions"]


def test_hip_onnx_and_torchscript_take_clinical_inputs(hip: dict[str, Path], tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    with zipfile.ZipFile(hip["archive"]) as zf:
        zf.extractall(tmp_path)
    models = tmp_path / "hip_bmd_xattn" / "models"
    meta = json.loads((tmp_path / "hip_bmd_xattn" / "configs" / "metadata.json").read_text())
    net = _network(hip["bundle"])
    session = ort.InferenceSession(str(models / "model.onnx"), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    assert names == ["image", "clinical", "clinical_mask"]
    assert session.get_inputs()[1].shape[1] == 10 and session.get_outputs()[0].name == "pred"
    scripted = torch.jit.load(str(models / "model.ts"))
    for batch, seed in ((1, 7), (4, 8)):
        image, clinical, mask = example_inputs(meta, names, batch=batch, seed=seed, missing=0.3)
        assert torch.isnan(clinical).any()  # some fields missing
        with torch.no_grad():
            eager = net(image, clinical, mask)
            eager_nan = net(image, clinical)
            torch.testing.assert_close(scripted(image, clinical, mask), eager, rtol=0, atol=1e-4)
            torch.testing.assert_close(scripted(image, clinical), eager_nan, rtol=0, atol=1e-4)
        got = session.run(None, {"image": image.numpy(), "clinical": clinical.numpy(), "clinical_mask": mask.numpy()})
        assert got[0].shape == (batch, 1)
        np.testing.assert_allclose(got[0], eager.numpy(), rtol=0, atol=1e-4)
        assert not np.allclose(eager.numpy(), eager_nan.numpy())  # the mask input is used, not a constant


def test_half_precision_weights(hip: dict[str, Path], tmp_path: Path) -> None:
    from monai_bone.bundle import import_bundle

    archive = tmp_path / "hip_bmd_xattn.zip"
    manifest = export_bundle(hip["bundle"], archive, half="fp16")
    assert manifest["weights_dtype"] == "fp16"
    out = import_bundle(archive, tmp_path / "imported", expect_sha256=None)
    state = torch.load(out / "models" / "model.pt", weights_only=True)
    assert state["encoder.conv1.weight"].dtype == torch.float16 and state["target_mean"].dtype == torch.float32
    full = (hip["bundle"] / "models" / "model.pt").stat().st_size
    half = (out / "models" / "model.pt").stat().st_size
    assert half < 0.55 * full
    net32, net16 = _network(hip["bundle"]), _network(out)
    assert all(p.dtype == torch.float32 for p in net16.parameters())  # loaded back to fp32
    meta = json.loads((out / "configs" / "metadata.json").read_text())
    image, clinical = example_inputs(meta, ["image", "clinical"], batch=4, seed=5)
    with torch.no_grad():
        diff = (net32(image, clinical) - net16(image, clinical)).abs().max().item()
    print(f"model.pt {full / 2**20:.1f} MB fp32 -> {half / 2**20:.1f} MB fp16; max |BMD change| {diff:.2e} g/cm^2")
    assert diff < 1e-2


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[callable]:
    servers = []

    def start(folder: Path) -> str:
        handler = functools.partial(_Quiet, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for s in servers:
        s.shutdown()


def test_model_zoo_folder_passes_verify_bundle(hip: dict[str, Path], tmp_path: Path, serve: callable) -> None:
    if not SCHEMA.is_file():
        pytest.skip(f"bundle metadata schema not found at {SCHEMA}")
    zoo = tmp_path / "zoo"
    base = serve(zoo / "large_files" / "hip_bmd_xattn")  # where the user publishes the weights (loopback here)
    folder = write_model_zoo_folder(hip["archive"], zoo, base)
    assert folder == zoo / "hip_bmd_xattn"
    # the model-zoo rules: no weights in the folder, every file under the repository's size limit
    assert not list(folder.rglob("*.pt")) and not list(folder.rglob("*.ts")) and not list(folder.rglob("*.onnx"))
    assert all(p.stat().st_size <= MODEL_ZOO_MAX_BYTES for p in folder.rglob("*") if p.is_file())
    large = yaml.safe_load((folder / "large_files.yml").read_text())["large_files"]
    assert {e["path"] for e in large} == {"models/model.pt", "models/model.ts", "models/model.onnx"}
    for e in large:
        assert set(e) == {"path", "url", "hash_val", "hash_type"} and e["hash_type"] == "sha256"
        assert e["url"] == f"{base}/{e['path']}" and len(e["hash_val"]) == 64
    # model-zoo's own verify_bundle.py (copied, Apache-2.0) in full mode: downloads the large files (sha256),
    # required files, version/changelog, metadata schema, data shape, TorchScript export
    models = tmp_path / "models"
    models.mkdir()
    os.rename(folder, models / "hip_bmd_xattn")
    (models / "model_info.json").write_text("{}")
    (models / "hip_bmd_xattn" / "eval").mkdir()
    (models / "hip_bmd_xattn" / "eval" / "schema.json").write_bytes(SCHEMA.read_bytes())
    ci = Path(__file__).parent / "model_zoo_ci"
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{ci}", "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, str(ci / "verify_bundle.py"), "-b", "hip_bmd_xattn", "-p", str(models), "-m", "full"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for line in ("directory is verified correctly", "metadata format is verified correctly", "data shape is verified"):
        assert line in proc.stdout, proc.stdout
    assert (models / "hip_bmd_xattn" / "models" / "model.pt").is_file()  # fetched from large_files.yml
