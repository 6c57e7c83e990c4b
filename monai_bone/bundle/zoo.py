"""The folder a MONAI model-zoo pull request needs: the bundle without its weights, plus ``large_files.yml``.

Model-zoo keeps large files out of git (its pre-commit refuses files over 1 MiB; its guide names 25 MB): weights
are published elsewhere and ``large_files.yml`` lists, per file, its ``path`` in the bundle, its ``url``,
``hash_val`` and ``hash_type: sha256`` (MONAI's ``download_large_files`` and model-zoo's ``verify_bundle.py`` fetch
and check them). :func:`write_model_zoo_folder` builds that folder from an exported archive:
``DIR/<bundle_name>/`` (configs, docs, LICENSE, small model files, ``large_files.yml``) and, to upload to the URL
you named, ``DIR/large_files/<bundle_name>/models/...``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import yaml

from .export import digest_path, sha256_file
from .importing import import_bundle
from .manifest import MANIFEST_NAME, SIGNATURE_NAME, SUMS_NAME

__all__ = ["LARGE_FILE_SUFFIXES", "MODEL_ZOO_MAX_BYTES", "large_files_entries", "write_model_zoo_folder"]

#: model-zoo's limit for a file committed to the repository (pre-commit `check-added-large-files --maxkb=1024`).
MODEL_ZOO_MAX_BYTES = 1024 * 1024
#: Files that always go to ``large_files.yml`` whatever their size.
LARGE_FILE_SUFFIXES = (".pt", ".ts", ".onnx")


def large_files_entries(bundle_dir: Path, base_url: str) -> list[dict[str, str]]:
    """``large_files.yml`` entries for the weights (and any file over 1 MiB) under ``bundle_dir``."""
    entries = []
    for p in sorted(bundle_dir.rglob("*")):
        if p.is_file() and (p.suffix in LARGE_FILE_SUFFIXES or p.stat().st_size > MODEL_ZOO_MAX_BYTES):
            rel = p.relative_to(bundle_dir).as_posix()
            entries.append(
                {"path": rel, "url": f"{base_url.rstrip('/')}/{rel}", "hash_val": sha256_file(p), "hash_type": "sha256"}
            )
    return entries


def write_model_zoo_folder(
    archive: str | os.PathLike, out_dir: str | os.PathLike, base_url: str | None, overwrite: bool = False
) -> Path:
    """Write the model-zoo folder of an exported archive.

    Args:
        archive: zip from ``monai-bone export`` (verified against its digest file before use).
        out_dir: folder to write ``<bundle_name>/`` and ``large_files/<bundle_name>/`` into.
        base_url: where the large files will be published; file URLs are ``<base_url>/<path in bundle>``.
        overwrite: replace an existing ``<bundle_name>/`` folder.

    Returns:
        The bundle folder ``out_dir/<bundle_name>``.

    Raises:
        ValueError: no ``base_url``.
        FileExistsError: the folder exists and ``overwrite`` is False.
    """
    if not base_url:
        raise ValueError("--model-zoo needs --weights-url: the URL folder where you will publish the weight files")
    out_dir = Path(out_dir)
    digest = Path(digest_path(archive)).read_text(encoding="utf-8").split()[0]
    with tempfile.TemporaryDirectory(prefix="monai-bone-zoo-") as tmp:
        bundle = import_bundle(archive, Path(tmp) / "bundle", expect_sha256=digest)
        name = json.loads((bundle / MANIFEST_NAME).read_text(encoding="utf-8"))["bundle_name"]
        dest, weights = out_dir / name, out_dir / "large_files" / name
        for d in (dest, weights):
            if d.exists():
                if not overwrite:
                    raise FileExistsError(f"{d}: exists (pass --overwrite to replace it)")
                shutil.rmtree(d)
        for n in (MANIFEST_NAME, SUMS_NAME, SIGNATURE_NAME):
            (bundle / n).unlink(missing_ok=True)  # they list the weights, which the folder does not hold
        entries = large_files_entries(bundle, base_url)
        for e in entries:
            target = weights / e["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(bundle / e["path"]), target)
        text = yaml.safe_dump({"large_files": entries}, sort_keys=False)
        (bundle / "large_files.yml").write_text(text, encoding="utf-8")
        out_dir.mkdir(parents=True, exist_ok=True)
        shutil.copytree(bundle, dest)
    return dest
