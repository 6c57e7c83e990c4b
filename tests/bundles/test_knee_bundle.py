"""End-to-end checks of bundles/knee_osteoporosis_hybrid_attention on tiny synthetic cohorts (64 px, 1-3 epochs).

Train, evaluate, inference (on a KOP-style PNG folder) and the resumed train run as ``python -m monai.bundle run``
subprocesses, DDP under ``torchrun --nproc_per_node=2`` on CPU (gloo); the model-zoo checks and the three-class
variant run in-process through ``monai.bundle``.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from _bundle_test_utils import BUNDLES, TINY, make_cohort, read_synthetic_csv, run_bundle, schema_path

from monai_bone.constants import KNEE_LABELS_THREE

BUNDLE = "knee_osteoporosis_hybrid_attention"
CONFIGS = BUNDLES / BUNDLE / "configs"

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="session")
def knee_cohorts(tmp_path_factory):
    root = tmp_path_factory.mktemp("knee_cohort")
    return {
        "dicom": make_cohort(root, "knee", n=12, folds=3, seed=21),
        "kop": make_cohort(root, "knee", n=6, folds=2, seed=22, fmt="kop"),
        "three": make_cohort(root, "knee", n=9, folds=3, seed=23, n_classes=3),
    }


@pytest.fixture(scope="session")
def knee_trained(tmp_path_factory, knee_cohorts):
    root = tmp_path_factory.mktemp("knee_root")
    dl = knee_cohorts["dicom"]
    log = run_bundle(BUNDLE, ["train.json"], {"bundle_root": root, "datalist": dl, "epochs": 2, **TINY})
    return root, log


def test_metadata_matches_schema():
    from monai.bundle import verify_metadata

    verify_metadata(meta_file=str(CONFIGS / "metadata.json"), filepath=str(schema_path()))
    meta = json.loads((CONFIGS / "metadata.json").read_text())
    assert list(meta["network_data_format"]["inputs"]) == ["image"]
    assert meta["network_data_format"]["outputs"]["pred"]["num_channels"] == 1


def test_train_binary_writes_model_and_checkpoint(knee_trained):
    root, log = knee_trained
    models = root / "models"
    assert (models / "model.pt").is_file()
    assert sorted(p.name for p in models.glob("checkpoint_epoch=*.pt")) == ["checkpoint_epoch=2.pt"]
    assert not (models / "clinical_stats.json").exists()  # image-only model
    for name in ("val_auc", "val_accuracy", "val_sensitivity", "val_specificity", "train_accuracy"):
        assert name in log, name


def test_evaluate_writes_table_one_metrics(knee_trained, knee_cohorts):
    root, _ = knee_trained
    out = root / "eval_report"
    run_bundle(
        BUNDLE,
        ["train.json", "evaluate.json"],
        {"bundle_root": root, "datalist": knee_cohorts["dicom"], "output_dir": out, "n_bootstrap": 50, **TINY},
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"] == "knee" and metrics["synthetic"] is True and metrics["n"] == 4
    for key in ("sensitivity", "specificity", "precision", "fpr", "accuracy", "f1", "auc"):
        assert key in metrics, key
    cm = metrics["confusion_matrix"]
    assert sum(map(sum, cm)) == 4
    rows = read_synthetic_csv(out / "predictions.csv")
    assert len(rows) == 4
    correct = sum(r["true_index"] == r["pred_index"] for r in rows)
    assert metrics["accuracy"] == pytest.approx(correct / 4)
    for png in ("roc.png", "confusion_matrix.png"):
        assert (out / png).stat().st_size > 1000, png


def test_inference_on_a_kop_png_folder_with_gradcam(knee_trained, knee_cohorts):
    root, _ = knee_trained
    kop = knee_cohorts["kop"].parent
    out = root / "infer"
    run_bundle(
        BUNDLE,
        ["inference.json"],
        {
            "bundle_root": root,
            "input": kop,
            "output_dir": out,
            "save_gradcam": "true",
            **{k: v for k, v in TINY.items() if k != "val_batch_size"},
        },
    )
    rows = read_synthetic_csv(out / "predictions.csv")
    assert len(rows) == 6
    for r in rows:
        p_normal, p_osteo = float(r["prob_normal"]), float(r["prob_osteoporosis"])
        assert p_normal + p_osteo == pytest.approx(1.0, abs=1e-5)
        assert r["class_name"] == ("osteoporosis" if p_osteo >= 0.5 else "normal")
        assert r["image"].endswith((".png", ".jpg"))  # the realistic KOP export mixes PNG and JPEG
    doc = json.loads((out / "predictions.json").read_text())
    assert doc["n"] == 6 and doc["synthetic"] is True
    assert len(list((out / "gradcam").glob("*.png"))) == 6


def test_second_train_run_resumes_and_no_resume_starts_over(knee_trained, knee_cohorts, tmp_path):
    root, _ = knee_trained
    dl = knee_cohorts["dicom"]
    log = run_bundle(BUNDLE, ["train.json"], {"bundle_root": root, "datalist": dl, "epochs": 3, **TINY})
    assert "Restored all variables from" in log and "Epoch: 3/3" in log and "Epoch: 2/3" not in log
    models = root / "models"
    assert sorted(p.name for p in models.glob("checkpoint_epoch=*.pt")) == ["checkpoint_epoch=3.pt"]
    trainer = torch.load(models / "checkpoint_epoch=3.pt", weights_only=True)["trainer"]
    assert trainer["iteration"] == 3 * trainer["epoch_length"]

    # --resume false (as the CLI passes it: a string) starts over and drops earlier epoch checkpoints
    from monai.bundle import ConfigWorkflow

    (tmp_path / "models").mkdir()
    torch.save({"trainer": {"iteration": 2, "epoch_length": 1}}, tmp_path / "models" / "checkpoint_epoch=2.pt")
    ids = {"bundle_root": str(tmp_path), "datalist": str(dl), "pretrained": "null"}  # no ImageNet download in CI
    wf = ConfigWorkflow(config_file=str(CONFIGS / "train.json"), **ids)
    wf.initialize()
    assert wf.parser.get_parsed_content("resume_ckpt") is not None
    wf = ConfigWorkflow(config_file=str(CONFIGS / "train.json"), resume="false", **ids)
    wf.initialize()
    assert wf.parser.get_parsed_content("resume_ckpt") is None
    assert not list((tmp_path / "models").glob("checkpoint_epoch=*.pt"))


def test_properties_and_torchscript_export(knee_trained, knee_cohorts, tmp_path):
    from monai.bundle import ConfigWorkflow, ckpt_export, verify_net_in_out

    root, _ = knee_trained
    train = ConfigWorkflow(
        config_file=str(CONFIGS / "train.json"),
        workflow_type="train",
        bundle_root=str(tmp_path),
        datalist=str(knee_cohorts["dicom"]),
        **TINY,
    )
    train.initialize()
    assert train.check_properties() == []
    infer = ConfigWorkflow(
        config_file=str(CONFIGS / "inference.json"),
        workflow_type="inference",
        bundle_root=str(root),
        input=str(knee_cohorts["dicom"]),
        spatial_size=64,
        num_workers=0,
    )
    infer.initialize()
    assert infer.check_properties() == []
    meta, config = str(CONFIGS / "metadata.json"), str(CONFIGS / "inference.json")
    verify_net_in_out(
        net_id="network_def",
        meta_file=meta,
        config_file=config,
        device="cpu",
        **{"_meta_#network_data_format#inputs#image#spatial_shape": [64, 64]},
    )
    ts_path = tmp_path / "model.ts"
    ckpt_export(
        net_id="network_def",
        filepath=str(ts_path),
        ckpt_file=str(root / "models" / "model.pt"),
        meta_file=meta,
        config_file=config,
        bundle_root=str(root),
    )
    scripted = torch.jit.load(str(ts_path))
    net = infer.parser.get_parsed_content("network_def").eval()
    net.load_state_dict(torch.load(root / "models" / "model.pt", weights_only=True))
    image = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(scripted(image), net(image))


def test_three_class_variant_uses_cross_entropy_on_three_logits(knee_cohorts, tmp_path):
    from monai.bundle import ConfigWorkflow

    dl = knee_cohorts["three"]
    overrides = {"bundle_root": str(tmp_path), "datalist": str(dl), **TINY}
    wrong = ConfigWorkflow(config_file=str(CONFIGS / "train.json"), **overrides)
    wrong.initialize()
    with pytest.raises(RuntimeError) as err:  # the datalist has 3 classes, the default is binary
        wrong.parser.get_parsed_content("labels")
    assert "pass --num_classes 3" in str(err.value.__cause__)

    wf = ConfigWorkflow(config_file=str(CONFIGS / "train.json"), num_classes=3, **overrides)
    wf.initialize()
    assert wf.parser.get_parsed_content("labels") == list(KNEE_LABELS_THREE)
    trainer = wf.trainer
    assert isinstance(trainer.loss_function, torch.nn.CrossEntropyLoss)
    batch = next(iter(trainer.data_loader))
    assert batch["label"].dtype == torch.long and batch["label"].shape == (4,)
    image, label = trainer.prepare_batch(batch, trainer.state.device, False)
    logits = trainer.network(image)
    assert logits.shape == (4, 3)
    loss = trainer.loss_function(logits, label)
    assert math.isfinite(loss.item())


def test_multi_gpu_config_runs_under_torchrun_on_cpu(knee_cohorts, tmp_path):
    log = run_bundle(
        BUNDLE,
        ["train.json", "multi_gpu_train.json"],
        {"bundle_root": tmp_path, "datalist": knee_cohorts["dicom"], "epochs": 1, **{**TINY, "batch_size": 2}},
        nproc=2,
    )
    models = tmp_path / "models"
    assert sorted(p.name for p in models.glob("checkpoint_epoch=*.pt")) == ["checkpoint_epoch=1.pt"]
    assert (models / "model.pt").is_file()
    assert log.count("Saved checkpoint at epoch: 1") == 1
