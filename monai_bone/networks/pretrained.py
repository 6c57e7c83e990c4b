"""ImageNet weights by name: one registry, torch.hub downloads into the standard cache, sha256 verification.

``pretrained`` (a network argument and a bundle config id) is ``None`` (random initialisation), a local torchvision
state-dict file, or ``"imagenet"``. ``"imagenet"`` resolves through :data:`PRETRAINED_WEIGHTS` (torchvision's
published files for the backbones of the two papers), downloads with ``torch.hub.download_url_to_file`` into
``<torch.hub.get_dir()>/checkpoints`` (``$TORCH_HOME/hub/checkpoints``, default ``~/.cache/torch/hub/checkpoints``,
the cache ``torchvision`` itself uses), verifies the file's sha256, and hands the file to
:func:`~monai_bone.networks.load_pretrained` (key remapping, 1-channel adaptation). Nothing is downloaded unless
``"imagenet"`` is asked for; a file already in the cache is verified and used without any network access.

Checksums: torchvision publishes the first 8 hex digits of each file's sha256 in its file name
(``resnet34-b627a593.pth``); that prefix is what ``torch.hub``'s ``check_hash`` verifies, and it is what the registry
holds (we could not obtain the full digests offline). An entry may hold the full 64-digit digest instead (a hospital
mirror should); verification compares as many digits as the entry gives.

Overrides for a hospital's internal mirror (later wins):

* ``MONAI_BONE_WEIGHTS_MIRROR=https://mirror.example/torchvision/``: every registry file is fetched from
  ``<mirror>/<file name>`` (same file, same checksum);
* ``MONAI_BONE_WEIGHTS_REGISTRY=/path/registry.json``: ``{"resnet34": {"url": ..., "sha256": ...}, ...}``;
* the ``registry`` argument (bundle config id ``pretrained_registry``), same layout as the JSON file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import socket
import urllib.error
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "PRETRAINED_WEIGHTS",
    "PretrainedWeights",
    "PretrainedWeightsError",
    "fetch_pretrained",
    "pretrained_entry",
    "resolve_pretrained",
    "resolve_pretrained_setting",
    "weights_cache_dir",
]

logger = logging.getLogger(__name__)

#: ImageNet channel statistics (RGB) that torchvision's ImageNet weights expect on [0, 1] inputs.
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

MIRROR_ENV = "MONAI_BONE_WEIGHTS_MIRROR"
REGISTRY_ENV = "MONAI_BONE_WEIGHTS_REGISTRY"
TIMEOUT_ENV = "MONAI_BONE_WEIGHTS_TIMEOUT"


@dataclass(frozen=True)
class PretrainedWeights:
    """One registry entry.

    Attributes:
        name: backbone name (``"resnet34"``, ``"densenet169"``).
        url: where the file is downloaded from.
        sha256: expected sha256 of the file, full or a prefix of at least 8 hex digits.
        filename: name in the cache (torchvision's name, so a file fetched by torchvision is reused).
        mean: per-channel input mean the weights expect (on [0, 1] inputs).
        std: per-channel input standard deviation.
    """

    name: str
    url: str
    sha256: str
    filename: str
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD


_TORCHVISION = "https://download.pytorch.org/models/"

#: The published torchvision ImageNet files of the papers' backbones (sha256 prefix as in the file names).
PRETRAINED_WEIGHTS: dict[str, PretrainedWeights] = {
    "resnet34": PretrainedWeights(
        "resnet34", _TORCHVISION + "resnet34-b627a593.pth", "b627a593", "resnet34-b627a593.pth"
    ),
    "densenet169": PretrainedWeights(
        "densenet169", _TORCHVISION + "densenet169-b2777c0a.pth", "b2777c0a", "densenet169-b2777c0a.pth"
    ),
}


class PretrainedWeightsError(RuntimeError):
    """Pretrained weights could not be obtained (offline, blocked, wrong checksum); the message says what to do."""


def weights_cache_dir() -> Path:
    """``<torch.hub.get_dir()>/checkpoints``: where torch.hub (and torchvision) keep downloaded weights."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def _check_sha(value: Any, where: str) -> str:
    sha = str(value).strip().lower()
    if len(sha) < 8 or len(sha) > 64 or any(c not in "0123456789abcdef" for c in sha):
        raise ValueError(f"{where}: sha256 must be 8 to 64 hex digits, got {value!r}")
    return sha


def _apply_overrides(entry: PretrainedWeights, override: Any, where: str) -> PretrainedWeights:
    if not isinstance(override, Mapping):
        raise ValueError(f"{where}: entry for {entry.name!r} must be a mapping with 'url' / 'sha256', got {override!r}")
    unknown = set(override) - {"url", "sha256", "filename", "mean", "std"}
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)} for {entry.name!r}")
    changes: dict[str, Any] = {}
    if "url" in override:
        changes["url"] = str(override["url"])
        if "sha256" not in override and override["url"] != entry.url:
            logger.info(
                "%s: %s fetched from %s, checked against the registry checksum", where, entry.name, override["url"]
            )
    if "sha256" in override:
        changes["sha256"] = _check_sha(override["sha256"], where)
    if "filename" in override:
        name = str(override["filename"])
        if Path(name).name != name or name in ("", ".", ".."):
            raise ValueError(f"{where}: filename must be a plain file name, got {name!r}")
        changes["filename"] = name
    for key in ("mean", "std"):
        if key in override:
            changes[key] = tuple(float(v) for v in override[key])
    return replace(entry, **changes)


