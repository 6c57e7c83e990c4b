"""Untrusted bundle archives: size/count/ratio caps with bounded memory, and trust beyond self-consistency.

The zip bomb (1 GiB of zeros, ~1 MB compressed) and the oversize manifest (1 GiB) are built streaming, so the test
itself stays light; the import runs in a subprocess whose peak RSS is read from the kernel (``os.wait4``).
"""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from monai_bone.bundle import (
    UNTRUSTED_NOTE,
    ArchiveLimits,
    BundleIntegrityError,
    SignatureError,
    digest_path,
    export_bundle,
    generate_keypair,
    import_bundle,
    sha256_bytes,
    sign_manifest,
    verify_archive,
)
from monai_bone.bundle.manifest import manifest_bytes, sums_text
from monai_bone.cli import main

REPO = Path(__file__).resolve().parents[2]
GIB = 1 << 30


def _toy(root: Path) -> Path:
    (root / "configs").mkdir(parents=True)
    (root / "models").mkdir()
    (root / "configs" / "metadata.json").write_text(json.dumps({"name": "toy", "version": "0.1.0"}))
    net = {"network_def": {"_target_": "torch.nn.Linear", "in_features": 3, "out_features": 1}}
    (root / "configs" / "inference.json").write_text(json.dumps(net))
    (root / "LICENSE").write_text("Apache-2.0\n")
    torch.manual_seed(0)
    torch.save(torch.nn.Linear(3, 1).state_dict(), root / "models" / "model.pt")
    return root


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A signed export of a toy bundle, its key pair and its digest file."""
    tmp = tmp_path_factory.mktemp("signed")
    key, pub = generate_keypair(tmp / "keys" / "author.key")
    archive = tmp / "toy.zip"
    export_bundle(_toy(tmp / "toy"), archive, sign_key=key)
    return {"archive": archive, "key": key, "pub": pub, "tmp": tmp}


def _copy_members(src: Path, dst: zipfile.ZipFile, skip: set[str] = frozenset()) -> None:
    with zipfile.ZipFile(src) as zf:
        for info in zf.infolist():
            if info.filename not in skip:
                dst.writestr(info.filename, zf.read(info.filename))


def _stream_member(zf: zipfile.ZipFile, name: str, head: bytes, fill: bytes, size: int) -> None:
    """Write ``head`` then ``fill`` repeated up to ``size`` bytes, deflated, 1 MiB at a time (never in memory)."""
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    chunk = fill * ((1 << 20) // len(fill))
    with zf.open(info, "w", force_zip64=True) as f:
        f.write(head)
        written = len(head)
        while written < size:
            part = chunk[: size - written]
            f.write(part)
            written += len(part)


def _bomb(archive: Path, out: Path) -> Path:
    """The valid toy archive plus 1 GiB of zeros in ``toy/models/zeros.bin`` (~1 MB compressed)."""
    with zipfile.ZipFile(out, "w", compresslevel=1) as zf:
        _copy_members(archive, zf)
        _stream_member(zf, "toy/models/zeros.bin", b"", b"\0", GIB)
    return out


def _huge_manifest(archive: Path, out: Path) -> Path:
    """The toy archive whose manifest.json is replaced by a 1 GiB JSON document (whitespace after the real one)."""
    with zipfile.ZipFile(archive) as zf:
        real = zf.read("toy/manifest.json")
    with zipfile.ZipFile(out, "w", compresslevel=1) as zf:
        _copy_members(archive, zf, skip={"toy/manifest.json"})
        _stream_member(zf, "toy/manifest.json", real, b" ", GIB)
    return out


_CHILD = """
import json, resource, sys
from monai_bone.bundle import BundleIntegrityError, import_bundle
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
results = []
for archive in sys.argv[2:]:
    try:
        import_bundle(archive, sys.argv[1])
        results.append("imported")
    except BundleIntegrityError as err:
        results.append(str(err))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"base_mb": base / 1024, "peak_mb": peak / 1024, "results": results}))
