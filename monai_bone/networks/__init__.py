"""monai_bone.networks"""
