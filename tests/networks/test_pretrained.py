"""ImageNet weights by name: registry -> loopback HTTP download (torch.hub) -> sha256 -> cache -> key remapping.

A loopback server (127.0.0.1 only) serves torchvision-layout state dicts made in the test from randomly initialised
MONAI networks (torchvision's key layout; torchvision itself is not used). ``TORCH_HOME`` points into the test's
temporary folder, so the user's cache is never touched.
"""

from __future__ import annotations

import hashlib
import http.server
import threading
from pathlib import Path

import pytest
import torch
from _torchvision_layout import monai_to_torchvision_densenet, torchvision_densenet169, torchvision_resnet34

from monai_bone.networks import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    DenseNet169Baseline,
    HybridAttentionNet,
    PretrainedWeightsError,
    XAttnBMD,
    bundle_pretrained,
    channel_stats,
    fetch_pretrained,
    load_pretrained,
    pretrained_entry,
    resolve_pretrained,
)

SMALL_XATTN = {"hidden_size": 16, "num_heads": 4, "num_layers": 1}


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    for name in ("MONAI_BONE_WEIGHTS_MIRROR", "MONAI_BONE_WEIGHTS_REGISTRY"):
        monkeypatch.delenv(name, raising=False)
    yield
    torch.set_num_threads(threads)


class _Server:
    """Serves ``files`` (name -> bytes) on 127.0.0.1 and counts GET requests per name."""

    def __init__(self, files: dict[str, bytes]):
        self.files, self.requests = files, []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                name = self.path.lstrip("/")
                outer.requests.append(name)
                body = outer.files.get(name)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _bytes_of(state) -> bytes:
    import io

    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


@pytest.fixture(scope="module")
def resnet_source():
    return torchvision_resnet34()


@pytest.fixture(scope="module")
def densenet_source():
    return torchvision_densenet169()


@pytest.fixture(scope="module")
def served_files(resnet_source, densenet_source):
    return {
        "resnet34-test.pth": _bytes_of(resnet_source.state_dict()),
        "densenet169-test.pth": _bytes_of(monai_to_torchvision_densenet(densenet_source.state_dict(), legacy=True)),
    }


@pytest.fixture
def server(served_files):
    srv = _Server(dict(served_files))
    yield srv
    srv.close()


def _registry(server, name, data=None):
    filename = f"{name}-test.pth"
    body = server.files[filename] if data is None else data
    return {name: {"url": server.url + filename, "sha256": hashlib.sha256(body).hexdigest(), "filename": filename}}


def _cache() -> Path:
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def test_registry_holds_torchvision_files_and_checks_overrides(tmp_path, monkeypatch):
    for name, prefix in (("resnet34", "b627a593"), ("densenet169", "b2777c0a")):
        entry = pretrained_entry(name)
        assert entry.url == f"https://download.pytorch.org/models/{name}-{prefix}.pth"
        assert entry.sha256 == prefix and entry.filename == f"{name}-{prefix}.pth"
        assert entry.mean == IMAGENET_MEAN and entry.std == IMAGENET_STD
    monkeypatch.setenv("MONAI_BONE_WEIGHTS_MIRROR", "https://pacs-mirror.example/tv/")
    assert pretrained_entry("resnet34").url == "https://pacs-mirror.example/tv/resnet34-b627a593.pth"
    reg = tmp_path / "registry.json"
    reg.write_text('{"densenet169": {"url": "https://m.example/d.pth", "sha256": "' + "ab" * 32 + '"}}')
    monkeypatch.setenv("MONAI_BONE_WEIGHTS_REGISTRY", str(reg))
    assert pretrained_entry("densenet169").url == "https://m.example/d.pth"
    assert pretrained_entry("densenet169").sha256 == "ab" * 32
    with pytest.raises(ValueError, match="no ImageNet weights registered"):
        pretrained_entry("vgg19")
    with pytest.raises(ValueError, match="8 to 64 hex"):
        pretrained_entry("resnet34", {"resnet34": {"sha256": "xyz"}})
    with pytest.raises(ValueError, match="plain file name"):
        pretrained_entry("resnet34", {"resnet34": {"filename": "../../etc/passwd"}})
    with pytest.raises(ValueError, match="ambiguous"):
        resolve_pretrained(True, "resnet34")
    assert resolve_pretrained(None, "resnet34") is None and resolve_pretrained("null", "resnet34") is None


