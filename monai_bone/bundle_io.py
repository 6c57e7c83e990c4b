"""Share a trained bundle as one zip archive whose every file is covered by a sha256 manifest.

``export_bundle`` packs what another site needs to run the model and nothing else: the weights
(``models/model.pt``), a TorchScript copy made by MONAI's ``ckpt_export`` from the bundle's inference config
(``models/model.ts``), the clinical normalisation file (``models/clinical_stats.json``, hip bundle), ``configs/``,
``docs/``, ``LICENSE`` and, when present, ``large_files.yml``. Data, logs, per-study outputs and any other checkpoint
are never packed (allow-list, not deny-list), and a text file giving a patient name or birth date is refused.
Beside the files go ``manifest.json`` (path, size, sha256 of every file) and ``sha256sums`` (the same hashes in the
format ``sha256sum -c`` reads).

``import_bundle`` checks every hash before anything is written: a file that was changed, added or removed after export
is refused with a message naming it. The hashes protect against corruption and tampering in transit only as far as the
archive and its manifest travel separately or the manifest hash is compared out of band; they are not a signature.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import torch

from monai_bone.utils.io import atomic_write_bytes

__all__ = [
    "MANIFEST_NAME",
    "SUMS_NAME",
    "BundleIntegrityError",
    "collect_bundle_files",
    "export_bundle",
    "import_bundle",
    "sha256_bytes",
    "sha256_file",
    "untrained_copy",
    "verify_archive",
]

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
SUMS_NAME = "sha256sums"
ARCHIVE_FORMAT = "monai-bone-bundle"
ARCHIVE_FORMAT_VERSION = 1

#: Suffixes packed from ``configs/`` and ``docs/`` (anything else there is skipped with a warning).
_CONFIG_SUFFIXES = (".json", ".yaml", ".yml", ".conf")
_DOC_SUFFIXES = (".md", ".rst", ".txt", ".png", ".svg", ".jpg", ".jpeg")
_TEXT_SUFFIXES = (".json", ".yaml", ".yml", ".conf", ".md", ".rst", ".txt", "")
#: Files under ``models/`` that are packed when present (model.ts is always regenerated from model.pt).
_MODEL_FILES = ("model.pt", "clinical_stats.json")
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


class BundleIntegrityError(ValueError):
    """An archive or bundle failed a check (hash mismatch, missing or unexpected file, unsafe path)."""


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


def _load_weights(path: Path, key_in_ckpt: str = "") -> Mapping[str, Any]:
    """The network state dict in ``path`` (``torch.load(weights_only=True)``), taken from ``key_in_ckpt`` if given."""
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


def _manifest(entries: Mapping[str, bytes], meta: Mapping[str, Any]) -> dict[str, Any]:
    from monai_bone import __version__

    return {
        "format": ARCHIVE_FORMAT,
        "format_version": ARCHIVE_FORMAT_VERSION,
        "bundle_name": meta.get("name"),
        "bundle_version": meta.get("version"),
        "monai_bone_version": __version__,
        "hash_type": "sha256",
        "files": [{"path": p, "size": len(b), "sha256": sha256_bytes(b)} for p, b in entries.items()],
    }


def _sums_text(files: Iterable[Mapping[str, Any]]) -> str:
    return "".join(f"{f['sha256']}  {f['path']}\n" for f in files)


def export_bundle(
    bundle_dir: str | os.PathLike,
    out: str | os.PathLike,
    ckpt_file: str | os.PathLike | None = None,
    net_id: str = "network_def",
    key_in_ckpt: str = "",
    overwrite: bool = False,
) -> dict[str, Any]:
    """Pack a trained bundle into a zip archive with a sha256 manifest.

    The TorchScript model is made by ``monai.bundle.ckpt_export`` from ``configs/inference.json`` and the checkpoint,
    so it is exactly the network the inference config builds, with the bundle metadata embedded.

    Args:
        bundle_dir: bundle folder.
        out: the zip file to write (parent folders are created).
        ckpt_file: weights to export instead of ``models/model.pt`` (packed as ``models/model.pt``).
        net_id: network ID in the inference config.
        key_in_ckpt: key of the network weights inside a training checkpoint (e.g. ``"network"``); only those
            weights are packed, as a plain state dict. Empty for a plain state dict (packed byte for byte).
        overwrite: replace ``out`` when it exists.

    Returns:
        The manifest dict written into the archive.

    Raises:
        FileNotFoundError: a required bundle file is missing.
        FileExistsError: ``out`` exists and ``overwrite`` is False.
        BundleIntegrityError: the weights are not a plain state dict (or lack ``key_in_ckpt``), TorchScript export
            failed or a text file holds a patient name or birth date.
    """
    root = Path(bundle_dir).resolve()
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out}: already exists (pass overwrite=True / --overwrite to replace it)")
    files = collect_bundle_files(root)
    if ckpt_file is not None:
        ckpt_file = Path(ckpt_file)
        if not ckpt_file.is_file():
            raise FileNotFoundError(f"{ckpt_file}: checkpoint not found")
        files["models/model.pt"] = ckpt_file
    ckpt = files["models/model.pt"]
    state = _load_weights(ckpt, key_in_ckpt)

    entries: dict[str, bytes] = {rel: p.read_bytes() for rel, p in files.items()}
    with tempfile.TemporaryDirectory(prefix="monai-bone-export-") as tmp:
        if key_in_ckpt:  # share the network weights only, never optimizer or trainer state
            ckpt = Path(tmp) / "model.pt"
            torch.save(dict(state), ckpt)
            entries["models/model.pt"] = ckpt.read_bytes()
        ts_path = Path(tmp) / "model.ts"
        _make_torchscript(root, ckpt, ts_path, net_id)
        entries["models/model.ts"] = ts_path.read_bytes()
    entries = dict(sorted(entries.items()))

    meta = json.loads(entries["configs/metadata.json"]) if "configs/metadata.json" in entries else {}
    manifest = _manifest(entries, meta)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for rel, data in entries.items():
            # weights barely compress (float32) and torch's own format is already a zip: store them as they are
            method = zipfile.ZIP_STORED if rel.startswith("models/") and rel.endswith((".pt", ".ts")) else None
            zf.writestr(zipfile.ZipInfo(rel, date_time=_ZIP_DATE), data, compress_type=method or zipfile.ZIP_DEFLATED)
        zf.writestr(zipfile.ZipInfo(SUMS_NAME, date_time=_ZIP_DATE), _sums_text(manifest["files"]))
        zf.writestr(zipfile.ZipInfo(MANIFEST_NAME, date_time=_ZIP_DATE), json.dumps(manifest, indent=2) + "\n")
    atomic_write_bytes(out, buf.getvalue())
    logger.info("exported %s (%d files + manifest) to %s", manifest["bundle_name"] or root.name, len(entries), out)
    return manifest


def _safe_member(archive: Path, name: str) -> str:
    p = PurePosixPath(name)
    if "\\" in name or p.is_absolute() or ".." in p.parts or not p.parts or name.startswith("/"):
        raise BundleIntegrityError(f"{archive}: unsafe path {name!r} in archive; refusing to import")
    return p.as_posix()


def _read_member(zf: zipfile.ZipFile, archive: Path, name: str) -> bytes:
    try:
        return zf.read(name)
    except (zipfile.BadZipFile, zlib.error, EOFError) as err:
        raise BundleIntegrityError(f"{archive}: {name} is corrupted ({err}); refusing to import") from err


def verify_archive(archive: str | os.PathLike) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Check every file of an exported archive against its manifest, reading nothing onto disk.

    Args:
        archive: zip written by :func:`export_bundle`.

    Returns:
        ``(manifest, contents)``: the manifest dict and the verified bytes of every listed file by archive path.

    Raises:
        FileNotFoundError: ``archive`` does not exist.
        BundleIntegrityError: not a zip, no or unreadable manifest, unsafe or unexpected path, missing file, size or
            sha256 mismatch (the message names the file).
    """
    archive = Path(archive)
    if not archive.is_file():
        raise FileNotFoundError(f"{archive}: archive not found")
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as err:
        raise BundleIntegrityError(f"{archive}: not a zip archive ({err})") from err
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        names = [_safe_member(archive, i.filename) for i in infos]
        for info in infos:
            if (info.external_attr >> 16) & 0o170000 == 0o120000:
                raise BundleIntegrityError(f"{archive}: {info.filename} is a symbolic link; refusing to import")
        if len(set(names)) != len(names):
            raise BundleIntegrityError(f"{archive}: duplicate entries in archive; refusing to import")
        if MANIFEST_NAME not in names:
            raise BundleIntegrityError(f"{archive}: no {MANIFEST_NAME}; not a monai-bone bundle export")
        try:
            manifest = json.loads(_read_member(zf, archive, MANIFEST_NAME))
            listed = {f["path"]: f for f in manifest["files"]}
        except (ValueError, KeyError, TypeError) as err:
            raise BundleIntegrityError(f"{archive}: {MANIFEST_NAME} is unreadable ({err})") from err
        if manifest.get("format") != ARCHIVE_FORMAT or manifest.get("hash_type") != "sha256":
            raise BundleIntegrityError(f"{archive}: {MANIFEST_NAME} is not a {ARCHIVE_FORMAT} sha256 manifest")
        for rel in listed:
            _safe_member(archive, rel)
        present = set(names) - {MANIFEST_NAME, SUMS_NAME}
        extra, missing = sorted(present - set(listed)), sorted(set(listed) - present)
        if extra:
            raise BundleIntegrityError(f"{archive}: {extra[0]} is not listed in {MANIFEST_NAME}; refusing to import")
        if missing:
            raise BundleIntegrityError(
                f"{archive}: {missing[0]} is listed in {MANIFEST_NAME} but missing from the archive; refusing to import"
            )
        if SUMS_NAME in names:
            sums = _read_member(zf, archive, SUMS_NAME).decode("utf-8", errors="replace")
            if sums != _sums_text(manifest["files"]):
                raise BundleIntegrityError(f"{archive}: {SUMS_NAME} disagrees with {MANIFEST_NAME}; refusing to import")
        contents: dict[str, bytes] = {}
        for rel, entry in listed.items():
            data = _read_member(zf, archive, rel)
            digest = sha256_bytes(data)
            if digest != entry.get("sha256") or len(data) != entry.get("size"):
                raise BundleIntegrityError(
                    f"{archive}: {rel} fails its sha256 check (expected {entry.get('sha256')}, got {digest}); "
                    "the archive was modified or corrupted after export - refusing to import"
                )
            contents[rel] = data
    return manifest, contents


