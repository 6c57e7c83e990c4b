"""monai_bone.losses"""
