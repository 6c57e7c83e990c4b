"""monai_bone.networks.nets"""
