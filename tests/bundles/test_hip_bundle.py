"""End-to-end checks of bundles/hip_bmd_xattn on a tiny synthetic cohort (12 studies, 64 px, 1-3 epochs).

Train, evaluate, inference and the resumed train run as ``python -m monai.bundle run`` subprocesses, DDP under
``torchrun --nproc_per_node=2`` on CPU (gloo); the model-zoo checks (metadata schema, ``check_properties``,
``verify_net_in_out``, ``ckpt_export``) run in-process through the same ``monai.bundle`` functions the CLI calls.
"""

from __future__ import annotations

import importlib.util
import json
import math

import pytest
import torch
from _bundle_test_utils import BUNDLES, TINY, make_cohort, read_synthetic_csv, run_bundle, schema_path

from monai_bone.constants import CLINICAL_FIELDS, REFERENCE_MEAN, REFERENCE_SD
from monai_bone.metrics.screening import who_class
from monai_bone.transforms import ClinicalStats

BUNDLE = "hip_bmd_xattn"
CONFIGS = BUNDLES / BUNDLE / "configs"

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="session")
def hip_datalist(tmp_path_factory):
    return make_cohort(tmp_path_factory.mktemp("hip_cohort"), "hip", n=12, folds=3, seed=11)


@pytest.fixture(scope="session")
def hip_trained(tmp_path_factory, hip_datalist):
    root = tmp_path_factory.mktemp("hip_root")
    log = run_bundle(BUNDLE, ["train.json"], {"bundle_root": root, "datalist": hip_datalist, "epochs": 2, **TINY})
    return root, log


def test_metadata_matches_schema():
    from monai.bundle import verify_metadata

    verify_metadata(meta_file=str(CONFIGS / "metadata.json"), filepath=str(schema_path()))
    meta = json.loads((CONFIGS / "metadata.json").read_text())
    inputs = meta["network_data_format"]["inputs"]
    assert set(inputs) == {"image", "clinical", "clinical_mask"}  # the mask marks missing fields (ONNX input)
    assert inputs["clinical"]["num_channels"] == inputs["clinical_mask"]["num_channels"] == len(CLINICAL_FIELDS)
    assert list(meta["network_data_format"]["outputs"]) == ["pred"]


def test_train_writes_model_stats_and_last_checkpoint(hip_trained, hip_datalist):
    root, log = hip_trained
    models = root / "models"
    assert (models / "model.pt").is_file()
    assert sorted(p.name for p in models.glob("checkpoint_epoch=*.pt")) == ["checkpoint_epoch=2.pt"]
    ckpt = torch.load(models / "checkpoint_epoch=2.pt", weights_only=True)
    assert {"network", "optimizer", "lr_scheduler", "trainer", "best_model_saver"} <= set(ckpt)
    assert ckpt["trainer"]["iteration"] == 2 * ckpt["trainer"]["epoch_length"]  # ignite stores iterations
    # clinical statistics come from the training folds only (fold 0 is validation by default)
    records = json.loads(hip_datalist.read_text())["training"]
    train = [r for r in records if r["fold"] != 0]
    assert ClinicalStats.load(models / "clinical_stats.json") == ClinicalStats.fit(train)
    assert ClinicalStats.load(models / "clinical_stats.json") != ClinicalStats.fit(records)
    assert "val_r2" in log and "val_mae" in log
    assert list((root / "runs").glob("events.out.tfevents.*")), "TensorBoard events missing"


