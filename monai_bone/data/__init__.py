"""Data sources, synthetic cohort, DICOM header reading and datalist indexing."""