def import_bundle(archive: str | os.PathLike, out_dir: str | os.PathLike, overwrite: bool = False) -> Path:
    """Verify an exported archive and unpack it into a bundle folder.

    Nothing is written unless every file passes its check; the folder appears in one rename, so a failed import
    leaves no half-written bundle.

    Args:
        archive: zip written by :func:`export_bundle`.
        out_dir: bundle folder to create.
        overwrite: replace ``out_dir`` when it exists and is not empty.

    Returns:
        The bundle folder.

    Raises:
        FileNotFoundError: ``archive`` does not exist.
        FileExistsError: ``out_dir`` exists, is not empty and ``overwrite`` is False.
        BundleIntegrityError: see :func:`verify_archive`; also when ``models/model.pt`` is not a plain state dict.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())) and not overwrite:
        raise FileExistsError(f"{out_dir}: exists and is not empty (pass overwrite=True / --overwrite to replace it)")
    manifest, contents = verify_archive(archive)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        for rel, data in contents.items():
            atomic_write_bytes(staging / rel, data)
        if "models/model.pt" in contents:
            _load_weights(staging / "models" / "model.pt")
        atomic_write_bytes(staging / MANIFEST_NAME, (json.dumps(manifest, indent=2) + "\n").encode())
        if out_dir.exists():
            shutil.rmtree(out_dir) if out_dir.is_dir() else out_dir.unlink()
        os.replace(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info(
        "imported %s %s (%d files, all sha256 verified) into %s",
        manifest.get("bundle_name"),
        manifest.get("bundle_version"),
        len(contents),
        out_dir,
    )
    return out_dir


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

    from monai_bone.engines import atomic_torch_save

    src, out = Path(bundle_dir), Path(out_dir)
    if out.exists():
        raise FileExistsError(f"{out}: exists")
    shutil.copytree(src / "configs", out / "configs")
    if (src / "docs").is_dir():
        shutil.copytree(src / "docs", out / "docs")
    if (src / "LICENSE").is_file():
        shutil.copy2(src / "LICENSE", out / "LICENSE")
    (out / "models").mkdir()
    parser = ConfigParser()
    parser.read_config(str(out / "configs" / "inference.json"))
    parser["bundle_root"] = str(out)
    parser.get_parsed_content("imports")
    torch.manual_seed(seed)
    atomic_torch_save(parser.get_parsed_content("network_def").state_dict(), out / "models" / "model.pt")
    if clinical_records is not None:
        from monai_bone.engines import fit_clinical_stats

        fit_clinical_stats(list(clinical_records), out / "models" / "clinical_stats.json")
    return out
