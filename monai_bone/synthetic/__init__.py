"""The SYNTHETIC cohort generator: cohort model, phantom renderers, DX DICOM and KOP-style writers, the ``synth`` entry.

Generation is apart from ingestion (:mod:`monai_bone.data`): these modules import only :mod:`monai_bone.constants`,
:mod:`monai_bone.tasks` and :mod:`monai_bone.utils`, and everything they write is labelled SYNTHETIC. The main entry
is :func:`monai_bone.synthetic.synth.synthesize` (``monai-bone synth``).
"""
