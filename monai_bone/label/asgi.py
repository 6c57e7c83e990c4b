"""MONAI Label's FastAPI app with the monai-bone request guard: ``--uvicorn_app monai_bone.label.asgi:app``.

``monai-bone label serve`` starts MONAI Label with it; by hand::

    monailabel start_server --app APP_DIR --studies DIR --uvicorn_app monai_bone.label.asgi:app \\
        --conf max_upload_mb 100

MONAI Label's ``start_server`` sets its settings (the ``--conf`` values included) before uvicorn imports this module,
so the guard reads its upload cap from there (see :mod:`monai_bone.label.http`).
"""

from __future__ import annotations

from monai_bone.label.compat import install_pydicom2_uid_alias

install_pydicom2_uid_alias()

from monailabel.app import app as _monailabel_app  # noqa: E402 - needs the pydicom alias first

from monai_bone.label.http import install  # noqa: E402

__all__ = ["app"]

#: MONAI Label's app with :class:`~monai_bone.label.http.RequestGuard` and JSON refusals installed.
app = install(_monailabel_app)
