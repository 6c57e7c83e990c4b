"""Coded concepts of the monai-bone DICOM objects (SR content items, units, qualitative values).

Standard codes where one says what we mean (SNOMED CT for the WHO categories and positive/negative, DCM for the
comment and the algorithm, UCUM for the units). The estimates themselves use local codes of the private coding
scheme :data:`SCHEME` (``99MBONE``): LOINC's bone-density codes describe DXA measurements, and these values are
estimates from a plain radiograph -- giving them a DXA code would let a receiving system take them for a DXA result.
Every private code is listed in :data:`PRIVATE_CODES` and documented in the model cards.
"""

from __future__ import annotations

from highdicom.sr import CodedConcept

__all__ = [
    "CLASS_VALUES",
    "COMMENT",
    "DIAGNOSTIC_DISCLAIMER",
    "G_PER_CM2",
    "KNEE_CLASS",
    "NO",
    "NO_UNITS",
    "PRIVATE_CODES",
    "PROCEDURE",
    "SCHEME",
    "SCREENING",
    "SYNTHETIC_INPUT",
    "T_SCORE_UNIT",
    "YES",
    "est",
    "screening_value",
]

#: Private coding scheme designator of the local codes (``99`` prefix: a local scheme, DICOM PS3.16 8.2).
SCHEME: str = "99MBONE"

#: Local concepts: code value -> meaning.
PRIVATE_CODES: dict[str, str] = {
    "BMD-FN-EST": "Estimated femoral neck BMD from hip radiograph",
    "T-FN-EST": "Estimated femoral neck T-score from hip radiograph",
    "WHO-CAT": "WHO bone density category of the estimate",
    "SCREEN": "Low BMD screening result",
    "SCREEN-THR": "Screening threshold BMD",
    "REF-MEAN": "Young-adult reference mean BMD",
    "REF-SD": "Young-adult reference SD of BMD",
    "KNEE-CLS": "Knee radiograph osteoporosis classification",
    "KNEE-PROB": "Probability of the predicted class",
    "SYNTH": "Synthetic input data",
    "HEATMAP": "Grad-CAM heat map overlay",
}


def est(code: str) -> CodedConcept:
    """The local concept ``code`` of :data:`PRIVATE_CODES`."""
    return CodedConcept(code, SCHEME, PRIVATE_CODES[code])


#: UCUM units.
G_PER_CM2 = CodedConcept("g/cm2", "UCUM", "gram per square centimeter")
T_SCORE_UNIT = CodedConcept("{T-score}", "UCUM", "T-score")
NO_UNITS = CodedConcept("1", "UCUM", "no units")

#: Procedure reported (TID 1500 row 7): a plain radiograph.
PROCEDURE = CodedConcept("363680008", "SCT", "Radiographic imaging procedure")

#: WHO categories / knee classes (SNOMED CT).
CLASS_VALUES: dict[str, CodedConcept] = {
    "normal": CodedConcept("17621005", "SCT", "Normal"),
    "osteopenia": CodedConcept("312894000", "SCT", "Osteopenia"),
    "osteoporosis": CodedConcept("64859006", "SCT", "Osteoporosis"),
}
YES = CodedConcept("373066001", "SCT", "Yes")
NO = CodedConcept("373067005", "SCT", "No")
_POSITIVE = CodedConcept("10828004", "SCT", "Positive")
_NEGATIVE = CodedConcept("260385009", "SCT", "Negative")

SCREENING = est("SCREEN")
KNEE_CLASS = est("KNEE-CLS")
SYNTHETIC_INPUT = est("SYNTH")
COMMENT = CodedConcept("121106", "DCM", "Comment")

#: Text every object carries.
DIAGNOSTIC_DISCLAIMER: str = (
    "Research software (monai-bone): an estimate from a plain radiograph, not a DXA measurement. "
    "Not a diagnostic device; not for clinical decisions."
)


def screening_value(positive: bool) -> CodedConcept:
    """SNOMED CT Positive / Negative."""
    return _POSITIVE if positive else _NEGATIVE
