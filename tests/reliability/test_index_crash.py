"""SIGKILL while ``monai-bone index`` commits its outputs: never the files of two runs side by side, and the next run
removes the temporary files and writes one complete set sharing one run id.

The index runs in a real child process (forked, so that each run skips interpreter start-up). Kill points are
reached with the testing pause of :mod:`monai_bone.data.index_outputs` (``MONAI_BONE_TEST_COMMIT_PAUSE``: the process
sleeps at that step of the commit) and detected from the files themselves; three more kills land at random moments
of whole runs.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import time
from pathlib import Path

import pytest

from monai_bone.data.index_outputs import PAUSE_ENV, read_run_id

NAMES = ("datalist.json", "rejects.csv", "warnings.csv")


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    from monai_bone.synthetic.synth import synthesize

    root = tmp_path_factory.mktemp("crash")
    synthesize("hip", 6, root / "hip", seed=2, size=64, progress=False)
    (root / "hip" / "dicom" / "notes.txt").write_text("not an image\n")  # one reject, so rejects.csv has a row
    return root


def _index(cohort: Path, out: Path, pause: dict | None) -> None:
    """Child process body: the index as ``monai-bone index`` runs it."""
    from monai_bone.data.datalist import build_datalist

    os.environ.pop(PAUSE_ENV, None)
    if pause:
        os.environ[PAUSE_ENV] = json.dumps(pause)
    hip = cohort / "hip"
    clinical = [hip / "clinical.csv", hip / "ground_truth.csv"]
    build_datalist(hip / "dicom", out / "datalist.json", clinical=clinical, task="hip", folds=2, progress=False)


def _start(cohort: Path, out: Path, pause: dict | None = None):
    """A forked child running the index (forked: no interpreter start-up and imports per run on a loaded machine)."""
    proc = multiprocessing.get_context("fork").Process(target=_index, args=(cohort, out, pause), daemon=True)
    proc.start()
    return proc


def _temps(out: Path) -> list[Path]:
    return sorted(out.glob(".*.tmp"))


def _run_ids(out: Path) -> dict[str, str | None]:
    return {name: read_run_id(out / name) for name in NAMES if (out / name).exists()}


def _wait(proc, ready, what: str, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not ready():
        assert proc.is_alive(), f"the index ended (exit code {proc.exitcode}) before reaching {what}"
        assert time.monotonic() < end, f"kill point {what} not reached"
        time.sleep(0.02)


def _kill(proc, may_have_finished: bool = False) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(timeout=30)
    # a random moment can fall just after the index finished (alive when checked, exited before the signal)
    assert proc.exitcode in ((-signal.SIGKILL, 0) if may_have_finished else (-signal.SIGKILL,))


def _assert_one_run(out: Path) -> None:
    """Whatever is present belongs to one run; a datalist is always beside its own rejects and warnings."""
    ids = _run_ids(out)
    assert None not in ids.values(), ids
    assert len(set(ids.values())) <= 1, f"files of two runs side by side: {ids}"
    if "datalist.json" in ids:
        assert set(ids) == set(NAMES), ids


def _new_id(path: Path, seen: set) -> bool:
    return path.exists() and read_run_id(path) not in seen


def _complete(cohort: Path, out: Path) -> str:
    proc = _start(cohort, out)
    proc.join(timeout=240)
    assert proc.exitcode == 0, f"the index failed (exit code {proc.exitcode})"
    assert _temps(out) == [], _temps(out)
    ids = _run_ids(out)
    assert set(ids) == set(NAMES) and len(set(ids.values())) == 1, ids
    return ids["datalist.json"]


def test_sigkill_at_each_commit_step_never_mixes_runs(cohort, tmp_path):
    out = tmp_path / "index"
    first = _complete(cohort, out)
    (out / ".rejects.csv.legacy1.tmp").write_text("left by an older, killed run\n")  # the stale temp file

    def new_temps() -> bool:
        return any(".legacy" not in p.name for p in _temps(out))

    points = [
        ("temps", new_temps),  # new temporaries written and fsync'd, nothing replaced yet
        ("deleted", lambda: not (out / "datalist.json").exists() and new_temps()),  # old set deleted
        ("renamed:rejects.csv", lambda: _new_id(out / "rejects.csv", seen)),  # first new file in place
        ("renamed:warnings.csv", lambda: _new_id(out / "warnings.csv", seen)),  # all but the datalist in place
    ]
    seen = {first}
    for step, ready in points:
        proc = _start(cohort, out, pause={step: 60})
        _wait(proc, ready, step)
        _kill(proc)
        _assert_one_run(out)
        seen |= set(_run_ids(out).values())
        assert _temps(out), f"kill at {step}: expected the killed run's temporaries to be left"
        assert not (out / "datalist.json").exists() or step == "temps"

    last = _complete(cohort, out)  # the next run: no temporary left, one run id in every file
    assert last not in seen
    records = json.loads((out / "datalist.json").read_text())["training"]
    assert len(records) == 6 and json.loads((out / "datalist.json").read_text())["run_id"] == last


def test_sigkill_at_random_moments(cohort, tmp_path):
    out = tmp_path / "index"
    _complete(cohort, out)
    rng = random.Random(7)
    for _ in range(3):
        proc = _start(cohort, out)
        time.sleep(rng.uniform(0.05, 1.5))  # scan or commit, whichever it is in
        if proc.is_alive():
            _kill(proc, may_have_finished=True)
        _assert_one_run(out)
    _complete(cohort, out)
