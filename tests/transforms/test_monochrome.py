"""One phantom radiograph written as MONOCHROME1 and as MONOCHROME2 DX files normalises to the same image.

Uses the synthetic generator (:func:`monai_bone.synthetic.phantom.render_phantom`) and the DX writer
(:func:`monai_bone.synthetic.dicom_writer.write_dx`); all files are SYNTHETIC.
"""

from __future__ import annotations

import numpy as np
import pytest

from monai_bone.synthetic.dicom_writer import write_dx
from monai_bone.synthetic.phantom import render_phantom
from monai_bone.transforms import LoadXray, XrayNormalise


@pytest.fixture(scope="module")
def phantom():
    return render_phantom("hip", 0.85, 26.0, size=64, seed=3, bits_stored=12, return_masks=True)


def _write_pair(folder, phantom, rescale=(1.0, 0.0)):
    paths = {}
    for photometric in ("MONOCHROME1", "MONOCHROME2"):
        paths[photometric] = write_dx(
            folder / f"{photometric}.dcm",
            phantom.pixels,
            patient_id="SYN-H-0001",
            body_part="HIP",
            photometric=photometric,
            bits_stored=phantom.bits_stored,
            pixel_spacing_mm=phantom.pixel_spacing_mm,
            rescale=rescale,
            window=phantom.window,
        )
    return paths


def test_stored_values_are_mirrored(tmp_path, phantom):
    paths = _write_pair(tmp_path, phantom)
    load = LoadXray()
    m1, m2 = load(paths["MONOCHROME1"]), load(paths["MONOCHROME2"])
    assert m1.meta["PhotometricInterpretation"] == "MONOCHROME1"
    assert m2.meta["PhotometricInterpretation"] == "MONOCHROME2"
    np.testing.assert_array_equal((m1 + m2).numpy(), np.full(m1.shape, 2**phantom.bits_stored - 1, np.float32))
    np.testing.assert_array_equal(m2[0].numpy(), phantom.pixels.astype(np.float32))


@pytest.mark.parametrize("rescale", [(1.0, 0.0), (2.0, -100.0)])
@pytest.mark.parametrize("percentiles", [(0.5, 99.5), (2.0, 90.0), None])
def test_monochrome1_equals_monochrome2(tmp_path, phantom, rescale, percentiles):
    paths = _write_pair(tmp_path, phantom, rescale=rescale)
    load, norm = LoadXray(), XrayNormalise(percentiles=percentiles)
    m1, m2 = norm(load(paths["MONOCHROME1"])), norm(load(paths["MONOCHROME2"]))
    np.testing.assert_allclose(m1.numpy(), m2.numpy(), atol=1e-5)
    # and the common result is bone bright (MONOCHROME2 convention), not merely equal
    bone, soft = phantom.masks["bone"], phantom.masks["soft"]
    assert float(m1[0].numpy()[bone].mean()) > float(m1[0].numpy()[soft].mean()) + 0.1


def test_monochrome1_equals_monochrome2_with_file_window(tmp_path, phantom):
    paths = _write_pair(tmp_path, phantom, rescale=(2.0, -100.0))
    load, norm = LoadXray(), XrayNormalise(window="voi", percentiles=None)
    raw1, raw2 = load(paths["MONOCHROME1"]), load(paths["MONOCHROME2"])
    width = float(raw2.meta["WindowWidth"])
    assert width == pytest.approx(2.0 * phantom.window[1], rel=1e-4)
    m1, m2 = norm(raw1), norm(raw2)
    # DICOM's LINEAR window is centred on c - 0.5, so the mirrored file differs by one modality unit of the window
    np.testing.assert_allclose(m1.numpy(), m2.numpy(), atol=1.5 / (width - 1.0))
    # the window really was applied: both ends of the window are reached (saturated), unlike a plain min-max
    assert float((m2 == 0).float().mean()) > 0.005 and float((m2 == 1).float().mean()) > 0.005
