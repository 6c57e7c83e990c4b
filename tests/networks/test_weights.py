"""Tests of load_pretrained with torchvision-format DenseNet169 / ResNet34 state dicts written by the test."""

from __future__ import annotations

import logging

import pytest
import torch
from _torchvision_layout import monai_to_torchvision_densenet, torchvision_densenet169, torchvision_resnet34
from monai.networks.nets import DenseNet169, resnet34

from monai_bone.networks import HybridAttentionNet, XAttnBMD, load_pretrained, torchvision_densenet_key

SMALL_XATTN = {"hidden_size": 16, "num_heads": 4, "num_layers": 1}


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def densenet_source():
    return torchvision_densenet169()  # non-trivial running statistics, so a wrong mapping shows in the outputs


@pytest.fixture(scope="module")
def densenet_files(densenet_source, tmp_path_factory):
    folder = tmp_path_factory.mktemp("densenet")
    state = densenet_source.state_dict()
    current = monai_to_torchvision_densenet(state)
    legacy = monai_to_torchvision_densenet(state, legacy=True)
    # spot-check the torchvision names
    assert "features.denseblock1.denselayer1.norm1.weight" in current
    assert "features.denseblock3.denselayer32.conv2.weight" in current
    assert "features.denseblock1.denselayer1.norm.1.weight" in legacy
    assert current["classifier.weight"].shape == (1000, 1664)
    torch.save(current, folder / "densenet169.pth")
    torch.save(legacy, folder / "densenet169-legacy.pth")
    return folder / "densenet169.pth", folder / "densenet169-legacy.pth"


@pytest.fixture(scope="module")
def resnet_source():
    return torchvision_resnet34()


@pytest.fixture(scope="module")
def resnet_file(resnet_source, tmp_path_factory):
    state = resnet_source.state_dict()  # torchvision resnet34 names already
    for key in ("conv1.weight", "bn1.running_var", "layer2.0.downsample.0.weight", "layer4.2.bn2.weight", "fc.bias"):
        assert key in state
    assert "layer2.0.downsample.0.bias" not in state and state["fc.weight"].shape == (1000, 512)
    path = tmp_path_factory.mktemp("resnet") / "resnet34.pth"
    torch.save(state, path)
    return path


def test_densenet_key_mapping():
    assert torchvision_densenet_key("features.denseblock2.denselayer7.norm.2.running_var") == (
        "features.denseblock2.denselayer7.layers.norm2.running_var"
    )
    assert torchvision_densenet_key("features.denseblock2.denselayer7.conv1.weight") == (
        "features.denseblock2.denselayer7.layers.conv1.weight"
    )
    assert torchvision_densenet_key("features.transition1.conv.weight") == "features.transition1.conv.weight"


def test_densenet_three_channels(densenet_source, densenet_files):
    net = HybridAttentionNet(in_channels=3)
    report = load_pretrained(net, densenet_files[0])
    assert report.missing == [] and report.unexpected == [] and report.mismatched == [] and report.complete
    assert report.adapted == [] and sorted(report.skipped) == ["classifier.bias", "classifier.weight"]
    loaded = net.features.state_dict()
    for key, value in densenet_source.features.state_dict().items():
        assert torch.equal(loaded[key], value), key
    x = torch.rand(1, 3, 64, 64)
    net.eval()
    with torch.no_grad():
        torch.testing.assert_close(net.features(x), densenet_source.features(x))