def test_evaluate_writes_metrics_csv_and_plots(hip_trained, hip_datalist):
    root, _ = hip_trained
    out = root / "eval_report"
    run_bundle(
        BUNDLE,
        ["train.json", "evaluate.json"],
        {"bundle_root": root, "datalist": hip_datalist, "output_dir": out, "n_bootstrap": 50, **TINY},
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"] == "hip" and metrics["synthetic"] is True and metrics["n"] == 4
    rows = read_synthetic_csv(out / "predictions.csv")
    assert len(rows) == 4
    err = [float(r["pred_bmd"]) - float(r["true_bmd"]) for r in rows]
    assert metrics["mse"] == pytest.approx(sum(e * e for e in err) / 4, rel=1e-4)
    assert metrics["mae"] == pytest.approx(sum(abs(e) for e in err) / 4, rel=1e-4)
    assert math.isfinite(metrics["r2"])
    low, osteo = metrics["screening"]["low_bmd"], metrics["screening"]["osteoporosis"]
    assert low["threshold"] == pytest.approx(0.899) and osteo["t_score"] == -2.5
    for part in (low, osteo):
        assert {"auc", "precision", "recall", "specificity", "f1"} <= set(part)
    for png in ("pred_vs_true.png", "bland_altman.png", "roc.png", "confusion_matrix.png"):
        assert (out / png).stat().st_size > 1000, png


def test_inference_on_a_dicom_folder_with_attention_and_gradcam(hip_trained, hip_datalist):
    root, _ = hip_trained
    cohort = hip_datalist.parent
    out = root / "infer"
    run_bundle(
        BUNDLE,
        ["inference.json"],
        {
            "bundle_root": root,
            "input": cohort / "dicom",
            "clinical_csv": cohort / "clinical.csv",
            "output_dir": out,
            "save_attention": "true",
            "save_gradcam": "true",
            **{k: v for k, v in TINY.items() if k != "val_batch_size"},
        },
    )
    rows = read_synthetic_csv(out / "predictions.csv")
    assert len(rows) == 12 and len({r["patient_id"] for r in rows}) == 12
    for r in rows:
        bmd, t = float(r["bmd"]), float(r["t_score"])
        assert 0.2 < bmd < 2.0
        assert t == pytest.approx((bmd - REFERENCE_MEAN) / REFERENCE_SD, abs=1e-4)
        assert r["who_class"] == who_class(t)
        attn = [float(r[f"attn_{f}"]) for f in CLINICAL_FIELDS]
        assert sum(attn) == pytest.approx(1.0, abs=1e-3)  # all fields present in the synthetic cohort
    doc = json.loads((out / "predictions.json").read_text())
    assert doc["synthetic"] is True and doc["n"] == 12 and doc["n_errors"] == 0
    assert len(list((out / "gradcam").glob("*.png"))) == 12


def test_second_train_run_resumes_from_the_last_checkpoint(hip_trained, hip_datalist):
    root, _ = hip_trained
    log = run_bundle(BUNDLE, ["train.json"], {"bundle_root": root, "datalist": hip_datalist, "epochs": 3, **TINY})
    assert "resuming from" in log and "Restored all variables from" in log
    models = root / "models"
    assert sorted(p.name for p in models.glob("checkpoint_epoch=*.pt")) == ["checkpoint_epoch=3.pt"]
    trainer = torch.load(models / "checkpoint_epoch=3.pt", weights_only=True)["trainer"]
    assert trainer["iteration"] == 3 * trainer["epoch_length"]
    assert "Epoch: 3/3" in log and "Epoch: 1/3" not in log
    # a run for another fold refuses this checkpoint folder instead of mixing folds
    from monai.bundle import ConfigWorkflow

    other = ConfigWorkflow(
        config_file=str(CONFIGS / "train.json"),
        bundle_root=str(root),
        datalist=str(hip_datalist),
        val_fold=1,
        pretrained="null",  # no ImageNet download in CI
    )
    other.initialize()
    with pytest.raises(RuntimeError) as err:
        other.parser.get_parsed_content("resume_ckpt")
    assert "written by a different run (val_fold: 0 -> 1)" in str(err.value.__cause__)


def test_properties_net_io_and_torchscript_export(hip_trained, hip_datalist, tmp_path):
    from monai.bundle import ConfigWorkflow, ckpt_export, verify_net_in_out

    root, _ = hip_trained
    train = ConfigWorkflow(
        config_file=str(CONFIGS / "train.json"),
        workflow_type="train",
        bundle_root=str(tmp_path),
        datalist=str(hip_datalist),
        **TINY,
    )
    train.initialize()
    assert train.check_properties() == []
    train_ids = {r["patient_id"] for r in train.train_dataset.data}
    val_ids = {r["patient_id"] for r in train.val_dataset.data}
    assert len(train_ids) == 8 and len(val_ids) == 4 and not train_ids & val_ids
    infer = ConfigWorkflow(
        config_file=str(CONFIGS / "inference.json"),
        workflow_type="inference",
        bundle_root=str(root),
        input=str(hip_datalist),
        spatial_size=64,
        num_workers=0,
    )
    infer.initialize()
    assert infer.check_properties() == []
    assert len(infer.dataset) == 12

    meta, config = str(CONFIGS / "metadata.json"), str(CONFIGS / "inference.json")
    clinical = torch.full((1, len(CLINICAL_FIELDS)), float("nan"))
    clinical[0, :4] = torch.tensor([0.5, -0.2, 1.0, 0.3])
    verify_net_in_out(
        net_id="network_def",
        meta_file=meta,
        config_file=config,
        device="cpu",
        extra_forward_args={"clinical": clinical},
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
    both = torch.cat([clinical, torch.randn(1, len(CLINICAL_FIELDS))])
    with torch.no_grad():
        torch.testing.assert_close(scripted(image, both), net(image, both))


def test_multi_gpu_config_runs_under_torchrun_on_cpu(hip_datalist, tmp_path):
    log = run_bundle(
        BUNDLE,
        ["train.json", "multi_gpu_train.json"],
        {"bundle_root": tmp_path, "datalist": hip_datalist, "epochs": 1, **{**TINY, "batch_size": 2}},
        nproc=2,
    )
    models = tmp_path / "models"
    assert sorted(p.name for p in models.glob("checkpoint_epoch=*.pt")) == ["checkpoint_epoch=1.pt"]
    assert (models / "model.pt").is_file()
    assert log.count("Saved checkpoint at epoch: 1") == 1  # rank 0 only
    # 8 training studies, 2 per batch, split over 2 ranks: 2 iterations per rank
    assert "Epoch: 1/1, Iter: 2/2" in log and "Iter: 3/" not in log


@pytest.mark.skipif(
    importlib.util.find_spec("mlflow") is None, reason="mlflow is an optional extra (pip install .[mlflow])"
)
def test_tracking_mlflow(hip_datalist, tmp_path):
    run_bundle(
        BUNDLE,
        ["train.json"],
        {"bundle_root": tmp_path, "datalist": hip_datalist, "epochs": 1, **TINY},
        extra=["--tracking", "mlflow"],
    )
    db = tmp_path / "eval" / "mlruns.db"
    assert db.is_file()
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{db}")
    experiment = client.get_experiment_by_name("monai_experiment")
    runs = client.search_runs([experiment.experiment_id])
    metrics = set().union(*(r.data.metrics for r in runs))
    assert {"train_loss", "val_r2"} <= metrics, metrics


def test_linear_probe_start_under_torchrun_then_inference(hip_datalist, tmp_path):
    """``linear_probe`` fits the skip on all ranks' training studies (8 = 2 ranks x 4), identically on each rank;
    the checkpoint then serves with ``linear_skip: true``."""
    overrides = {"bundle_root": tmp_path, "datalist": hip_datalist, "epochs": 1, **{**TINY, "batch_size": 2}}
    log = run_bundle(
        BUNDLE,
        ["train.json", "multi_gpu_train.json"],
        {**overrides, "linear_skip": "true", "linear_probe": "true", "epochs": 2},
        nproc=2,
    )
    fits = [line for line in log.splitlines() if "linear probe start of the skip" in line]
    assert len(fits) == 2 and all("'n': 8," in line for line in fits)
    assert fits[0].split("{", 1)[1] == fits[1].split("{", 1)[1]  # the same ridge on both ranks
    state = torch.load(tmp_path / "models" / "model.pt", map_location="cpu", weights_only=True)
    assert state["skip.weight"].shape == (1, 16 + 2 * len(CLINICAL_FIELDS))
    out = tmp_path / "infer"
    run_bundle(
        BUNDLE,
        ["inference.json"],
        {
            "bundle_root": tmp_path,
            "input": hip_datalist.parent / "dicom",
            "clinical_csv": hip_datalist.parent / "clinical.csv",
            "output_dir": out,
            "linear_skip": "true",
            **{k: v for k, v in TINY.items() if k != "val_batch_size"},
        },
    )
    assert json.loads((out / "predictions.json").read_text())["n"] == 12
