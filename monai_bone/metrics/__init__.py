"""monai_bone.metrics"""
