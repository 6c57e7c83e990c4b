"""The table of ``monai-bone`` sub-commands: name, module and one-line help.

``monai-bone --help`` is printed from this table alone, so listing the sub-commands imports none of their modules;
each sub-command module reads its own one-line help from here (:func:`command_help`).
"""

from __future__ import annotations

__all__ = ["COMMANDS", "command_help"]

#: Sub-commands in the order ``--help`` lists them: name -> (module in ``monai_bone.cli``, one-line help).
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("synth", "write a SYNTHETIC cohort (phantom radiographs + clinical CSV + ground truth)"),
    "index": (
        "index",
        "index a DICOM or KOP image folder, or a DICOMweb server, into a MONAI datalist (folds, rejects.csv, "
        "warnings.csv)",
    ),
    "demo": ("demo", "end-to-end demo on SYNTHETIC data: both bundles trained briefly, evaluated, run on DICOM files"),
    "cv": (
        "cv",
        "k-fold cross-validation ablation table (OST, clinical-only, image, concat, cross-attention, losses)",
    ),
    "export": ("export", "pack a trained bundle (weights, TorchScript, configs, docs, licence) into a verified zip"),
    "import": ("bundle_import", "verify an exported bundle zip (sha256 of every file) and unpack it"),
    "bundle": ("bundle", "locate or copy out a shipped bundle; make a key pair for signing exports"),
    "label": ("label", "serve the bundles in MONAI Label (label serve --studies FOLDER_OR_DICOMWEB_URL)"),
    "watch": ("watch", "poll a DICOMweb server for new DX/CR studies, infer, store DICOM SRs back (STOW-RS)"),
}


def command_help(name: str) -> str:
    """The one-line help of sub-command ``name`` (what ``monai-bone --help`` lists)."""
    return COMMANDS[name][1]
