"""Selection logic of the GPU fast path and its wiring into the bundle configs (CUDA faked where needed)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
import torch
from monai.bundle import ConfigParser
from monai.data import MetaTensor
from monai.engines import PrepareBatchExtraInput

from monai_bone.engines import FastPath, PrepareBatchPlainTensor, bf16_supported, select_fast_path

BUNDLES = Path(__file__).resolve().parents[2] / "bundles"
#: the network the engines get: network_def (hip: with its training-fold target statistics) through the fast path
PREPARED = re.compile(r"@fast_path\.prepare_network\(@network_def(\.set_target_stats\(\*@bmd_stats\))?\)")
CUDA_KEYS = ("amp", "channels_last", "cudnn_benchmark", "pin_memory", "non_blocking")


@pytest.fixture
def fake_cuda(monkeypatch):
    """Pretend a CUDA device is present; ``set_bf16(bool)`` chooses whether it has native bfloat16."""
    state = {"bf16": True}

    def is_bf16_supported(including_emulation: bool = True) -> bool:
        assert including_emulation is False, "emulated bf16 must not count as support"
        return state["bf16"]

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)
    return lambda value: state.__setitem__("bf16", value)


@pytest.fixture
def restore_cudnn():
    saved = torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic
    yield
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved


def test_cpu_defaults_turn_everything_off():
    fast = select_fast_path("cpu")
    assert fast.device == torch.device("cpu")
    assert not any(getattr(fast, k) for k in (*CUDA_KEYS, "compile", "grad_scaler"))
    assert fast.amp_dtype is None and fast.amp_kwargs == {} and fast.memory_format == torch.contiguous_format
    assert fast.to_dict() == {
        "device": "cpu",
        "amp": False,
        "amp_dtype": None,
        "grad_scaler": False,
        "channels_last": False,
        "cudnn_benchmark": False,
        "pin_memory": False,
        "non_blocking": False,
        "compile": False,
        "compile_kwargs": {},
    }


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA default device")
def test_auto_device_without_cuda_is_cpu_and_plain():
    fast = select_fast_path("auto")
    assert fast.device.type == "cpu" and not fast.amp and not bf16_supported()


def test_fake_cuda_with_bf16_turns_the_fast_path_on(fake_cuda):
    fast = select_fast_path("cuda:0")
    assert fast.device == torch.device("cuda:0")
    assert all(getattr(fast, k) for k in CUDA_KEYS)
    assert fast.amp_dtype == torch.bfloat16 and not fast.grad_scaler
    assert fast.amp_kwargs == {"dtype": torch.bfloat16} and fast.memory_format == torch.channels_last
    assert fast.compile is False and fast.to_dict()["amp_dtype"] == "bfloat16"
    assert select_fast_path(None).device == torch.device("cuda:0")  # "auto" picks CUDA when present


def test_fake_cuda_without_bf16_uses_float16_with_loss_scaling(fake_cuda):
    fake_cuda(False)
    fast = select_fast_path("cuda:0")
    assert fast.amp and fast.amp_dtype == torch.float16 and fast.grad_scaler
    assert fast.amp_kwargs == {"dtype": torch.float16}
    with pytest.raises(ValueError, match="no native bfloat16"):
        select_fast_path("cuda:0", amp_dtype="bfloat16")
    assert select_fast_path("cuda:0", amp_dtype="fp16").amp_dtype == torch.float16


def test_master_switch_and_single_overrides_on_fake_cuda(fake_cuda):
    off = select_fast_path("cuda:0", enabled="false")  # as `--gpu_fast_path false` arrives from the command line
    assert not any(getattr(off, k) for k in CUDA_KEYS) and off.amp_dtype is None
    partial = select_fast_path("cuda:0", amp="false", channels_last=False, compile="true", compile_kwargs={"mode": "x"})
    assert not partial.amp and partial.amp_kwargs == {} and not partial.channels_last
    assert partial.cudnn_benchmark and partial.pin_memory and partial.non_blocking
    assert partial.compile and partial.compile_kwargs == {"mode": "x"}
    # explicit choices win over the master switch
    assert select_fast_path("cuda:0", enabled=False, amp=True, amp_dtype="float16").amp_kwargs == {
        "dtype": torch.float16
    }


def test_cuda_only_features_asked_for_on_cpu_are_switched_off_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="monai_bone.engines.fast_path"):
        fast = select_fast_path("cpu", amp=True, pin_memory="yes", channels_last=True, compile=True)
    assert not fast.amp and not fast.pin_memory and fast.amp_kwargs == {}
    assert fast.channels_last and fast.compile  # honoured on CPU when asked for explicitly
    assert "amp asked for on cpu" in caplog.text and "pin_memory asked for on cpu" in caplog.text


def test_deterministic_runs_keep_cudnn_autotuning_off(fake_cuda):
    assert select_fast_path("cuda:0").cudnn_benchmark
    fast = select_fast_path("cuda:0", deterministic="true")
    assert not fast.cudnn_benchmark and fast.amp and fast.channels_last
    with pytest.raises(ValueError, match="exclude each other"):
        select_fast_path("cuda:0", cudnn_benchmark=True, deterministic=True)


def test_prepare_batch_plain_tensor_unwraps_metatensors_only_for_the_engine():
    image = MetaTensor(torch.rand(2, 1, 4, 4), meta={"filename_or_obj": "a.dcm"})
    batch = {"image": image, "label": torch.tensor([[0.8], [0.9]]), "clinical": MetaTensor(torch.rand(2, 3))}
    x, y = PrepareBatchPlainTensor()(batch, torch.device("cpu"))
    assert type(x) is torch.Tensor and type(y) is torch.Tensor
    torch.testing.assert_close(x, image.as_tensor())
    x, y, args, kwargs = PrepareBatchPlainTensor(PrepareBatchExtraInput({"clinical": "clinical"}))(batch, "cpu")
    assert type(x) is torch.Tensor and args == () and type(kwargs["clinical"]) is torch.Tensor
    assert isinstance(batch["image"], MetaTensor) and batch["image"].meta["filename_or_obj"] == "a.dcm"


@pytest.mark.parametrize(
    "kwargs, message",
    [({"amp_dtype": "int8"}, "amp_dtype must be one of"), ({"amp": "maybe"}, "--amp must be true or false")],
)
def test_bad_options_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        select_fast_path("cpu", **kwargs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_cuda_device_without_cuda_is_refused():
    with pytest.raises(ValueError, match="CUDA is not available"):
        select_fast_path("cuda:0")


def test_bf16_check_falls_back_on_old_torch(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)

    def old_signature():  # torch < 2.3: no including_emulation keyword
        return True

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", old_signature)
    assert bf16_supported() is True


def test_prepare_network_layouts():
    layers = (torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(), torch.nn.Linear(8, 1))
    net = torch.nn.Sequential(*layers)
    out = FastPath(device=torch.device("cpu"), channels_last=True).prepare_network(net)
    assert out is net
    assert net[0].weight.is_contiguous(memory_format=torch.channels_last) and not net[0].weight.is_contiguous()
    plain = torch.nn.Conv2d(3, 4, 3)
    FastPath(device=torch.device("cpu")).prepare_network(plain)
    assert plain.weight.is_contiguous()
    x = torch.rand(2, 3, 6, 6)
    torch.testing.assert_close(net[0](x), torch.nn.functional.conv2d(x, net[0].weight.contiguous(), net[0].bias))


def test_apply_backend_sets_cudnn_flags_only_when_asked(restore_cudnn):
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = False, True
    FastPath(device=torch.device("cpu")).apply_backend()
    assert (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic) == (False, True)
    FastPath(device=torch.device("cpu"), cudnn_benchmark=True).apply_backend()
    assert (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic) == (True, False)


def _parser(bundle: str, files: list[str], **overrides) -> ConfigParser:
    parser = ConfigParser()
    parser.read_config([str(BUNDLES / bundle / "configs" / f) for f in files])
    for key, value in overrides.items():
        parser[key] = value
    parser.get_parsed_content("imports")
    return parser


@pytest.mark.parametrize("bundle", ["hip_bmd_xattn", "knee_osteoporosis_hybrid_attention"])
def test_bundle_configs_read_the_fast_path(bundle, fake_cuda, restore_cudnn):
    """train/inference/multi-GPU configs: every engine and loader switch follows ``@fast_path``."""
    fake_cuda(True)
    train = _parser(bundle, ["train.json"], device="$torch.device('cuda:0')")
    fast = train.get_parsed_content("fast_path")
    assert fast.amp and fast.amp_dtype == torch.bfloat16 and fast.channels_last and fast.cudnn_benchmark
    assert isinstance(train.get_parsed_content("train#trainer#prepare_batch"), PrepareBatchPlainTensor)
    assert isinstance(train.get_parsed_content("validate#evaluator#prepare_batch"), PrepareBatchPlainTensor)
    strict = _parser(bundle, ["train.json"], device="$torch.device('cuda:0')", deterministic="true")
    assert strict.get_parsed_content("fast_path").cudnn_benchmark is False
    for key, value in {
        "train#trainer#amp": True,
        "train#trainer#amp_kwargs": {"dtype": torch.bfloat16},
        "train#trainer#non_blocking": True,
        "train#trainer#compile": False,
        "train#trainer#compile_kwargs": {},
        "train#trainer#optim_set_to_none": True,
        "validate#evaluator#amp": True,
        "validate#evaluator#amp_kwargs": {"dtype": torch.bfloat16},
        "validate#evaluator#non_blocking": True,
        "train#dataloader#pin_memory": True,
        "validate#dataloader#pin_memory": True,
    }.items():
        assert train.get_parsed_content(key) == value, key
    assert "$@fast_path.apply_backend()" in train["initialize"]
    assert PREPARED.search(train["network"]), train["network"]

    off = _parser(bundle, ["train.json"], device="$torch.device('cuda:0')", gpu_fast_path="false", compile=True)
    assert off.get_parsed_content("train#trainer#amp") is False
    assert off.get_parsed_content("train#dataloader#pin_memory") is False
    assert off.get_parsed_content("train#trainer#compile") is True

    ddp = _parser(bundle, ["train.json", "multi_gpu_train.json"])
    assert PREPARED.search(ddp["network"]), ddp["network"]
    assert ddp["initialize"][-1] == "$@fast_path.apply_backend()"
    evaluate = _parser(bundle, ["train.json", "evaluate.json"])
    assert evaluate["initialize"][-1] == "$@fast_path.apply_backend()"

    infer = _parser(bundle, ["inference.json"], device="$torch.device('cuda:0')", amp_dtype="float16")
    assert infer.get_parsed_content("evaluator#amp_kwargs") == {"dtype": torch.float16}
    assert isinstance(infer.get_parsed_content("evaluator#prepare_batch"), PrepareBatchPlainTensor)
    assert infer.get_parsed_content("dataloader#pin_memory") is True
    assert infer["initialize"][-1] == "$@fast_path.apply_backend()"


@pytest.mark.parametrize("bundle", ["hip_bmd_xattn", "knee_osteoporosis_hybrid_attention"])
def test_bundle_configs_on_cpu_keep_the_plain_path(bundle):
    train = _parser(bundle, ["train.json"], device="$torch.device('cpu')")
    assert train.get_parsed_content("fast_path") == select_fast_path("cpu")
    assert train.get_parsed_content("train#trainer#amp") is False
    assert train.get_parsed_content("train#trainer#amp_kwargs") == {}
    assert train.get_parsed_content("train#dataloader#pin_memory") is False
    infer = _parser(bundle, ["inference.json"], device="$torch.device('cpu')")
    assert infer.get_parsed_content("evaluator#non_blocking") is False
