"""``python -m monai_bone.label ...``: the ``monailabel`` command line, runnable beside pydicom 3.

Same arguments as ``monailabel`` (e.g. ``python -m monai_bone.label start_server --app DIR --studies DIR``); it only
installs :func:`~monai_bone.label.compat.install_pydicom2_uid_alias` first. ``monai-bone label serve`` uses it.
"""

from __future__ import annotations

from monai_bone.label.compat import install_pydicom2_uid_alias


def main() -> None:
    """Run MONAI Label's CLI in this process (uvicorn then imports the server app here too)."""
    install_pydicom2_uid_alias()
    from monailabel.main import Main

    Main().run()


if __name__ == "__main__":
    main()