def test_nothing_downloaded_unless_asked(server):
    net = XAttnBMD(**SMALL_XATTN)
    assert server.requests == [] and not _cache().exists()
    assert torch.equal(net.input_norm.mean, torch.zeros(1)) and torch.equal(net.input_norm.std, torch.ones(1))


def test_imagenet_resnet34_downloads_verifies_caches_and_loads(server, resnet_source):
    registry = _registry(server, "resnet34")
    net = XAttnBMD(in_channels=1, pretrained="imagenet", pretrained_registry=registry, **SMALL_XATTN)
    assert server.requests == ["resnet34-test.pth"]
    cached = _cache() / "resnet34-test.pth"
    assert cached.read_bytes() == server.files["resnet34-test.pth"]
    assert not list(_cache().glob("*.partial"))
    assert torch.equal(net.encoder.conv1.weight, resnet_source.conv1.weight.sum(dim=1, keepdim=True))
    assert torch.equal(net.encoder.layer4[2].bn2.running_var, resnet_source.layer4[2].bn2.running_var)
    # ImageNet statistics for the 1-channel (summed-filter) input, stored as buffers of the network
    torch.testing.assert_close(net.input_norm.mean, torch.tensor([sum(IMAGENET_MEAN) / 3]))
    torch.testing.assert_close(net.input_norm.std, torch.tensor([sum(IMAGENET_STD) / 3]))
    assert {"input_norm.mean", "input_norm.std"} <= set(net.state_dict())

    # second call: served from the cache, no request
    path = fetch_pretrained("resnet34", registry)
    report = load_pretrained(XAttnBMD(in_channels=3, **SMALL_XATTN), path)
    assert server.requests == ["resnet34-test.pth"]
    assert report.missing == [] and report.complete and len(report.loaded) == len(resnet_source.state_dict()) - 2