"""


@pytest.mark.slow
def test_zip_bomb_and_huge_manifest_refused_with_bounded_memory(signed: dict[str, Path], tmp_path: Path) -> None:
    bomb = _bomb(signed["archive"], tmp_path / "bomb.zip")
    huge = _huge_manifest(signed["archive"], tmp_path / "huge.zip")
    assert bomb.stat().st_size < 5 << 20 and huge.stat().st_size < 5 << 20  # ~1 MB on disk, 1 GiB inside
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-c", _CHILD, str(tmp_path / "out"), str(bomb), str(huge)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()[-2000:]
    report = json.loads(out.decode().strip().splitlines()[-1])
    bomb_msg, huge_msg = report["results"]
    assert "toy/models/zeros.bin expands" in bomb_msg and "compression-ratio limit" in bomb_msg
    assert "toy/manifest.json is 1024.0 MiB uncompressed, over the 8.0 MiB limit" in huge_msg
    # Memory: importing monai_bone (torch, MONAI) dominates the process; reading the archives must add almost nothing
    # (the old reader held every member in memory: > 1 GiB here). 300 MB is a generous bound on the increase.
    grown = report["peak_mb"] - report["base_mb"]
    print(f"peak RSS {report['peak_mb']:.0f} MB, after imports {report['base_mb']:.0f} MB, increase {grown:.1f} MB")
    assert grown < 300, report
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.*"))


def test_caps_name_the_member(signed: dict[str, Path], tmp_path: Path) -> None:
    archive = signed["archive"]
    with pytest.raises(BundleIntegrityError, match=r"members, over the 3 limit"):
        verify_archive(archive, limits=ArchiveLimits(max_members=3))
    with pytest.raises(BundleIntegrityError, match=r"toy/.+ brings the uncompressed total to .* over the"):
        verify_archive(archive, limits=ArchiveLimits(max_total_bytes=1000))
    # ratio on a member above ratio_min_bytes: 2 MiB of spaces in the docs
    padded = tmp_path / "padded.zip"
    with zipfile.ZipFile(padded, "w") as zf:
        _copy_members(archive, zf)
        _stream_member(zf, "toy/docs/pad.txt", b"", b" ", 2 << 20)
    with pytest.raises(BundleIntegrityError, match=r"toy/docs/pad\.txt expands \d+x"):
        verify_archive(padded)
    result = verify_archive(archive)  # the untouched archive passes the default caps
    assert result.trust == "self-consistent" and result.layout_prefix == "toy/"


def _rehashed_malicious(archive: Path, out: Path, signature: bytes | None | str = "keep") -> Path:
    """What an attacker does: change a config to run code, then recompute its sha256, the manifest and sha256sums."""
    evil = json.dumps({"network_def": "$__import__('os').system('echo pwned')"}).encode()
    with zipfile.ZipFile(archive) as zf:
        manifest = json.loads(zf.read("toy/manifest.json"))
        members = {i.filename: zf.read(i.filename) for i in zf.infolist()}
    for f in manifest["files"]:
        if f["path"] == "configs/inference.json":
            f.update(size=len(evil), sha256=sha256_bytes(evil))
    members["toy/configs/inference.json"] = evil
    members["toy/manifest.json"] = manifest_bytes(manifest)
    members["toy/sha256sums"] = sums_text(manifest["files"]).encode()
    if signature is None:
        members.pop("toy/manifest.sig")
    elif isinstance(signature, bytes):
        members["toy/manifest.sig"] = signature
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out


def test_rehashed_malicious_config_refused_with_digest_and_key(
    signed: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    archive, pub = signed["archive"], signed["pub"]
    digest = digest_path(archive).read_text().split()[0]
    evil = _rehashed_malicious(archive, tmp_path / "evil.zip")
    # self-consistency alone cannot tell: the re-hashed archive passes, and import says so plainly
    with caplog.at_level(logging.WARNING):
        import_bundle(evil, tmp_path / "naive")
    assert UNTRUSTED_NOTE in caplog.text and "execute Python code" in caplog.text
    with pytest.raises(BundleIntegrityError, match=f"manifest digest .* differs from the expected {digest}"):
        import_bundle(evil, tmp_path / "a", expect_sha256=digest)
    with pytest.raises(SignatureError, match="does not verify"):
        import_bundle(evil, tmp_path / "b", trust_key=pub)
    unsigned = _rehashed_malicious(archive, tmp_path / "unsigned.zip", signature=None)
    with pytest.raises(SignatureError, match="not signed"):
        import_bundle(unsigned, tmp_path / "c", trust_key=pub)
    # the attacker's own key does not help: the recipient trusts the author's key only
    mallory, _ = generate_keypair(tmp_path / "mallory.key")
    with zipfile.ZipFile(evil) as zf:
        record = sign_manifest(zf.read("toy/manifest.json"), mallory)
    resigned = _rehashed_malicious(archive, tmp_path / "resigned.zip", signature=json.dumps(record).encode())
    with pytest.raises(SignatureError, match="signed by a different key"):
        import_bundle(resigned, tmp_path / "d", trust_key=pub)
    for name in "abcd":
        assert not (tmp_path / name).exists()
    # the genuine archive passes both checks, and no untrusted note is logged for it
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        out = import_bundle(archive, tmp_path / "ok", expect_sha256=digest.upper(), trust_key=pub)
    assert UNTRUSTED_NOTE not in caplog.text
    assert (out / "manifest.sig").is_file() and (out / "configs" / "inference.json").is_file()


def test_cli_keygen_export_import(
    tmp_path: Path, capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture
) -> None:
    key = tmp_path / "keys" / "me.key"
    assert main(["bundle", "keygen", str(key)]) == 0
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and Path(f"{key}.pub").is_file()
    assert main(["bundle", "keygen", str(key)]) == 1  # never overwrites a key
    archive = tmp_path / "toy.zip"
    assert main(["export", str(_toy(tmp_path / "toy")), "--out", str(archive), "--sign-key", str(key)]) == 0
    printed = capsys.readouterr().out
    digest = digest_path(archive).read_text().split()[0]
    assert f"manifest sha256: {digest}" in printed and f"--expect-sha256 {digest}" in printed
    assert main(["import", str(archive), "--out", str(tmp_path / "u1"), "--trust-key", f"{key}.pub"]) == 0
    assert main(["import", str(archive), "--out", str(tmp_path / "u2"), "--expect-sha256", "0" * 64]) == 1
    assert "differs from the expected" in caplog.text and not (tmp_path / "u2").exists()
    assert main(["import", str(archive), "--out", str(tmp_path / "u3"), "--expect-sha256", "xyz"]) == 1
    caplog.clear()
    assert main(["import", str(archive), "--out", str(tmp_path / "u4")]) == 0
    assert "only internal consistency was checked" in caplog.text
    # a signing key others can read is refused, like ssh does
    key.chmod(0o644)
    assert main(["export", str(tmp_path / "toy"), "--out", str(tmp_path / "x.zip"), "--sign-key", str(key)]) == 1
    assert "readable by others" in caplog.text and not (tmp_path / "x.zip").exists()


def test_old_flat_layout_still_imports(signed: dict[str, Path], tmp_path: Path) -> None:
    """0.1 archives had the files and manifest at the archive root (no top folder)."""
    old = tmp_path / "old.zip"
    with zipfile.ZipFile(signed["archive"]) as src, zipfile.ZipFile(old, "w") as dst:
        for info in src.infolist():
            name = info.filename.removeprefix("toy/")
            if name != "manifest.sig":
                dst.writestr(name, src.read(info.filename))
    out = import_bundle(old, tmp_path / "imported")
    assert (out / "models" / "model.pt").read_bytes() == (signed["tmp"] / "toy" / "models" / "model.pt").read_bytes()
    assert verify_archive(old).layout_prefix == ""
