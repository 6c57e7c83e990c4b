"""The monai-bone version, in one place: the package root, the CLI, file writers and manifests import it from here.

Modules inside the package import ``from monai_bone._version import __version__`` rather than from the package root,
so that reading the version never imports the rest of the package (and no module depends on the root's imports).
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
