"""Clinical CSV reading: comments, delimiter sniffing, encodings, case-insensitive columns, typing, duplicate keys."""

from __future__ import annotations

import logging

import pytest

from monai_bone.constants import SYNTHETIC_NOTE
from monai_bone.data.clinical_csv import normalise_smoking, parse_number, read_clinical_csv


def _write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


def test_comments_types_and_synthetic_flag(tmp_path):
    path = _write(
        tmp_path / "c.csv",
        f"# {SYNTHETIC_NOTE}\n"
        "PatientID,age_bmd,bmi,alcohol,activity,diet_score,smoking,sex,bmd,label,site\n"
        "# a comment in the middle\n"
        "\n"
        "P1,75.5,26.1,0,2.5,-0.3,never,F,0.81,1,A\n"
        "P2,NA,,3,1,0.2,Ex-smoker,male,0.95,normal,B\n",
    )
    table = read_clinical_csv(path)
    assert table.synthetic and table.synthetic_files == [path]
    assert table.columns == [
        "age_bmd",
        "bmi",
        "alcohol",
        "activity",
        "diet_score",
        "sex",
        "smoking",
        "bmd",
        "label",
    ]
    assert table.has_column("bmd") and not table.has_column("height")
    p1, p2 = table.get("P1"), table.get(" P2 ")
    assert p1["age_bmd"] == 75.5 and p1["smoking"] == "never" and p1["sex"] == "F" and p1["bmd"] == 0.81
    assert p1["label"] == "1" and p1["site"] == "A"  # labels stay text (resolved by the index), extras kept
    assert p2["age_bmd"] is None and p2["bmi"] is None and p2["smoking"] == "former" and p2["sex"] == "M"
    assert table.get("P3") is None and table.get(None) is None
    assert len(table) == 2
    assert table.warnings == {}


def test_not_synthetic_without_note(tmp_path):
    path = _write(tmp_path / "c.csv", "# just a comment\nPatientID,bmi\nP1,20\n")
    assert read_clinical_csv(path).synthetic is False


def test_semicolon_decimal_comma_and_case_insensitive(tmp_path):
    path = _write(tmp_path / "c.csv", "patientid;AGE_XRAY;Height;WEIGHT\nP1;75,5;1,62;61\n")
    table = read_clinical_csv(path, key="PatientID")
    assert table.columns == ["age_xray", "height", "weight"]
    assert table.get("P1") == {"age_xray": 75.5, "height": 1.62, "weight": 61.0}


def test_tab_delimiter_and_bom(tmp_path):
    path = _write(tmp_path / "c.tsv", "PatientID\tbmi\tsmoking\nP1\t22.5\t2\n", encoding="utf-8-sig")
    table = read_clinical_csv(path)
    assert table.get("P1") == {"bmi": 22.5, "smoking": "current"}


def test_latin1_fallback(tmp_path, caplog):
    path = _write(tmp_path / "c.csv", "PatientID,site,bmi\nP1,Hôpital Nord,24\n", encoding="latin-1")
    with caplog.at_level(logging.WARNING):
        table = read_clinical_csv(path)
    assert table.get("P1") == {"site": "Hôpital Nord", "bmi": 24.0}
    assert "Latin-1" in caplog.text


def test_unparseable_cells_become_null_with_warning(tmp_path):
    path = _write(tmp_path / "c.csv", "PatientID,bmi,sex,smoking\nP1,heavy,X,sometimes\n")
    table = read_clinical_csv(path)
    assert table.get("P1") == {"bmi": None, "sex": None, "smoking": None}
    warnings = {w.field: w for w in table.warnings["P1"]}
    assert set(warnings) == {"bmi", "sex", "smoking"}
    assert all(w.code == "unparseable" and w.corrected is None for w in warnings.values())
    assert warnings["bmi"].original == "heavy" and warnings["bmi"].source == "csv:c.csv:2"