def test_densenet_legacy_layout_one_channel(densenet_source, densenet_files):
    net = HybridAttentionNet(in_channels=1, pretrained_path=densenet_files[1]).eval()
    assert torch.equal(net.features.conv0.weight, densenet_source.features.conv0.weight.sum(dim=1, keepdim=True))
    # a grey image gives the same features as the RGB network on the image repeated over 3 channels
    grey = torch.rand(1, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(
            net.features(grey), densenet_source.features(grey.repeat(1, 3, 1, 1)), rtol=1e-4, atol=1e-4
        )
    report = load_pretrained(DenseNet169(spatial_dims=2, in_channels=1, out_channels=2), densenet_files[1])
    assert report.missing == [] and report.unexpected == [] and len(report.adapted) == 1


def test_resnet_into_xattn_encoder(resnet_source, resnet_file):
    for channels in (3, 1):
        net = XAttnBMD(in_channels=channels, **SMALL_XATTN)
        report = load_pretrained(net, resnet_file)
        assert report.complete and report.missing == [] and report.skipped == ["fc.weight", "fc.bias"]
        assert len(report.loaded) == len(resnet_source.state_dict()) - 2
        assert torch.equal(net.encoder.layer3[1].conv2.weight, resnet_source.layer3[1].conv2.weight)
        expected_conv1 = resnet_source.conv1.weight
        if channels == 1:
            expected_conv1 = expected_conv1.sum(dim=1, keepdim=True)
        assert torch.equal(net.encoder.conv1.weight, expected_conv1)
    built = XAttnBMD(in_channels=1, pretrained_path=resnet_file, **SMALL_XATTN)
    assert torch.equal(built.encoder.layer1[0].bn1.running_mean, resnet_source.layer1[0].bn1.running_mean)


def test_state_dict_wrapper_and_module_prefix(resnet_source, tmp_path):
    path = tmp_path / "checkpoint.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in resnet_source.state_dict().items()}}, path)
    report = load_pretrained(resnet34(spatial_dims=2, n_input_channels=3, bias_downsample=False), path)
    assert report.complete


def test_pickled_whole_model_is_refused(tmp_path):
    path = tmp_path / "whole_model.pth"
    torch.save(torch.nn.Sequential(torch.nn.Linear(2, 2)), path)
    with pytest.raises(ValueError, match=r"whole_model\.pth.*not a state dict"):
        load_pretrained(XAttnBMD(**SMALL_XATTN), path)


@pytest.mark.parametrize("content", [[torch.zeros(1)], {}, {"conv1.weight": [1, 2]}])
def test_non_state_dict_is_refused(tmp_path, content):
    path = tmp_path / "weird.pt"
    torch.save(content, path)
    with pytest.raises(ValueError, match="weird.pt"):
        load_pretrained(XAttnBMD(**SMALL_XATTN), path)


def test_missing_file_and_wrong_architecture(resnet_file, tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.pth"):
        load_pretrained(XAttnBMD(**SMALL_XATTN), tmp_path / "nothere.pth")
    with pytest.raises(ValueError, match="no tensor matches the densenet backbone"):
        load_pretrained(HybridAttentionNet(), resnet_file)
    with pytest.raises(ValueError, match="backbone"):
        load_pretrained(torch.nn.Linear(2, 2), resnet_file)


def test_incomplete_file_is_reported(resnet_source, tmp_path, caplog):
    state = dict(resnet_source.state_dict())
    del state["layer4.2.bn2.weight"]
    state["layer1.0.conv1.weight"] = torch.zeros(64, 64, 5, 5)
    state["extra.weight"] = torch.zeros(3)
    path = tmp_path / "partial.pth"
    torch.save(state, path)
    net = XAttnBMD(in_channels=3, **SMALL_XATTN)
    with caplog.at_level(logging.WARNING, logger="monai_bone.networks.weights"):
        report = load_pretrained(net, path)
    assert report.missing == ["layer4.2.bn2.weight"]
    assert report.unexpected == ["extra.weight"]
    assert report.mismatched == ["layer1.0.conv1.weight: file (64, 64, 5, 5) vs model (64, 64, 3, 3)"]
    assert not report.complete
    assert "incomplete load" in caplog.text and "layer4.2.bn2.weight" in caplog.text
    with pytest.raises(ValueError, match="strict"):
        load_pretrained(net, path, strict=True)
