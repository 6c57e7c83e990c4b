"""GPU fast path of the bundles: mixed precision, channels-last, cuDNN autotuning, pinned memory, ``torch.compile``.

One function decides, from the device and the bundle options, which speed-ups a run uses; the bundle configs read the
result (``@fast_path``) instead of repeating the logic in JSON::

    "fast_path": "$monai_bone.engines.select_fast_path(@device, enabled=@gpu_fast_path, amp=@amp, ...)",
    "prepare_batch": {"_target_": "monai_bone.engines.PrepareBatchPlainTensor", "prepare_batch": ...},
    "network": "$@fast_path.prepare_network(@network_def)",
    trainer: "amp": "$@fast_path.amp", "amp_kwargs": "$@fast_path.amp_kwargs",
             "non_blocking": "$@fast_path.non_blocking", "compile": "$@fast_path.compile",
             "compile_kwargs": "$@fast_path.compile_kwargs", "prepare_batch": "@prepare_batch"
    evaluators: the same without compile
    dataloader: "pin_memory": "$@fast_path.pin_memory"
    initialize: [..., "$@fast_path.apply_backend()"]   (after set_determinism, which switches cuDNN autotuning off)

Defaults (every option ``"auto"`` except ``compile``):

=====================  ============================================  ==============================================
setting                CUDA (``gpu_fast_path`` true)                 CPU, or ``gpu_fast_path`` false
=====================  ============================================  ==============================================
``amp``                on: ``bfloat16`` autocast where the GPU has   off (fp32)
                       native bf16 (compute capability >= 8.0),
                       else ``float16`` (loss scaling needed)
``channels_last``      on (the network's 4-D weights)                off
``cudnn_benchmark``    on (and ``cudnn.deterministic`` off), unless  untouched
                       the run asks for ``deterministic``
``pin_memory``         on                                            off
``non_blocking``       on                                            off
``compile``            off unless asked for                          off unless asked for
=====================  ============================================  ==============================================

Independent of the device, :class:`PrepareBatchPlainTensor` hands the network plain ``torch.Tensor`` inputs instead of
MONAI ``MetaTensor`` (the batch itself keeps its metadata for the handlers): every tensor operation on a MetaTensor
goes through Python-level metadata bookkeeping, which cost the knee network (DenseNet169: hundreds of small ops per
step) ~10 % of its CPU training throughput in ``benchmarks/bench_engine.py`` -- a fixed cost per op that weighs more
where the ops themselves are fast (GPU). The arithmetic is the same. Likewise the trainers set
``optim_set_to_none: true`` (PyTorch's own default): MONAI's default zero-fills every gradient before each step and
lets backward accumulate into it, ~5 % of a CPU training step for both networks in the same benchmark.

MONAI's ``SupervisedTrainer`` (1.6) always wraps its AMP step in ``torch.cuda.amp.GradScaler``: required for
``float16``, redundant but harmless for ``bfloat16`` (it only rescales the loss and checks for inf). ``amp_kwargs``
(``{"dtype": ...}``) is handed to its ``torch.autocast("cuda", ...)``. ``compile`` uses the trainer's own
``compile``/``compile_kwargs`` arguments (MONAI >= 1.4), which strip MetaTensor inputs around the compiled forward.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from monai.data import MetaTensor
from monai.engines import PrepareBatch, PrepareBatchDefault

from monai_bone.utils.options import as_bool

from .device import select_device

__all__ = ["AMP_DTYPES", "FastPath", "PrepareBatchPlainTensor", "bf16_supported", "select_fast_path"]

logger = logging.getLogger(__name__)

#: Accepted ``amp_dtype`` values.
AMP_DTYPES: tuple[str, ...] = ("auto", "bfloat16", "float16")
_DTYPES = {"bfloat16": torch.bfloat16, "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}


@dataclass(frozen=True)
class FastPath:
    """The speed settings of one run (see the module docstring for how they are chosen).

    Args:
        device: the device the run uses.
        amp: autocast the forward pass (CUDA only).
        amp_dtype: autocast dtype (``torch.bfloat16`` or ``torch.float16``); None without AMP.
        grad_scaler: whether the AMP dtype needs loss scaling (``float16``).
        channels_last: convert the network's 4-D parameters to ``torch.channels_last``.
        cudnn_benchmark: let cuDNN autotune convolution algorithms (not bit-reproducible).
        pin_memory: page-locked host memory in the data loaders.
        non_blocking: asynchronous host-to-device copies.
        compile: ``torch.compile`` the network in the trainer.
        compile_kwargs: arguments of ``torch.compile``.
    """

    device: torch.device
    amp: bool = False
    amp_dtype: torch.dtype | None = None
    grad_scaler: bool = False
    channels_last: bool = False
    cudnn_benchmark: bool = False
    pin_memory: bool = False
    non_blocking: bool = False
    compile: bool = False
    compile_kwargs: dict = field(default_factory=dict)

    @property
    def amp_kwargs(self) -> dict[str, Any]:
        """Arguments of ``torch.autocast`` for MONAI's engines (``{"dtype": ...}`` with AMP, else empty)."""
        return {"dtype": self.amp_dtype} if self.amp and self.amp_dtype is not None else {}

    @property
    def memory_format(self) -> torch.memory_format:
        """``torch.channels_last`` or ``torch.contiguous_format``."""
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def prepare_network(self, network: torch.nn.Module) -> torch.nn.Module:
        """Move ``network`` to the device, in channels-last layout when enabled (in place; returns it).

        Only the 4-D parameters and buffers change layout (PyTorch skips the others); a convolution whose weight is
        channels-last runs channels-last on cuDNN whatever the input layout, so inputs need no conversion.
        """
        if self.channels_last:
            return network.to(device=self.device, memory_format=torch.channels_last)
        return network.to(self.device)

    def apply_backend(self) -> None:
        """Set the global cuDNN flags (only when ``cudnn_benchmark``; otherwise leaves them as they are).

        Call it after ``monai.utils.set_determinism`` (which turns autotuning off and determinism on).
        """
        if self.cudnn_benchmark:
            torch.backends.cudnn.benchmark = True
            torch.backends.cudnn.deterministic = False
            logger.info("cuDNN autotuning on (cudnn.benchmark=True, deterministic=False)")

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (device and dtype as strings)."""
        out = asdict(self)
        out["device"] = str(self.device)
        out["amp_dtype"] = None if self.amp_dtype is None else str(self.amp_dtype).replace("torch.", "")
        return out


def _plain(x: Any) -> Any:
    if isinstance(x, MetaTensor):
        return x.as_tensor()
    if isinstance(x, tuple):
        return tuple(_plain(v) for v in x)
    if isinstance(x, list):
        return [_plain(v) for v in x]
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    return x


class PrepareBatchPlainTensor(PrepareBatch):
    """Run a MONAI ``prepare_batch`` and give the engine plain ``torch.Tensor`` objects instead of ``MetaTensor``.

    The network, loss and postprocessing then skip MetaTensor's per-operation metadata handling. The engine's
    ``state.batch`` (what report, attention and Grad-CAM handlers read file names from) is not touched.

    Args:
        prepare_batch: the wrapped callable, e.g. ``PrepareBatchExtraInput(extra_keys=...)``; default
            ``PrepareBatchDefault()`` (``image`` and ``label``).
    """

    def __init__(self, prepare_batch: Callable | None = None) -> None:
        self.prepare_batch = PrepareBatchDefault() if prepare_batch is None else prepare_batch

    def __call__(
        self, batchdata: Any, device: str | torch.device | None = None, non_blocking: bool = False, **kwargs: Any
    ) -> Any:
        """The wrapped result (``(image, label)`` or ``(image, label, args, kwargs)``) with MetaTensors unwrapped."""
        return _plain(self.prepare_batch(batchdata, device, non_blocking, **kwargs))


def bf16_supported(device: str | torch.device | None = None) -> bool:
    """Native bfloat16 on this CUDA device (compute capability >= 8.0); emulated bf16 does not count.

    Args:
        device: a CUDA device; None for the current one.

    Returns:
        False without CUDA.
    """
    if not torch.cuda.is_available():
        return False
    try:
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    except TypeError:  # torch < 2.3 has no including_emulation (and no emulation)
        return bool(torch.cuda.is_bf16_supported())


def _auto_flag(value: Any, name: str) -> bool | None:
    """``"auto"``/None -> None, else the boolean of a bundle flag."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "auto"):
        return None
    return as_bool(value, name)