def test_duplicate_keys_merge_and_conflicts(tmp_path):
    a = _write(tmp_path / "a.csv", "PatientID,bmi,alcohol\nP1,25,\nP1,25,2\nP2,30,1\nP2,31,1\n")
    b = _write(tmp_path / "b.csv", "# second file\nPATIENTID,bmd,alcohol\nP1,0.8,2\nP2,0.9,1\nP3,1.0,\n")
    table = read_clinical_csv([a, b])
    assert table.get("P1") == {"bmi": 25.0, "alcohol": 2.0, "bmd": 0.8}  # missing filled, equal values fine
    assert table.get("P2")["bmi"] is None  # conflicting → null
    assert table.get("P2")["bmd"] == 0.9
    assert table.warnings.get("P1") is None
    (conflict,) = table.warnings["P2"]
    assert conflict.code == "conflict" and conflict.field == "bmi"
    assert "a.csv:4" in conflict.detail and "a.csv:5" in conflict.detail and "set to null" in conflict.detail
    assert table.origins["P1"] == "a.csv:2, a.csv:3, b.csv:3"
    assert table.get("P3") == {"bmd": 1.0, "alcohol": None}
    assert table.synthetic is False


def test_conflict_is_not_resurrected_by_a_third_row(tmp_path):
    path = _write(tmp_path / "c.csv", "PatientID,bmd\nP1,0.8\nP1,0.9\nP1,0.8\n")
    table = read_clinical_csv(path)
    assert table.get("P1")["bmd"] is None
    assert [w.code for w in table.warnings["P1"]] == ["conflict"]


def test_bad_rows_skipped_with_log(tmp_path, caplog):
    path = _write(tmp_path / "c.csv", "PatientID,bmi\nP1,20,extra\n,21\nP2,22\n")
    with caplog.at_level(logging.WARNING):
        table = read_clinical_csv(path)
    assert list(table.rows) == ["P2"]
    assert "c.csv:2" in caplog.text and "c.csv:3" in caplog.text


def test_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        read_clinical_csv(tmp_path / "missing.csv")
    nokey = _write(tmp_path / "nokey.csv", "ID,bmi\nP1,20\n")
    with pytest.raises(ValueError, match=r"nokey\.csv.*key column 'PatientID' not found"):
        read_clinical_csv(nokey)
    dup = _write(tmp_path / "dup.csv", "PatientID,bmi,BMI\nP1,20,21\n")
    with pytest.raises(ValueError, match=r"dup\.csv.*more than once"):
        read_clinical_csv(dup)
    empty = _write(tmp_path / "empty.csv", "# only a comment\n\n")
    with pytest.raises(ValueError, match=r"empty\.csv.*no header"):
        read_clinical_csv(empty)
    with pytest.raises(ValueError, match="no clinical CSV"):
        read_clinical_csv([])


def test_other_key_column(tmp_path):
    path = _write(tmp_path / "c.csv", "AccessionNumber,bmi\nA-7,20\n")
    assert read_clinical_csv(path, key="accessionnumber").get("A-7") == {"bmi": 20.0}


@pytest.mark.parametrize(
    "text, value", [("1.5", 1.5), (" 2 ", 2.0), ("NA", None), ("", None), ("null", None), ("?", None), (3, 3.0)]
)
def test_parse_number(text, value):
    assert parse_number(text) == value


def test_parse_number_errors_and_decimal_comma():
    assert parse_number("1,62", decimal_comma=True) == 1.62
    with pytest.raises(ValueError):
        parse_number("1,62")
    with pytest.raises(ValueError):
        parse_number("inf")
    with pytest.raises(ValueError):
        parse_number("abc")


@pytest.mark.parametrize(
    "text, code",
    [("never", "never"), ("No", "never"), ("ex", "former"), ("1", "former"), ("YES", "current"), ("2", "current")],
)
def test_normalise_smoking(text, code):
    assert normalise_smoking(text) == code


def test_normalise_smoking_unknown():
    assert normalise_smoking("") is None
    with pytest.raises(ValueError, match="smoking"):
        normalise_smoking("pipe")
