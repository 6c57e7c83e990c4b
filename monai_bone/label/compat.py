"""Compatibility of MONAI Label 0.8.5 with pydicom 3 (which monai-bone needs for its DICOM decoders).

MONAI Label imports ``pydicom_seg`` (0.4.1, its DICOM-SEG writer) at start-up, and ``pydicom_seg`` imports
``pydicom._storage_sopclass_uids``, a private pydicom 2 module that pydicom 3 replaced by the public
``pydicom.uid`` constants. :func:`install_pydicom2_uid_alias` registers a module of that name holding the storage SOP
class UIDs from ``pydicom.uid``, so the import succeeds. It does nothing under pydicom 2. monai-bone never writes
DICOM SEG (its models return numbers), so no ``pydicom_seg`` code runs beyond its imports.
"""

from __future__ import annotations

import importlib.util
import sys
import types

__all__ = ["install_pydicom2_uid_alias"]

_ALIAS = "pydicom._storage_sopclass_uids"


def install_pydicom2_uid_alias() -> bool:
    """Make ``import pydicom._storage_sopclass_uids`` work under pydicom 3.

    Returns:
        True when the alias was installed (pydicom 3), False when pydicom provides the module itself.
    """
    if _ALIAS in sys.modules or importlib.util.find_spec(_ALIAS) is not None:
        return False
    import pydicom.uid

    module = types.ModuleType(_ALIAS, "pydicom 2 storage SOP class UIDs, aliased from pydicom.uid by monai-bone")
    for name in dir(pydicom.uid):
        value = getattr(pydicom.uid, name)
        if name.endswith("Storage") and isinstance(value, pydicom.uid.UID):
            setattr(module, name, value)
    sys.modules[_ALIAS] = module
    return True
