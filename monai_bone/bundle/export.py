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
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from monai_bone.bundle.bundle_files import collect_bundle_files
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
from monai_bone.bundle.metadata import with_exact_versions
from monai_bone.bundle.onnx_export import check_onnx, export_onnx
from monai_bone.bundle.signing import manifest_digest, sign_manifest
from monai_bone.bundle.untrained import untrained_copy
from monai_bone.bundle.weights_io import half_state_dict, load_weights, packed_weights
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
        entries["models/model.pt"], ckpt = packed_weights(files["models/model.pt"], key_in_ckpt, half, Path(tmp))
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