def test_imagenet_densenet169_into_the_knee_network(server, densenet_source):
    registry = _registry(server, "densenet169")
    net = HybridAttentionNet(in_channels=3, pretrained="imagenet", pretrained_registry=registry).eval()
    report = load_pretrained(HybridAttentionNet(in_channels=3), fetch_pretrained("densenet169", registry))
    baseline = DenseNet169Baseline(in_channels=1, pretrained="imagenet", pretrained_registry=registry)  # cv's row
    assert server.requests == ["densenet169-test.pth"]  # later fetches used the cache
    assert report.missing == [] and report.unexpected == [] and report.complete
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(net.features(x), densenet_source.features(x))
    torch.testing.assert_close(net.input_norm.mean, torch.tensor(IMAGENET_MEAN))
    torch.testing.assert_close(baseline.input_norm.mean, torch.tensor([sum(IMAGENET_MEAN) / 3]))
    assert torch.equal(baseline.net.features.conv0.weight, densenet_source.features.conv0.weight.sum(1, keepdim=True))
    with torch.no_grad():  # the network normalises its input: its output equals features of the normalised image
        normalised = (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        torch.testing.assert_close(net.features(net.input_norm(x)), densenet_source.features(normalised))


def test_channel_statistics_follow_the_first_conv_adaptation():
    mean, std = channel_stats(IMAGENET_MEAN, IMAGENET_STD, 1)  # summed RGB filters: one grey channel
    assert mean == pytest.approx((0.449,), abs=1e-6) and std == pytest.approx((0.226,), abs=1e-6)
    assert channel_stats(IMAGENET_MEAN, IMAGENET_STD, 3) == (IMAGENET_MEAN, IMAGENET_STD)
    assert channel_stats(IMAGENET_MEAN, IMAGENET_STD, 4)[0] == (0.485, 0.456, 0.406, 0.485)  # cyclic, as the filters
    with pytest.raises(ValueError):
        channel_stats(IMAGENET_MEAN, (0.2, 0.0, 0.2), 1)


def test_tampered_download_is_refused_and_removed(server):
    registry = _registry(server, "resnet34")  # checksum of the genuine file
    genuine = server.files["resnet34-test.pth"]
    server.files["resnet34-test.pth"] = genuine[:-16] + bytes(16)  # the server now serves a modified file
    with pytest.raises(PretrainedWeightsError, match="sha256 mismatch") as err:
        XAttnBMD(pretrained="imagenet", pretrained_registry=registry, **SMALL_XATTN)
    assert "resnet34-test.pth" in str(err.value)
    assert not (_cache() / "resnet34-test.pth").exists() and not list(_cache().glob("*"))


def test_mirror_serving_a_file_that_is_not_torchvisions_is_refused(server, monkeypatch):
    """The mirror variable changes where files come from, never what they must hash to."""
    server.files["resnet34-b627a593.pth"] = server.files["resnet34-test.pth"]
    monkeypatch.setenv("MONAI_BONE_WEIGHTS_MIRROR", server.url)
    with pytest.raises(PretrainedWeightsError, match="sha256 mismatch"):
        fetch_pretrained("resnet34")
    assert server.requests == ["resnet34-b627a593.pth"] and not list(_cache().glob("*"))


def test_tampered_cache_file_is_deleted_and_fetched_again(server):
    registry = _registry(server, "resnet34")
    _cache().mkdir(parents=True)
    (_cache() / "resnet34-test.pth").write_bytes(b"not the weights")
    path = fetch_pretrained("resnet34", registry)
    assert path.read_bytes() == server.files["resnet34-test.pth"] and server.requests == ["resnet34-test.pth"]


def test_offline_error_names_file_place_and_alternatives(server):
    registry = _registry(server, "resnet34")
    server.close()  # nothing listens on that port any more
    with pytest.raises(PretrainedWeightsError) as err:
        bundle_pretrained("imagenet", "resnet34", registry=registry)
    msg = str(err.value)
    expected_place = str(_cache() / "resnet34-test.pth")
    assert "resnet34-test.pth" in msg and expected_place in msg and "pretrained_path" in msg and "null" in msg
    assert not list(_cache().glob("*"))
    # a local file and null never touch the network
    assert bundle_pretrained(None, "resnet34") is None


def test_bundle_stops_before_loading_any_data(server, tmp_path, monkeypatch):
    """train.json resolves the weights in `initialize`: offline, the run stops before a single image is read."""
    from monai_bone.bundle import bundle_workflow, default_bundle_dir
    from monai_bone.data.datalist import build_datalist
    from monai_bone.synthetic.synth import synthesize
    from monai_bone.transforms import LoadXrayd

    synthesize("knee", 4, tmp_path / "knee", size=64, seed=0, progress=False)
    build_datalist(tmp_path / "knee" / "dicom", tmp_path / "dl.json", task="knee", folds=2, progress=False,
                   clinical=[tmp_path / "knee" / "ground_truth.csv"])  # fmt: skip
    loads = []
    original = LoadXrayd.__call__
    monkeypatch.setattr(LoadXrayd, "__call__", lambda self, data, *a, **k: loads.append(1) or original(self, data))
    registry = _registry(server, "densenet169")
    server.close()
    wf = bundle_workflow(
        default_bundle_dir("knee"),
        ("train.json",),
        "train",
        datalist=str(tmp_path / "dl.json"),
        ckpt_dir=str(tmp_path / "models"),
        log_dir=str(tmp_path / "runs"),
        output_dir=str(tmp_path / "eval"),
        pretrained_registry=registry,
        num_workers=0,
        spatial_size=32,
    )
    with pytest.raises(Exception) as err:  # MONAI wraps errors of `$` expressions: "Failed to evaluate ..."
        wf.initialize()
    cause = err.value
    while cause is not None and not isinstance(cause, PretrainedWeightsError):
        cause = cause.__cause__
    assert cause is not None and "densenet169-test.pth" in str(cause) and "pretrained_path" in str(cause)
    assert loads == [] and not (tmp_path / "models").exists()


def test_checkpoint_without_normalisation_buffers_loads_as_identity():
    """A model.pt written before the buffers existed (trained without normalisation) loads strictly as identity."""
    old = {k: v for k, v in XAttnBMD(**SMALL_XATTN).state_dict().items() if not k.startswith("input_norm.")}
    net = XAttnBMD(input_norm="imagenet", **SMALL_XATTN)
    net.load_state_dict(old, strict=True)
    assert torch.equal(net.input_norm.mean, torch.zeros(1)) and torch.equal(net.input_norm.std, torch.ones(1))
    with pytest.raises(ValueError, match="input_norm"):
        XAttnBMD(input_norm="zscore", **SMALL_XATTN)
