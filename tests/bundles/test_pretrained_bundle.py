"""Fine-tuning through the knee bundle: a torchvision-layout DenseNet169 file as `pretrained`, the backbone frozen for
epoch 1, and the ImageNet normalisation the trained bundle carries applied identically by training preprocessing,
``inference.json``, the MONAI Label predictor and the exported TorchScript model (tiny synthetic cohort, 64 px)."""

from __future__ import annotations

import shutil
import sys
import zipfile
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "networks"))
from _torchvision_layout import monai_to_torchvision_densenet, torchvision_densenet169  # noqa: E402

from monai_bone.networks import IMAGENET_MEAN, IMAGENET_STD  # noqa: E402

SIZE = 64


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Knee bundle copy trained 2 epochs from a local torchvision-format DenseNet169, backbone frozen in epoch 1."""
    from ignite.engine import Events

    from monai_bone.bundle import bundle_workflow, default_bundle_dir
    from monai_bone.data.datalist import build_datalist
    from monai_bone.synthetic.synth import synthesize

    root = tmp_path_factory.mktemp("pretrained_bundle")
    # the knee bundle is binary; the realistic synthetic knee cohort defaults to 3 classes
    synthesize("knee", 8, root / "knee", size=64, seed=5, n_classes=2, progress=False)
    csvs = [p for p in (root / "knee" / "clinical.csv", root / "knee" / "ground_truth.csv") if p.is_file()]
    build_datalist(root / "knee" / "dicom", root / "dl.json", clinical=csvs, task="knee", folds=2, progress=False)
    weights = root / "densenet169-tv.pth"
    torch.save(monai_to_torchvision_densenet(torchvision_densenet169().state_dict(), legacy=True), weights)

    src = default_bundle_dir("knee")
    bundle = root / "bundle"
    for sub in ("configs", "docs"):
        shutil.copytree(src / sub, bundle / sub)
    shutil.copy2(src / "LICENSE", bundle / "LICENSE")
    (bundle / "models").mkdir()
    torch.set_num_threads(1)
    wf = bundle_workflow(
        bundle,
        ("train.json",),
        "train",
        datalist=str(root / "dl.json"),
        epochs=2,
        spatial_size=SIZE,
        batch_size=4,
        val_batch_size=4,
        num_workers=0,
        resume=False,
        pretrained_path=str(weights),
        freeze_backbone_epochs=1,
        backbone_lr_multiplier=0.5,
        device="$torch.device('cpu')",
    )
    wf.initialize()
    net = wf.parser.get_parsed_content("network")
    snaps = [{k: v.detach().clone() for k, v in net.state_dict().items()}]
    trainer = wf.parser.get_parsed_content("train#trainer")
    trainer.add_event_handler(
        Events.EPOCH_COMPLETED, lambda e: snaps.append({k: v.detach().clone() for k, v in net.state_dict().items()})
    )
    optimizer = wf.parser.get_parsed_content("optimizer")
    wf.run()
    preprocessing = wf.parser.get_parsed_content("validate#preprocessing")
    wf.finalize()
    images = sorted((root / "knee" / "dicom").rglob("*.dcm"))
    return {
        "bundle": bundle,
        "snaps": snaps,
        "optimizer": optimizer,
        "net": net,
        "pre": preprocessing,
        "image": images[0],
    }


def test_backbone_frozen_in_epoch_1_and_trained_in_epoch_2(trained):
    before, after1, after2 = trained["snaps"]
    backbone = [k for k in before if k.startswith("features.") and ("conv" in k or k.endswith(".weight"))]
    head = [k for k in before if k.startswith("head.") and k.endswith(".weight")]
    assert backbone and head
    assert all(torch.equal(before[k], after1[k]) for k in backbone if "running" not in k)
    assert any(not torch.equal(before[k], after1[k]) for k in head)  # the head trained in epoch 1
    assert any(not torch.equal(after1[k], after2[k]) for k in backbone if "running" not in k)
    lrs = {g["name"]: g["initial_lr"] for g in trained["optimizer"].param_groups}
    assert lrs["backbone"] == pytest.approx(0.5 * lrs["head"])


def _first_conv_input(net, run):
    seen = []
    handle = net.features.conv0.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach().clone()))
    try:
        run()
    finally:
        handle.remove()
    assert seen, "the network never ran"
    return seen[-1]


def test_same_network_input_in_training_inference_label_and_torchscript(trained, tmp_path):
    from monai_bone.bundle import bundle_workflow, export_bundle
    from monai_bone.label.predictor import BundlePredictor

    bundle, image = trained["bundle"], trained["image"]
    state = torch.load(bundle / "models" / "model.pt", map_location="cpu", weights_only=True)
    torch.testing.assert_close(state["input_norm.mean"], torch.tensor([sum(IMAGENET_MEAN) / 3]))
    torch.testing.assert_close(state["input_norm.std"], torch.tensor([sum(IMAGENET_STD) / 3]))

    # 1. training preprocessing (the validation pipeline = train's deterministic transforms) into the trained network
    x_train = trained["pre"]({"image": str(image), "label": 0.0})["image"].as_tensor()[None]
    net = trained["net"].eval()
    with torch.no_grad():
        ref = _first_conv_input(net, lambda: net(x_train))
    assert ref.shape == (1, 1, SIZE, SIZE) and ref.min() < -1.5  # ImageNet-normalised, not [0, 1]

    # 2. inference.json
    single = tmp_path / "input"
    single.mkdir()
    shutil.copy2(image, single / image.name)
    wf = bundle_workflow(bundle, ("inference.json",), "infer", input=str(single), output_dir=str(tmp_path / "inf"),
                         spatial_size=SIZE, num_workers=0, device="$torch.device('cpu')")  # fmt: skip
    wf.initialize()
    inf_net = wf.parser.get_parsed_content("network")
    x_inf = _first_conv_input(inf_net, wf.run)
    wf.finalize()

    # 3. the MONAI Label predictor
    predictor = BundlePredictor(bundle, device="cpu", overrides={"spatial_size": SIZE})
    x_label = _first_conv_input(predictor.network, lambda: predictor.predict(image))

    # 4. the exported TorchScript model: its own normalisation layer on the inference preprocessing of the image
    export_bundle(bundle, tmp_path / "knee.zip")
    with zipfile.ZipFile(tmp_path / "knee.zip") as zf:
        ts_name = next(n for n in zf.namelist() if n.endswith(".ts"))
        (tmp_path / "model.ts").write_bytes(zf.read(ts_name))
    ts = torch.jit.load(str(tmp_path / "model.ts"), map_location="cpu")
    parser_pre = wf.parser.get_parsed_content("preprocessing")
    x_pre = parser_pre({"image": str(image)})["image"].as_tensor()[None]
    with torch.no_grad():
        x_ts = ts.input_norm(x_pre)
        # and the TorchScript model is the checkpoint's network (model.pt is the best epoch, not the last one)
        torch.testing.assert_close(ts(x_pre), predictor.network(x_pre), atol=1e-5, rtol=1e-5)

    for name, x in (("inference.json", x_inf), ("label", x_label), ("torchscript", x_ts)):
        torch.testing.assert_close(x, ref, atol=1e-6, rtol=0, msg=lambda m, n=name: f"{n}: {m}")