def select_fast_path(
    device: str | torch.device | None = None,
    enabled: Any = True,
    amp: Any = "auto",
    amp_dtype: str = "auto",
    channels_last: Any = "auto",
    cudnn_benchmark: Any = "auto",
    pin_memory: Any = "auto",
    non_blocking: Any = "auto",
    compile: Any = False,
    compile_kwargs: Mapping[str, Any] | None = None,
    deterministic: Any = False,
) -> FastPath:
    """Choose the speed settings of a run.

    Every option but ``compile`` accepts ``"auto"`` (the default): on when the device is CUDA and ``enabled``, off
    otherwise. An explicit ``true`` for a CUDA-only feature (``amp``, ``cudnn_benchmark``, ``pin_memory``,
    ``non_blocking``) on a CPU device is switched off with a warning, so one command line runs on both kinds of machine;
    ``channels_last`` and ``compile`` are honoured on CPU when asked for explicitly.

    Args:
        device: the run's device (``None``/``"auto"``: CUDA when available, see :func:`select_device`).
        enabled: master switch of the CUDA defaults (bundle option ``gpu_fast_path``); false gives the plain fp32 path.
        amp: automatic mixed precision.
        amp_dtype: ``"auto"`` (bfloat16 where the GPU has it natively, else float16), ``"bfloat16"`` or ``"float16"``.
        channels_last: channels-last network layout.
        cudnn_benchmark: cuDNN autotuning.
        pin_memory: pinned host memory in the data loaders.
        non_blocking: asynchronous host-to-device copies.
        compile: ``torch.compile`` the network in the trainer (off unless true; not affected by ``enabled``).
        compile_kwargs: arguments of ``torch.compile`` (e.g. ``{"mode": "max-autotune"}``).
        deterministic: the run asked for deterministic algorithms (bundle option ``deterministic``); then
            ``cudnn_benchmark="auto"`` stays off, since autotuning picks kernels by timing.

    Returns:
        The :class:`FastPath`.

    Raises:
        ValueError: for an unknown ``amp_dtype``, a flag that is not a boolean or ``"auto"``, an unavailable device,
            ``amp_dtype="bfloat16"`` on a GPU without native bf16, or ``cudnn_benchmark`` true with ``deterministic``.
    """
    dev = select_device(device)
    cuda = dev.type == "cuda"
    on = as_bool(enabled, "gpu_fast_path") and cuda
    flags = {
        "amp": _auto_flag(amp, "amp"),
        "channels_last": _auto_flag(channels_last, "channels_last"),
        "cudnn_benchmark": _auto_flag(cudnn_benchmark, "cudnn_benchmark"),
        "pin_memory": _auto_flag(pin_memory, "pin_memory"),
        "non_blocking": _auto_flag(non_blocking, "non_blocking"),
    }
    chosen = {k: on if v is None else v for k, v in flags.items()}
    if as_bool(deterministic, "deterministic"):
        if flags["cudnn_benchmark"]:
            raise ValueError("cudnn_benchmark true and deterministic true exclude each other; drop one of them")
        chosen["cudnn_benchmark"] = False
    if not cuda:
        for name in ("amp", "cudnn_benchmark", "pin_memory", "non_blocking"):
            if chosen[name]:
                logger.warning("%s asked for on %s: it needs CUDA, so it is off", name, dev)
                chosen[name] = False

    dtype_name = str(amp_dtype or "auto").strip().lower()
    if dtype_name != "auto" and dtype_name not in _DTYPES:
        raise ValueError(f"amp_dtype must be one of {AMP_DTYPES}, got {amp_dtype!r}")
    dtype = None
    if chosen["amp"]:
        if dtype_name == "auto":
            dtype = torch.bfloat16 if bf16_supported(dev) else torch.float16
        else:
            dtype = _DTYPES[dtype_name]
            if dtype == torch.bfloat16 and not bf16_supported(dev):
                raise ValueError(
                    f"amp_dtype='bfloat16' asked for, but {dev} has no native bfloat16 (compute capability < 8.0); "
                    "use amp_dtype='float16' or 'auto'"
                )
    fast = FastPath(
        device=dev,
        amp=chosen["amp"],
        amp_dtype=dtype,
        grad_scaler=dtype == torch.float16,
        channels_last=chosen["channels_last"],
        cudnn_benchmark=chosen["cudnn_benchmark"],
        pin_memory=chosen["pin_memory"],
        non_blocking=chosen["non_blocking"],
        compile=as_bool(compile, "compile"),
        compile_kwargs=dict(compile_kwargs or {}),
    )
    logger.info("fast path on %s: %s", dev, {k: v for k, v in fast.to_dict().items() if k != "device"})
    return fast
