"""monai-bone: bone health (femoral-neck BMD, osteoporosis) from plain X-rays, as a MONAI plugin.

Importing ``monai_bone`` registers its transforms, networks, losses and handlers so that bundle configs can name them
by dotted ``_target_`` (``monai_bone.networks.XAttnBMD``) or, after ``$import monai_bone``, by short name.
"""

from __future__ import annotations

__version__ = "0.1.0"

from . import constants, data, engines, handlers, losses, metrics, networks, transforms, utils  # noqa: E402
from .bundle.errors import install as _install_bundle_excepthook  # noqa: E402

_install_bundle_excepthook()  # only inside `python -m monai.bundle`: one-line errors for bad arguments

__all__ = [
    "__version__",
    "constants",
    "data",
    "engines",
    "handlers",
    "losses",
    "metrics",
    "networks",
    "transforms",
    "utils",
]