def pretrained_entry(name: str, registry: Mapping[str, Any] | None = None) -> PretrainedWeights:
    """The registry entry of ``name`` after the mirror / registry-file / argument overrides.

    Args:
        name: backbone name, a key of :data:`PRETRAINED_WEIGHTS`.
        registry: optional overrides ``{name: {"url": ..., "sha256": ..., "filename": ...}}`` (bundle config id
            ``pretrained_registry``).

    Raises:
        ValueError: for an unknown name or a malformed override.
    """
    if name not in PRETRAINED_WEIGHTS:
        raise ValueError(f"no ImageNet weights registered for {name!r}; known: {sorted(PRETRAINED_WEIGHTS)}")
    entry = PRETRAINED_WEIGHTS[name]
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    if mirror:
        entry = replace(entry, url=mirror.rstrip("/") + "/" + entry.filename)
    reg_file = os.environ.get(REGISTRY_ENV, "").strip()
    if reg_file:
        try:
            data = json.loads(Path(reg_file).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ValueError(f"{reg_file} (from ${REGISTRY_ENV}): not a readable JSON registry ({e})") from None
        if not isinstance(data, Mapping):
            raise ValueError(f"{reg_file} (from ${REGISTRY_ENV}): expected a JSON object name -> entry")
        if name in data:
            entry = _apply_overrides(entry, data[name], reg_file)
    if registry and name in registry:
        entry = _apply_overrides(entry, registry[name], "pretrained_registry")
    return entry


_VERIFIED: dict[tuple[str, int, int], str] = {}


def _sha256(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _VERIFIED:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _VERIFIED[key] = h.hexdigest()
    return _VERIFIED[key]


def _where_to_put(entry: PretrainedWeights, dst: Path) -> str:
    return (
        f"Fetch {entry.filename} on a connected machine ({entry.url}; sha256 starts with {entry.sha256}) and put it "
        f"at {dst} (the torch.hub cache: $TORCH_HOME/hub/checkpoints), or point {MIRROR_ENV} / the "
        f"`pretrained_registry` config id at your site's mirror, or pass the local file instead of 'imagenet' "
        f"(`--pretrained_path /path/{entry.filename}`), or train from random initialisation with `--pretrained null`."
    )


@contextlib.contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(old)


def fetch_pretrained(
    name: str, registry: Mapping[str, Any] | None = None, progress: bool = False, timeout: float | None = None
) -> Path:
    """The verified local file of ``name``'s ImageNet weights, downloaded into the torch.hub cache when missing.

    A cached file is checked against the registry sha256; a file that fails the check is deleted (and downloaded
    again). A download goes through ``torch.hub.download_url_to_file`` (temporary file, moved into place only after
    its sha256 matched; a mismatching download is deleted).

    Args:
        name: backbone name (``"resnet34"``, ``"densenet169"``).
        registry: overrides, see :func:`pretrained_entry`.
        progress: show torch.hub's download progress bar.
        timeout: socket timeout in seconds (default ``$MONAI_BONE_WEIGHTS_TIMEOUT`` or 60).

    Returns:
        Path of the verified file.

    Raises:
        PretrainedWeightsError: when the file is not cached and cannot be downloaded (the message names the file,
            where to put it and the alternatives), or when the download fails its checksum.
        ValueError: for an unknown name or malformed override.
    """
    import torch.hub

    entry = pretrained_entry(name, registry)
    cache = weights_cache_dir()
    dst = cache / entry.filename
    if dst.is_file():
        digest = _sha256(dst)
        if digest.startswith(entry.sha256):
            logger.info("pretrained weights %s: using cached %s (sha256 %s... verified)", name, dst, entry.sha256)
            return dst
        dst.unlink()
        logger.warning(
            "pretrained weights %s: cached %s has sha256 %s, expected %s...; deleted, downloading again",
            name,
            dst,
            digest,
            entry.sha256,
        )
    cache.mkdir(parents=True, exist_ok=True)
    seconds = float(timeout if timeout is not None else os.environ.get(TIMEOUT_ENV, 60))
    logger.info("pretrained weights %s: downloading %s -> %s", name, entry.url, dst)
    try:
        with _socket_timeout(seconds):
            torch.hub.download_url_to_file(entry.url, str(dst), hash_prefix=entry.sha256, progress=progress)
    except RuntimeError as e:
        if "invalid hash value" in str(e):
            raise PretrainedWeightsError(
                f"{entry.url}: downloaded file refused, sha256 mismatch ({e}); it was deleted and nothing was "
                f"written to {dst}. Check that the server serves torchvision's {entry.filename} unmodified."
            ) from None
        raise
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        raise PretrainedWeightsError(
            f"ImageNet weights for {name} are not in the cache and could not be downloaded from {entry.url} "
            f"({reason}). {_where_to_put(entry, dst)}"
        ) from None
    _sha256(dst)  # remember the verified digest, so the next call in this process does not read the file again
    return dst


def resolve_pretrained_setting(pretrained: Any) -> str | None:
    """``pretrained`` as given, normalised: None for random initialisation (None, False, ``""``, ``"none"``,
    ``"null"``, ``"false"``, ``"random"``), else the text (``"imagenet"``, a path, ``"rad-dino"``).

    Raises:
        ValueError: for ``True`` (ambiguous) or a value that is neither text nor a path.
    """
    if pretrained is None or pretrained is False:
        return None
    if pretrained is True:
        raise ValueError("pretrained=True is ambiguous: pass 'imagenet', a local weights file, or None")
    if isinstance(pretrained, os.PathLike):
        pretrained = os.fspath(pretrained)
    if not isinstance(pretrained, str):
        raise ValueError(f"pretrained must be None, 'imagenet' or a file path, got {pretrained!r}")
    text = pretrained.strip()
    return None if text.lower() in ("", "none", "null", "false", "random") else text


def resolve_pretrained(pretrained: Any, name: str, registry: Mapping[str, Any] | None = None) -> Path | None:
    """Turn a ``pretrained`` setting into a local file (or None).

    Args:
        pretrained: ``None`` / ``False`` / ``""`` / ``"none"`` / ``"null"`` (random initialisation), ``"imagenet"``
            (registry entry ``name``, downloaded and verified), or a path to a local torchvision state dict.
        name: registry name of the network's backbone (``"resnet34"``, ``"densenet169"``).
        registry: overrides, see :func:`pretrained_entry`.

    Returns:
        The weights file, or None for random initialisation.

    Raises:
        PretrainedWeightsError: see :func:`fetch_pretrained`.
        FileNotFoundError: when a local path does not exist.
        ValueError: for ``True`` (ambiguous: say ``"imagenet"``) or other values that are not a path.
    """
    text = resolve_pretrained_setting(pretrained)
    if text is None:
        return None
    if text.lower() == "imagenet":
        return fetch_pretrained(name, registry)
    path = Path(text).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"pretrained weights file not found: {path} (pretrained accepts null, 'imagenet' or an existing file)"
        )
    return path
