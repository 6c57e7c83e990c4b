"""monai_bone.networks.blocks"""
