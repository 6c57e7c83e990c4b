"""Build hook: ship the repository's ``bundles/`` inside the wheel as ``monai_bone/bundle/shipped/``.

``bundles/`` stays the single source of truth at the top of the repository; a non-editable install finds the bundles
in the package (``monai_bone.bundle.packaged_bundle_dir``). Only what a bundle holds before training is copied
(configs, docs, licence, large_files.yml), never weights or run outputs. Everything else is in ``pyproject.toml``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

BUNDLE_FILES = ("configs", "docs", "LICENSE", "large_files.yml")


class BuildPyWithBundles(build_py):
    """``build_py`` that also copies ``bundles/<name>/{configs,docs,LICENSE,large_files.yml}`` into the package."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):  # an editable install reads <repo>/bundles directly
            return
        src = Path(__file__).resolve().parent / "bundles"
        dst = Path(self.build_lib) / "monai_bone" / "bundle" / "shipped"
        for bundle in sorted(p for p in src.iterdir() if (p / "configs").is_dir()):
            target = dst / bundle.name
            if target.exists():
                shutil.rmtree(target)
            target.mkdir(parents=True)
            for name in BUNDLE_FILES:
                p = bundle / name
                if p.is_dir():
                    shutil.copytree(p, target / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
                elif p.is_file():
                    shutil.copy2(p, target / name)


setup(cmdclass={"build_py": BuildPyWithBundles})
