"""BoneReportWriter / BonePredictionWriter / metric handlers in a two-rank gloo (CPU) DDP evaluation."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import ignite.distributed as idist
import pytest
from _bone_handler_helpers import HIP_TRUE, direct_outputs, evaluator, hip_records, pixel_net, read_csv
from monai.handlers import from_engine

from monai_bone.handlers import R2, BonePredictionWriter, BoneReportWriter, ScreeningAUC
from monai_bone.metrics import regression_metrics

FE = from_engine(["pred", "label"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(local_rank: int, out_dir: str) -> None:
    rank, world = idist.get_rank(), idist.get_world_size()
    records = hip_records()[rank::world]  # 4 and 3 studies: uneven shards
    writers = [
        BoneReportWriter(Path(out_dir) / "report", task="hip", n_bootstrap=0, plots=False),
        BonePredictionWriter(Path(out_dir) / "inference", task="hip"),
    ]
    ev = evaluator(
        pixel_net(),
        records,
        writers,
        key_metric={"r2": R2(output_transform=FE)},
        metrics={"auc": ScreeningAUC(output_transform=FE)},
        batch_size=3,
    )
    ev.run()
    Path(out_dir, f"engine_metrics_rank{rank}.json").write_text(json.dumps(ev.state.metrics))


@pytest.mark.timeout(240)
def test_ddp_two_ranks_gloo_gathers_all_rows(tmp_path):
    with idist.Parallel(backend="gloo", nproc_per_node=2, master_port=_free_port()) as parallel:
        parallel.run(_ddp_worker, str(tmp_path))
    pred = direct_outputs(pixel_net(), hip_records())[:, 0]
    report = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert report["n"] == 7
    assert report["r2"] == pytest.approx(regression_metrics(pred, HIP_TRUE)["r2"])
    _, rows = read_csv(tmp_path / "report" / "predictions.csv")
    assert sorted(r["patient_id"] for r in rows) == [f"SYN-H-{i:04d}" for i in range(1, 8)]
    _, inf_rows = read_csv(tmp_path / "inference" / "predictions.csv")
    assert len(inf_rows) == 7
    for rank in (0, 1):  # metrics are reduced over both ranks
        m = json.loads((tmp_path / f"engine_metrics_rank{rank}.json").read_text())
        assert m["r2"] == pytest.approx(report["r2"], rel=1e-9)
        assert m["auc"] == pytest.approx(report["screening"]["low_bmd"]["auc"])
