"""monai-bone: bone health (femoral-neck BMD, osteoporosis) from plain X-rays, as a MONAI plugin.

Sub-packages load on first use (``monai_bone.networks``, ``monai_bone.transforms``, ...; PEP 562 ``__getattr__``) so
that ``import monai_bone`` -- which the ``monai-bone`` command line does before anything else -- does not import
torch or MONAI: ``monai-bone --help`` starts in a fraction of a second.

Bundle configs name components by dotted ``_target_`` (``monai_bone.networks.XAttnBMD``), which imports what it
needs. MONAI's short-name lookup (``"_target_": "XAttnBMD"`` after ``"$import monai_bone"``) searches only modules
already imported, so in a process that has imported MONAI (every bundle run, any MONAI user) ``import monai_bone``
loads every sub-package at once, as earlier releases always did: the component names are registered for that lookup,
and the cost is small next to the MONAI/torch import already paid.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

from ._version import __version__
from .bundle.errors import install as _install_bundle_excepthook

#: Sub-packages registered for bundle configs (loaded lazily, or at once when MONAI is already imported).
_SUBPACKAGES: tuple[str, ...] = (
    "constants",
    "data",
    "engines",
    "handlers",
    "losses",
    "metrics",
    "networks",
    "transforms",
    "utils",
)

__all__ = ["__version__", *_SUBPACKAGES]


def __getattr__(name: str) -> ModuleType:
    """Import sub-package ``name`` on first access (``monai_bone.networks`` without a prior import)."""
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_SUBPACKAGES))


def _load_subpackages() -> None:
    """Import every registered sub-package (registers the components for MONAI's short-name lookup)."""
    for name in _SUBPACKAGES:
        importlib.import_module(f"{__name__}.{name}")


if "monai" in sys.modules:  # MONAI (and torch) already paid for: register everything, as before (module docstring)
    _load_subpackages()

_install_bundle_excepthook()  # only inside `python -m monai.bundle`: one-line errors for bad arguments
