"""Clinical values of a request: parsing, nesting, errors with a 400 status naming the field."""

from __future__ import annotations

import pytest

from monai_bone.label import PredictionError, clinical_from_request


def test_top_level_and_nested_values_are_typed() -> None:
    got = clinical_from_request(
        {"model": "x", "image": "y", "age_bmd": "71", "sex": "female", "clinical": {"smoking": 2, "diet_score": -0.5}}
    )
    assert got == {"age_bmd": 71.0, "sex": "F", "smoking": "current", "diet_score": -0.5}


def test_missing_tokens_are_not_values() -> None:
    assert clinical_from_request({"alcohol": "NA", "sex": "", "clinical": {"activity": None}}) == {}
    assert clinical_from_request(None) == {}


@pytest.mark.parametrize(
    "params, text",
    [
        ({"weight": "heavy"}, "'weight'"),
        ({"sex": "X"}, "'sex'"),
        ({"smoking": "sometimes"}, "'smoking'"),
        ({"clinical": {"shoe_size": 42}}, "unknown clinical field"),
        ({"clinical": [1, 2]}, "must be an object"),
        ({"age_xray": "inf"}, "'age_xray'"),
    ],
)
def test_bad_values_are_400(params, text) -> None:
    with pytest.raises(PredictionError, match=text) as err:
        clinical_from_request(params)
    assert err.value.status == 400


def test_empty_file_is_400_with_a_reason(tmp_path) -> None:
    from monai_bone.label import find_study_file

    (tmp_path / "empty.dcm").write_bytes(b"")
    with pytest.raises(PredictionError, match="empty") as err:
        find_study_file(tmp_path / "empty.dcm")
    assert err.value.status == 400 and err.value.reason == "empty_image"


@pytest.mark.parametrize(
    "message, reason",
    [
        ("a.dcm: RejectError: blank_image: constant pixels", "blank_image"),
        ("wrong_body_part: KNEE is not HIP", "wrong_body_part"),
        ("img_1.dcm: ValueError: cannot decode", "unusable_image"),
        ("", "unusable_image"),
    ],
)
def test_reasons_are_read_from_load_errors(message, reason) -> None:
    from monai_bone.label.request import error_reason

    assert error_reason(message) == reason
