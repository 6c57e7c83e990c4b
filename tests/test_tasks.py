"""Tests of the task registry (``monai_bone.tasks``)."""

import pytest

from monai_bone.constants import SCREENING_THRESHOLD
from monai_bone.tasks import TaskSpec, get_task, register_task, task_for_bundle, task_names


def test_registry_holds_both_shipped_tasks():
    assert task_names() == ("hip", "knee")
    hip, knee = get_task("hip"), get_task("knee")
    assert hip.is_regression and hip.label_key == "bmd" and hip.uses_clinical
    assert hip.screening_threshold == SCREENING_THRESHOLD
    assert knee.is_classification and knee.label_key == "label" and not knee.uses_clinical
    assert task_for_bundle("knee_osteoporosis_hybrid_attention") is knee
    assert get_task(hip) is hip


def test_unknown_task_and_bad_spec_are_clear_errors():
    with pytest.raises(ValueError, match="unknown task 'spine'"):
        get_task("spine")
    with pytest.raises(ValueError, match="no task uses bundle"):
        task_for_bundle("nope")
    with pytest.raises(ValueError, match="label_kind"):
        TaskSpec(name="x", label_kind="ordinal", label_key="y", bundle_name="b", body_parts=())
    with pytest.raises(ValueError, match="already registered"):
        register_task(get_task("hip"))
