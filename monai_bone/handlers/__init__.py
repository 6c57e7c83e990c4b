"""monai_bone.handlers"""
