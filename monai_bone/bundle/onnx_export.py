"""ONNX export of a bundle network with all its named inputs and a dynamic batch axis.

MONAI's ``onnx_export`` feeds one input (``image``) at the metadata shape. The hip network also takes ``clinical``
(``(B, F)`` standardised fields, NaN where missing) and ``clinical_mask`` (``(B, F)``, 1 = present): this exporter
reads the inputs from ``network_data_format`` (``image`` first, then ``clinical``; ``clinical_mask`` added when the
network's ``forward`` accepts it), exports with the TorchScript-based exporter (``dynamo=False``: ~4 s for XAttnBMD
against ~20 s) and names the batch axis of every input and of ``pred`` dynamic. The spatial size stays the metadata's
(the graph is specialised to it, see :class:`monai_bone.networks.XAttnBMD`).

:func:`check_onnx` runs the exported graph in ONNX Runtime against the eager network on random inputs with missing
fields, for batch 1 and 4, and returns the largest absolute difference.
"""

from __future__ import annotations

import inspect
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

__all__ = ["check_onnx", "example_inputs", "export_onnx", "input_names"]


def input_names(network: torch.nn.Module, meta: Mapping[str, Any]) -> list[str]:
    """Names of the network inputs in ``forward`` order: ``image``, then ``clinical`` and ``clinical_mask`` when the
    metadata describes a clinical input and ``forward`` accepts them."""
    inputs = meta.get("network_data_format", {}).get("inputs", {})
    params = inspect.signature(network.forward).parameters
    names = ["image"]
    if "clinical" in inputs and "clinical" in params:
        names.append("clinical")
        if "clinical_mask" in params:
            names.append("clinical_mask")
    return names


def example_inputs(
    meta: Mapping[str, Any], names: Sequence[str], batch: int, seed: int = 0, missing: float = 0.3
) -> tuple[torch.Tensor, ...]:
    """Random inputs at the metadata shape: image in [0, 1], clinical ~ N(0, 1) with about ``missing`` of the fields
    NaN (and 0 in ``clinical_mask``, which also marks the first present field of each row missing)."""
    inputs = meta["network_data_format"]["inputs"]
    g = torch.Generator().manual_seed(seed)
    img = inputs["image"]
    image = torch.rand(batch, int(img.get("num_channels", 1)), *[int(s) for s in img["spatial_shape"]], generator=g)
    out = [image]
    if "clinical" in names:
        n = int(inputs["clinical"]["num_channels"])
        clinical = torch.randn(batch, n, generator=g)
        gone = torch.rand(batch, n, generator=g) < missing
        clinical[gone] = float("nan")
        out.append(clinical)
        if "clinical_mask" in names:
            mask = (~gone).float()
            for row in range(batch):  # one more field per row missing by the mask only (its value stays finite)
                present = torch.nonzero(mask[row]).flatten()
                if len(present):
                    mask[row, present[0]] = 0.0
            out.append(mask)
    return tuple(out)


def export_onnx(
    network: torch.nn.Module, meta: Mapping[str, Any], path: str | os.PathLike, opset: int | None = None
) -> list[str]:
    """Export ``network`` (in eval mode) to ONNX with every input named and the batch axis dynamic.

    Args:
        network: the bundle network with its weights loaded.
        meta: the bundle metadata (``network_data_format`` gives the input shapes).
        path: the ``.onnx`` file to write.
        opset: ONNX opset (default: the exporter's).

    Returns:
        The input names in order.

    Raises:
        RuntimeError: the exporter failed (message names the network class).
    """
    network = network.eval()
    names = input_names(network, meta)
    args = example_inputs(meta, names, batch=2)
    axes = {n: {0: "batch"} for n in [*names, "pred"]}
    kwargs: dict[str, Any] = {"opset_version": opset} if opset else {}
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer notices about the NaN-mask branch and shape asserts
            torch.onnx.export(
                network,
                args,
                str(path),
                input_names=names,
                output_names=["pred"],
                dynamic_axes=axes,
                dynamo=False,
                **kwargs,
            )
    except Exception as err:  # noqa: BLE001 - report which network failed and why
        raise RuntimeError(f"ONNX export of {type(network).__name__} failed: {err}") from err
    return names


def check_onnx(
    network: torch.nn.Module, meta: Mapping[str, Any], path: str | os.PathLike, batches: Sequence[int] = (1, 4)
) -> float:
    """Largest |ONNX Runtime - eager| over random inputs (with missing fields) for each batch size in ``batches``."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(Path(path)), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    worst = 0.0
    network = network.eval()
    for i, batch in enumerate(batches):
        inputs = example_inputs(meta, names, batch=batch, seed=100 + i)
        with torch.no_grad():
            eager = network(*inputs).numpy()
        got = session.run(None, {n: x.numpy() for n, x in zip(names, inputs)})[0]
        if got.shape != eager.shape:
            raise RuntimeError(f"{path}: ONNX output shape {got.shape} differs from eager {eager.shape}")
        worst = max(worst, float(abs(got - eager).max()))
    return worst
