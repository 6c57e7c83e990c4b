"""Device choice, DDP helpers and option parsing of monai_bone.engines."""

from __future__ import annotations

import socket

import pytest
import torch

from monai_bone.engines import (
    amp_enabled,
    as_bool,
    cleanup_distributed,
    distributed_device,
    get_rank,
    get_world_size,
    init_distributed,
    is_main_process,
    select_device,
    wrap_ddp,
)


def test_select_device_and_amp():
    assert select_device("cpu") == torch.device("cpu")
    assert select_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert select_device("auto") == select_device(None)
    with pytest.raises(ValueError, match="not a torch device"):
        select_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            select_device("cuda:0")
    assert amp_enabled("cuda:0") and not amp_enabled(torch.device("cpu"))


def test_distributed_helpers_outside_and_inside_a_gloo_group(monkeypatch):
    assert get_rank() == 0 and get_world_size() == 1 and is_main_process()
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(RuntimeError, match="needs a distributed launch: torchrun"):
        init_distributed()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for k, v in {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("MASTER_PORT", str(port))
    try:
        assert init_distributed(backend="gloo")
        assert init_distributed()  # already initialised: no second group
        assert get_world_size() == 1 and is_main_process()
        device = distributed_device()
        net = wrap_ddp(torch.nn.Linear(3, 2), device)
        assert isinstance(net, torch.nn.parallel.DistributedDataParallel)
        assert net(torch.ones(4, 3, device=device)).shape == (4, 2)
        net.module.zero_grad()
    finally:
        cleanup_distributed()
    assert get_world_size() == 1
    cleanup_distributed()  # no group: no-op


def test_as_bool_reads_cli_strings():
    assert as_bool(True) and as_bool("true") and as_bool("YES") and as_bool(1) and as_bool("on")
    assert not as_bool(False) and not as_bool("false") and not as_bool("0") and not as_bool(None)
    with pytest.raises(ValueError, match="--resume must be true or false, got 'maybe'"):
        as_bool("maybe", "resume")
