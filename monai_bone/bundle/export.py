"""Share a trained bundle as one zip archive in MONAI's layout whose every file is covered by a sha256 manifest.

``export_bundle`` packs what another site needs to run the model and nothing else, under one ``<bundle_name>/`` top
folder (so ``monai.bundle.download(url=...)``, ``load_bundle_config`` and ``monai.bundle.load`` consume it): the
weights (``models/model.pt``, optionally fp16/bf16), a TorchScript copy made by MONAI's ``ckpt_export`` from the
bundle's inference config (``models/model.ts``), optionally ``models/model.onnx`` with every named input, the clinical
normalisation file (``models/clinical_stats.json``, hip bundle), ``configs/``, ``docs/``, ``LICENSE`` and, when
present, ``large_files.yml``. Data, logs, per-study outputs and any other checkpoint are never packed (allow-list, not
deny-list), and a text file giving a patient name or birth date is refused. Beside the files go ``manifest.json``
(path, size, sha256 of every file), ``sha256sums`` and, when signed, ``manifest.sig``
(:mod:`monai_bone.bundle.manifest`). The manifest digest is printed and written to ``<zip>.manifest-sha256``.

Reading such an archive back is :mod:`monai_bone.bundle.importing`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from monai_bone.bundle.manifest import (
    MANIFEST_NAME,
    SIGNATURE_NAME,
    SUMS_NAME,
    BundleIntegrityError,
    build_manifest,
    check_bundle_name,
    manifest_bytes,
    sums_text,
)
from monai_bone.bundle.metadata import pin_settings, with_exact_versions
from monai_bone.bundle.onnx_export import check_onnx, export_onnx
from monai_bone.bundle.packaged import copy_bundle_files
from monai_bone.bundle.signing import manifest_digest, sign_manifest
from monai_bone.utils.io import atomic_write_stream, atomic_write_text

__all__ = [
    "collect_bundle_files",
    "digest_path",
    "export_bundle",
    "half_state_dict",
    "load_weights",
    "sha256_bytes",
    "sha256_file",
    "untrained_copy",
]

logger = logging.getLogger(__name__)

#: Suffixes packed from ``configs/`` and ``docs/`` (anything else there is skipped with a warning).
_CONFIG_SUFFIXES = (".json", ".yaml", ".yml", ".conf")
_DOC_SUFFIXES = (".md", ".rst", ".txt", ".png", ".svg", ".jpg", ".jpeg")
_TEXT_SUFFIXES = (".json", ".yaml", ".yml", ".conf", ".md", ".rst", ".txt", "")
#: Files under ``models/`` that are packed when present (model.ts is always regenerated from model.pt).
_MODEL_FILES = ("model.pt", "clinical_stats.json", "localiser.pt", "localiser.pt.json")  # localiser: ROI mode
_TOP_FILES = ("LICENSE", "large_files.yml")
#: An identifying DICOM attribute (keyword or tag form) followed by a value (``PatientName = DOE^JANE``,
#: ``"00100030": "19400101"``); a mere mention in prose ("PatientName is never stored") is not a value.
_IDENTIFYING = re.compile(
    r"(PatientName|PatientBirthDate|\b0010,?00[13]0\b|\(0010,\s*00[13]0\))[\"']?\s*[:=]\s*[\"']?([^\s\"',}\]]*)",
    re.IGNORECASE,
)
_EMPTY_VALUES = {"", "null", "none", "[]", "{}"}
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_CHUNK = 1 << 20


def sha256_bytes(data: bytes) -> str:
    """Return the hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    """Return the hex sha256 of the file at ``path``, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _needs_clinical_stats(bundle_dir: Path) -> bool:
    for name in ("inference.json", "inference.yaml", "train.json", "train.yaml"):
        cfg = bundle_dir / "configs" / name
        if cfg.is_file() and "clinical_stats" in cfg.read_text(encoding="utf-8", errors="replace"):
            return True
    return False


def collect_bundle_files(bundle_dir: str | os.PathLike) -> dict[str, Path]:
    """List the files of a bundle folder that an export packs (``model.ts`` excluded: it is regenerated).

    Args:
        bundle_dir: the bundle folder (holding ``configs/``, ``models/``, ``docs/``, ``LICENSE``).

    Returns:
        Mapping from archive path (POSIX, relative) to the file on disk, sorted by archive path.

    Raises:
        FileNotFoundError: the folder, ``configs/metadata.json``, ``configs/inference.json``, ``models/model.pt``,
            ``LICENSE`` or (when the configs use it) ``models/clinical_stats.json`` is missing.
        BundleIntegrityError: a text file holds a value for an identifying DICOM attribute (PatientName /
            PatientBirthDate).
    """
    root = Path(bundle_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: bundle folder not found")
    required = ["configs/metadata.json", "models/model.pt", "LICENSE"]
    if not any((root / "configs" / n).is_file() for n in ("inference.json", "inference.yaml")):
        required.append("configs/inference.json")
    if _needs_clinical_stats(root):
        required.append("models/clinical_stats.json")
    for rel in required:
        if not (root / rel).is_file():
            hint = " (train the bundle first)" if rel.startswith("models/") else ""
            raise FileNotFoundError(f"{root / rel}: required bundle file not found{hint}")

    files: dict[str, Path] = {}
    skipped: list[str] = []
    for sub, suffixes in (("configs", _CONFIG_SUFFIXES), ("docs", _DOC_SUFFIXES)):
        folder = root / sub
        if not folder.is_dir():
            continue
        for p in sorted(folder.rglob("*")):
            if p.is_symlink() or not p.is_file():
                continue
            rel = p.relative_to(root).as_posix()
            if p.suffix.lower() in suffixes and not p.name.startswith("."):
                files[rel] = p
            else:
                skipped.append(rel)
    for name in _MODEL_FILES:
        if (root / "models" / name).is_file():
            files[f"models/{name}"] = root / "models" / name
    for name in _TOP_FILES:
        if (root / name).is_file():
            files[name] = root / name
    if skipped:
        logger.warning("not packed (only configs, docs, weights and licence are shared): %s", ", ".join(skipped))

    for p in files.values():
        if p.suffix.lower() in _TEXT_SUFFIXES:
            text = p.read_text(encoding="utf-8", errors="replace")
            for m in _IDENTIFYING.finditer(text):
                if m.group(2).lower() not in _EMPTY_VALUES:
                    raise BundleIntegrityError(
                        f"{p}: holds a value for the identifying DICOM attribute {m.group(1)!r}; refusing to export a "
                        "bundle that could carry patient names or birth dates"
                    )
    return dict(sorted(files.items()))


def load_weights(path: str | os.PathLike, key_in_ckpt: str = "") -> Mapping[str, Any]:
    """The network state dict in ``path`` (``torch.load(weights_only=True)``), taken from ``key_in_ckpt`` if given.

    Raises:
        BundleIntegrityError: not loadable with ``weights_only=True``, no ``key_in_ckpt``, or not a plain state dict.
    """
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means the file is not a plain weights file
        raise BundleIntegrityError(f"{path}: not loadable with torch.load(weights_only=True): {err}") from err
    if key_in_ckpt:
        if not isinstance(obj, Mapping) or key_in_ckpt not in obj:
            keys = sorted(obj) if isinstance(obj, Mapping) else type(obj).__name__
            raise BundleIntegrityError(f"{path}: no '{key_in_ckpt}' in the checkpoint (keys: {keys})")
        obj = obj[key_in_ckpt]
    if not isinstance(obj, Mapping) or not obj:
        raise BundleIntegrityError(f"{path}: expected a non-empty state dict (mapping of tensors)")
    nested = sorted(k for k, v in obj.items() if not isinstance(v, torch.Tensor))
    if nested:
        raise BundleIntegrityError(
            f"{path}: not a plain state dict (non-tensor entries {nested[:5]}); for a training checkpoint name the "
            "network's key (key_in_ckpt / --key-in-ckpt, e.g. 'network')"
        )
    return obj


def _make_torchscript(root: Path, ckpt: Path, out: Path, net_id: str) -> None:
    from monai.bundle import ckpt_export

    config = next(root / "configs" / n for n in ("inference.json", "inference.yaml") if (root / "configs" / n).exists())
    try:
        ckpt_export(
            net_id=net_id,
            filepath=str(out),
            ckpt_file=str(ckpt),
            meta_file=str(root / "configs" / "metadata.json"),
            config_file=str(config),
            bundle_root=str(root),
        )
    except Exception as err:  # noqa: BLE001 - report which bundle failed and why, not a deep traceback
        raise BundleIntegrityError(f"{root}: ckpt_export of '{net_id}' to TorchScript failed: {err}") from err


def half_state_dict(state: Mapping[str, torch.Tensor], dtype: torch.dtype = torch.float16) -> dict[str, torch.Tensor]:
    """A copy of ``state`` with multi-element floating-point weights in ``dtype`` (fp16 or bf16) for sharing.

    Scalars (``XAttnBMD.target_mean``/``target_std``), BatchNorm running statistics and integer entries stay as they
    are; loading the result into the fp32 network (``load_state_dict``, MONAI's checkpoint loader) casts back to fp32.
    """
    if dtype not in (torch.float16, torch.bfloat16):
        raise ValueError(f"half precision means torch.float16 or torch.bfloat16, got {dtype}")
    keep = ("running_mean", "running_var", "num_batches_tracked")
    return {
        k: v.to(dtype) if v.is_floating_point() and v.numel() > 1 and not k.endswith(keep) else v
        for k, v in state.items()
    }


_HALF = {"fp16": torch.float16, "bf16": torch.bfloat16}


def _weights_bytes(ckpt: Path, key_in_ckpt: str, half: str | None, tmp: Path) -> tuple[bytes, Path]:
    """The bytes of ``models/model.pt`` to pack and a file holding them (for ``ckpt_export``)."""
    state = load_weights(ckpt, key_in_ckpt)
    if not key_in_ckpt and half is None:
        return ckpt.read_bytes(), ckpt  # a plain state dict is packed byte for byte
    if half is not None:
        if half not in _HALF:
            raise ValueError(f"half must be one of {sorted(_HALF)}, got {half!r}")
        state = half_state_dict(state, _HALF[half])
    out = tmp / "model.pt"
    torch.save(dict(state), out)  # network weights only, never optimizer or trainer state
    return out.read_bytes(), out


def _export_metadata(root: Path, entries: dict[str, bytes]) -> dict[str, Any]:
    if "configs/metadata.json" not in entries:
        return {}
    meta = with_exact_versions(json.loads(entries["configs/metadata.json"]))
    entries["configs/metadata.json"] = (json.dumps(meta, indent=4) + "\n").encode("utf-8")
    return meta


def _add_onnx(root: Path, ckpt: Path, meta: Mapping[str, Any], tmp: Path, entries: dict[str, bytes]) -> None:
    from monai.bundle import ConfigParser

    config = next(root / "configs" / n for n in ("inference.json", "inference.yaml") if (root / "configs" / n).exists())
    parser = ConfigParser()
    parser.read_config(str(config))
    parser["bundle_root"] = str(root)
    if "imports" in parser:
        parser.get_parsed_content("imports")
    net = parser.get_parsed_content("network_def")
    net.load_state_dict(load_weights(ckpt))
    path = tmp / "model.onnx"
    names = export_onnx(net, meta, path)
    worst = check_onnx(net, meta, path)
    if worst > 1e-4:
        raise BundleIntegrityError(f"{root}: ONNX output differs from eager by {worst:.2e} (> 1e-4); not packed")
    logger.info("ONNX export with inputs %s, dynamic batch; max |onnxruntime - eager| = %.1e", names, worst)
    entries["models/model.onnx"] = path.read_bytes()


def _write_archive(out: Path, name: str, entries: Mapping[str, bytes], manifest_data: bytes, sig: bytes | None) -> None:
    def write(f: Any) -> None:
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for rel, data in entries.items():
                # weights barely compress (float32) and torch's own format is already a zip: store them as they are
                stored = rel.startswith("models/") and rel.endswith((".pt", ".ts", ".onnx"))
                method = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
                zf.writestr(zipfile.ZipInfo(f"{name}/{rel}", date_time=_ZIP_DATE), data, compress_type=method)
            files = json.loads(manifest_data)["files"]
            zf.writestr(zipfile.ZipInfo(f"{name}/{SUMS_NAME}", date_time=_ZIP_DATE), sums_text(files))
            zf.writestr(zipfile.ZipInfo(f"{name}/{MANIFEST_NAME}", date_time=_ZIP_DATE), manifest_data)
            if sig is not None:
                zf.writestr(zipfile.ZipInfo(f"{name}/{SIGNATURE_NAME}", date_time=_ZIP_DATE), sig)

    atomic_write_stream(out, write)


def digest_path(archive: str | os.PathLike) -> Path:
    """Where :func:`export_bundle` writes the manifest digest: ``<archive>.manifest-sha256`` beside the zip."""
    return Path(f"{archive}.manifest-sha256")


def export_bundle(
    bundle_dir: str | os.PathLike,
    out: str | os.PathLike,
    ckpt_file: str | os.PathLike | None = None,
    net_id: str = "network_def",
    key_in_ckpt: str = "",
    overwrite: bool = False,
    bundle_name: str | None = None,
    sign_key: str | os.PathLike | None = None,
    onnx: bool = False,
    half: str | None = None,
) -> dict[str, Any]:
    """Pack a trained bundle into a zip archive in MONAI's layout with a sha256 manifest.

    The archive has one top folder ``<bundle_name>/`` (what ``monai.bundle.download(url=...)``, ``load_bundle_config``
    and ``monai.bundle.load`` expect; name the zip ``<bundle_name>.zip`` for ``load_bundle_config``). The TorchScript
    model is made by ``monai.bundle.ckpt_export`` from ``configs/inference.json`` and the checkpoint, so it is exactly
    the network the inference config builds. ``metadata.json`` gains ``exact_versions``. The manifest digest is written
    to ``<out>.manifest-sha256``; with ``sign_key`` an ed25519 signature of the manifest goes in as ``manifest.sig``.

    Args:
        bundle_dir: bundle folder.
        out: the zip file to write (parent folders are created).
        ckpt_file: weights to export instead of ``models/model.pt`` (packed as ``models/model.pt``).
        net_id: network ID in the inference config.
        key_in_ckpt: key of the network weights inside a training checkpoint (e.g. ``"network"``); only those
            weights are packed, as a plain state dict. Empty for a plain state dict (packed byte for byte).
        overwrite: replace ``out`` when it exists.
        bundle_name: top folder name (default: the bundle folder's name).
        sign_key: ed25519 private key file (``monai-bone keygen``) to sign the manifest with.
        onnx: add ``models/model.onnx`` (every named input, dynamic batch; checked against eager within 1e-4).
        half: ``"fp16"`` or ``"bf16"`` to pack the weights in half precision (about half the size).

    Returns:
        The manifest dict written into the archive (``manifest_bytes(manifest)`` are its exact bytes).

    Raises:
        FileNotFoundError: a required bundle file or the signing key is missing.
        FileExistsError: ``out`` exists and ``overwrite`` is False.
        BundleIntegrityError: the weights are not a plain state dict (or lack ``key_in_ckpt``), TorchScript or ONNX
            export failed, a text file holds a patient name or birth date, a bad bundle name or signing key.
    """
    root = Path(bundle_dir).resolve()
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out}: already exists (pass overwrite=True / --overwrite to replace it)")
    name = check_bundle_name(bundle_name or root.name)
    files = collect_bundle_files(root)
    if ckpt_file is not None:
        ckpt_file = Path(ckpt_file)
        if not ckpt_file.is_file():
            raise FileNotFoundError(f"{ckpt_file}: checkpoint not found")
        files["models/model.pt"] = ckpt_file

    entries: dict[str, bytes] = {rel: p.read_bytes() for rel, p in files.items() if rel != "models/model.pt"}
    meta = _export_metadata(root, entries)
    with tempfile.TemporaryDirectory(prefix="monai-bone-export-") as tmp:
        entries["models/model.pt"], ckpt = _weights_bytes(files["models/model.pt"], key_in_ckpt, half, Path(tmp))
        ts_path = Path(tmp) / "model.ts"
        _make_torchscript(root, ckpt, ts_path, net_id)
        entries["models/model.ts"] = ts_path.read_bytes()
        if onnx:
            _add_onnx(root, ckpt, meta, Path(tmp), entries)
    entries = dict(sorted(entries.items()))

    listing = [{"path": p, "size": len(b), "sha256": sha256_bytes(b)} for p, b in entries.items()]
    extra = {"weights_dtype": half} if half else None
    manifest = build_manifest(listing, name, meta, extra)
    data = manifest_bytes(manifest)
    sig = (json.dumps(sign_manifest(data, sign_key), indent=2) + "\n").encode() if sign_key else None
    _write_archive(out, name, entries, data, sig)
    digest = manifest_digest(data)
    atomic_write_text(digest_path(out), f"{digest}  {name}/{MANIFEST_NAME}\n")
    if out.stem != name:
        logger.info("note: monai.bundle.load_bundle_config expects the archive named %s.zip", name)
    logger.info("exported %s (%d files + manifest) to %s; manifest sha256 %s", name, len(entries), out, digest)
    return manifest


def untrained_copy(
    bundle_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    clinical_records: Iterable[Mapping[str, Any]] | None = None,
    seed: int = 0,
) -> Path:
    """A copy of a bundle with freshly initialised weights: checks serving and export plumbing before training ends.

    Its predictions are meaningless (random weights); only configs, docs and licence are copied, and
    ``models/model.pt`` holds the state dict of the inference config's ``network_def`` built after
    ``torch.manual_seed(seed)``. ``models/clinical_stats.json`` is fitted on ``clinical_records`` when given (the hip
    bundle needs it).

    Args:
        bundle_dir: source bundle folder (configs/, docs/, LICENSE).
        out_dir: new bundle folder (must not exist).
        clinical_records: datalist records to fit the clinical statistics on.
        seed: torch seed of the initialisation (same seed, same weights).

    Returns:
        The new bundle folder.

    Raises:
        FileExistsError: when ``out_dir`` exists.
    """
    from monai.bundle import ConfigParser

    from monai_bone.handlers import atomic_torch_save  # costly (MONAI, Ignite): export and import need torch only

    src, out = Path(bundle_dir), Path(out_dir)
    if out.exists():
        raise FileExistsError(f"{out}: exists")
    copy_bundle_files(src, out)
    pin_settings(out, {"pretrained": None})  # its weights are random, not ImageNet: loading it downloads nothing
    parser = ConfigParser()
    parser.read_config(str(out / "configs" / "inference.json"))
    parser["bundle_root"] = str(out)
    parser.get_parsed_content("imports")
    torch.manual_seed(seed)
    atomic_torch_save(parser.get_parsed_content("network_def").state_dict(), out / "models" / "model.pt")
    if clinical_records is not None:
        from monai_bone.transforms.clinical_fit import fit_clinical_stats  # costly (MONAI transforms), optional

        fit_clinical_stats(list(clinical_records), out / "models" / "clinical_stats.json")
    return out
