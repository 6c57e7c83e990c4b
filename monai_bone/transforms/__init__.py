"""monai_bone.transforms"""
