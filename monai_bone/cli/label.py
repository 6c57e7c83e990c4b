"""``monai-bone label serve``: both bundles as MONAI Label infer tasks over a local folder or a DICOMweb server.

Needs the ``label`` extra (``pip install "monai-bone[label]"``). See :mod:`monai_bone.label.server` for the work
folder layout and :mod:`monai_bone.label.app` for the endpoints and error answers. The serving settings can live in
a reviewed file (options on the command line win over it)::

    monai-bone label serve --config configs/label_serve.yaml --studies /data/knee_xrays
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging

from monai_bone.cli.arguments import add_flag
from monai_bone.cli.commands import command_help
from monai_bone.cli.config import add_config_argument
from monai_bone.tasks import task_names

__all__ = ["add_bundle_arguments", "add_parser", "given_bundles", "parse_override", "run_serve"]

logger = logging.getLogger(__name__)


def parse_override(text: str) -> tuple[str, str, object]:
    """``TASK.ID=VALUE`` (VALUE read as JSON when it parses, else kept as text) -> ``(task, id, value)``.

    Raises:
        ValueError: when the text does not have that form or the task is unknown.
    """
    key, sep, raw = text.partition("=")
    task, dot, config_id = key.partition(".")
    if not sep or not dot or not config_id or task not in task_names():
        raise ValueError(f"--override {text!r}: expected TASK.ID=VALUE with TASK one of {sorted(task_names())}")
    try:
        value: object = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return task, config_id, value


def add_bundle_arguments(parser: argparse.ArgumentParser) -> None:
    """``--TASK-bundle DIR_OR_ZIP`` for every registered task (``--hip-bundle``, ``--knee-bundle``)."""
    for task in task_names():
        parser.add_argument(
            f"--{task}-bundle",
            default=None,
            metavar="DIR_OR_ZIP",
            help=f"trained {task} bundle folder or `monai-bone export` zip",
        )


def given_bundles(args: argparse.Namespace) -> dict[str, str]:
    """Task -> the bundle given with ``--TASK-bundle`` (tasks without one are left out)."""
    return {t: getattr(args, f"{t}_bundle") for t in task_names() if getattr(args, f"{t}_bundle", None)}


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``label serve`` and its arguments; sets ``func=run_serve``."""
    p = subparsers.add_parser(
        "label",
        help=command_help("label"),
        description="MONAI Label integration of the monai-bone bundles.",
    )
    sub = p.add_subparsers(dest="label_command", metavar="ACTION", required=True)
    s = sub.add_parser(
        "serve",
        help="start a MONAI Label server with the hip and knee infer tasks",
        description=(
            "Start `monailabel start_server` with the monai-bone app, offline (no downloads, no SAM2, no training). "
            "STUDIES is a local folder (indexed first with the `monai-bone index` header rules; MONAI Label sees one "
            "link per usable radiograph) or a DICOMweb URL (series of modality DX or CR). Endpoints: GET /info/, "
            "POST /infer/hip_bmd_xattn?image=ID and /infer/knee_osteoporosis_hybrid_attention?image=ID."
        ),
    )
    add_config_argument(s)
    s.add_argument("--studies", required=True, metavar="SOURCE", help="local folder or http(s)://HOST:PORT/dicom-web")
    s.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")
    s.add_argument("--host", default="127.0.0.1", help="bind address (default loopback; 0.0.0.0 for the network)")
    s.add_argument("--models", default=None, help="comma-separated tasks or bundle names (default: hip,knee)")
    add_bundle_arguments(s)
    s.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="TASK.ID=VALUE",
        help="inference.json ID override, e.g. hip.spatial_size=128 (repeatable)",
    )
    s.add_argument("--device", default=None, help="torch device (default: CUDA when available)")
    s.add_argument(
        "--workdir",
        default="monai-bone-label",
        help="work folder: app, datastore links, uploads, temporary files, logs (default: %(default)s)",
    )
    s.add_argument(
        "--max-upload-mb",
        type=float,
        default=100.0,
        metavar="MB",
        help="largest request body (image upload) in MB; larger ones are answered 413 (default: %(default)g)",
    )
    add_flag(s, "--no-progress", help="hide the index progress bar")
    s.add_argument(
        "monailabel_args",
        nargs=argparse.REMAINDER,
        metavar="-- MONAILABEL_ARGS",
        help="after --: more `monailabel start_server` arguments, e.g. -- --ssl_keyfile K --ssl_certfile C",
    )
    s.set_defaults(func=run_serve)
    return p


def run_serve(args: argparse.Namespace) -> int:
    """Prepare the work folder and run the server in the foreground until Ctrl-C; returns its exit code.

    Raises:
        ValueError: bad ``--override``/``--models``, a port in use, or the label extra missing.
        FileNotFoundError: a missing studies folder or bundle.
    """
    from monai_bone.label.server import LabelServer, parse_models  # imports torch and MONAI (CLI start-up)

    if importlib.util.find_spec("monailabel") is None:
        raise ValueError('MONAI Label is not installed: pip install "monai-bone[label]"')
    overrides: dict[str, dict[str, object]] = {}
    for text in args.override:
        task, config_id, value = parse_override(text)
        overrides.setdefault(task, {})[config_id] = value
    models = parse_models(args.models)
    bundles = given_bundles(args)
    server = LabelServer(
        args.studies,
        args.workdir,
        port=args.port,
        host=args.host,
        models=models,
        bundles=bundles,
        overrides=overrides,
        device=args.device,
        progress=not args.no_progress,
        extra_args=[a for a in args.monailabel_args if a != "--"],
        max_upload_mb=args.max_upload_mb,
    )
    return server.run_foreground()
