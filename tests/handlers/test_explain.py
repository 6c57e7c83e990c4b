"""The explanation handlers (Grad-CAM, field attention): argument checks."""

from __future__ import annotations

import pytest
import torch

from monai_bone.handlers import FieldAttentionHandler, GradCamSaver
from monai_bone.networks import XAttnBMD


def test_explanation_handlers_check_their_network():
    concat = XAttnBMD(fusion="concat", hidden_size=32, num_heads=4)
    with pytest.raises(ValueError, match="save_attention needs an XAttnBMD network with fusion='xattn'"):
        FieldAttentionHandler(concat)
    with pytest.raises(ValueError, match="save_attention needs"):
        FieldAttentionHandler(torch.nn.Linear(2, 1))
    with pytest.raises(ValueError, match="gradcam_layer 'encoder.layer9' is not a layer of XAttnBMD"):
        GradCamSaver(concat, "encoder.layer9", "out")
    assert GradCamSaver(concat, "encoder.layer4", "out").target_layer == "encoder.layer4"
