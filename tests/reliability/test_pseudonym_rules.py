"""Salted pseudonyms: deterministic per salt, different across salts, valid UIDs, salt required and never shown."""

from __future__ import annotations

import csv
import re

import pytest

from monai_bone.data.pseudonym import SALT_ENV, Pseudonymiser, resolve_salt


def test_pseudonyms_are_keyed_and_stable():
    a, b, c = Pseudonymiser("salt-one-123"), Pseudonymiser("salt-one-123"), Pseudonymiser("salt-two-456")
    pid = a.pseudonym("PatientID", "MRN-0042")
    assert pid == b.pseudonym("PatientID", " MRN-0042 ") and pid != c.pseudonym("PatientID", "MRN-0042")
    assert re.fullmatch(r"PSN-[0-9a-f]{20}", pid)
    assert a.pseudonym("PatientID", "MRN-0043") != pid
    uid = a.pseudonym("SOPInstanceUID", "1.2.840.113619.2.55.3.1")
    assert re.fullmatch(r"2\.25\.[1-9][0-9]*", uid) and len(uid) <= 64  # a valid DICOM UID
    assert a.pseudonym("PatientID", None) is None and a.pseudonym("PatientID", "  ") is None
    assert "salt" not in repr(a)


def test_salt_is_required_and_read_from_the_environment(monkeypatch):
    monkeypatch.delenv(SALT_ENV, raising=False)
    with pytest.raises(ValueError, match=f"--salt or set the environment variable {SALT_ENV}"):
        resolve_salt(None)
    with pytest.raises(ValueError, match="too short"):
        Pseudonymiser("short")
    monkeypatch.setenv(SALT_ENV, "from-the-environment")
    assert resolve_salt(None) == "from-the-environment"
    assert Pseudonymiser("").pseudonym("PatientID", "X") == Pseudonymiser("from-the-environment").pseudonym(
        "PatientID", "X"
    )


def test_mapping_written_only_when_asked(tmp_path):
    from monai_bone.data.datalist import build_datalist

    p = Pseudonymiser("a-long-enough-salt")
    p.pseudonym("PatientID", "P1")
    p.pseudonym("StudyInstanceUID", "1.2.3")
    path = p.write_mapping(tmp_path / "private" / "map.csv")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert {(r["kind"], r["original"]) for r in rows} == {("PatientID", "P1"), ("StudyInstanceUID", "1.2.3")}
    assert "a-long-enough-salt" not in path.read_text()
    with pytest.raises(ValueError, match="without pseudonymise"):
        build_datalist(tmp_path, tmp_path / "d.json", mapping=tmp_path / "m.csv")
