"""``monai-bone watch DICOMWEB_URL``: infer new DX/CR radiographs of a PACS and store DICOM SRs back (STOW-RS)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from monai_bone.cli.arguments import add_flag
from monai_bone.cli.commands import command_help
from monai_bone.cli.label import add_bundle_arguments, given_bundles, parse_override
from monai_bone.tasks import task_names

__all__ = ["add_parser", "parse_body_part", "run_watch"]

logger = logging.getLogger(__name__)


def parse_body_part(text: str) -> tuple[str, str]:
    """``BODYPART=TASK`` -> ``(BODYPART upper case, task)``.

    Raises:
        ValueError: when the text does not have that form or the task is unknown.
    """
    part, sep, task = text.partition("=")
    if not sep or not part.strip() or task not in task_names():
        raise ValueError(f"--body-part {text!r}: expected BODYPART=TASK with TASK one of {sorted(task_names())}")
    return part.strip().upper(), task


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``watch`` and its arguments; sets ``func=run_watch``."""
    p = subparsers.add_parser(
        "watch",
        help=command_help("watch"),
        description=(
            "Polls DICOMWEB_URL (QIDO-RS; Orthanc's change feed on Orthanc) for new DX/CR instances, picks the bundle "
            "from BodyPartExamined, runs its inference.json and stores one DICOM SR per instance (plus a heat-map "
            "Secondary Capture with --heatmap) into the source's study with STOW-RS. Processed instances are kept in "
            "a local state file: nothing is processed twice and a restart resumes. Credentials only from "
            "MONAI_BONE_DICOMWEB_USER/MONAI_BONE_DICOMWEB_PASSWORD or --credentials-file."
        ),
    )
    p.add_argument("url", help="DICOMweb root, e.g. http://127.0.0.1:8042/dicom-web (no credentials in it)")
    add_bundle_arguments(p)
    p.add_argument("--state", default="monai-bone-watch/state.json", help="state file (default: %(default)s)")
    p.add_argument("--workdir", default="monai-bone-watch/work", help="work folder (default: %(default)s)")
    p.add_argument(
        "--body-part",
        action="append",
        default=[],
        metavar="BODYPART=TASK",
        help="add to the BodyPartExamined map (default HIP=hip, PELVIS=hip, KNEE=knee); repeatable",
    )
    p.add_argument(
        "--override", action="append", default=[], metavar="TASK.ID=VALUE", help="inference.json ID override"
    )
    add_flag(p, "--heatmap", help="Grad-CAM: heat-map SC stored too, SR attached to a region")
    add_flag(p, "--once", help="one poll, then exit (for cron); exit 1 if the server is down")
    p.add_argument("--interval", type=float, default=60.0, help="seconds between polls (default: %(default)s)")
    p.add_argument("--max-backoff", type=float, default=600.0, help="longest retry wait while the server is down")
    p.add_argument("--since", metavar="YYYYMMDD", help="QIDO-RS study search from this StudyDate on")
    p.add_argument(
        "--lookback-days",
        type=int,
        default=2,
        help="later QIDO-RS polls search StudyDate from the last poll minus this (-1: always from --since)",
    )
    add_flag(p, "--no-changes", help="do not use Orthanc's change feed (QIDO-RS only)")
    p.add_argument("--credentials-file", help="file whose first line is user:password (HTTP basic auth)")
    add_flag(p, "--allow-remote", help="allow a server that is not on this machine")
    p.add_argument("--nproc", type=int, default=1, help="torchrun processes for a large backlog (one per GPU)")
    p.add_argument("--backlog", type=int, default=200, help="new instances of a bundle from which --nproc applies")
    p.add_argument(
        "--timeout",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="a --nproc torchrun run taking longer is stopped (all its processes killed) and its instances get an "
        "error entry; set it above what your largest backlog needs; 0: no limit (default: %(default)s)",
    )
    add_flag(p, "--keep-work", help="keep each poll's retrieved files and outputs")
    p.set_defaults(func=run_watch)
    return p


def run_watch(args: argparse.Namespace) -> int:
    """Run the watcher; returns the exit code.

    Raises:
        ValueError: bad arguments (URL with credentials, remote server without --allow-remote, no bundle, ...).
        FileNotFoundError: a bundle that does not exist.
    """
    # the watcher and the bundle predictor import torch and MONAI: only when the command runs (CLI start-up)
    from monai_bone.label.predictor import resolve_bundle
    from monai_bone.results.pacs import PacsClient, is_loopback, load_credentials
    from monai_bone.results.state import WatchState
    from monai_bone.results.watch import DEFAULT_BODY_PARTS, WatchConfig, Watcher

    client = PacsClient(args.url, auth=load_credentials(args.credentials_file))
    if not is_loopback(client.url) and not args.allow_remote:
        raise ValueError(f"{client.url} is not on this machine: pass --allow-remote to watch a remote server")
    workdir = Path(args.workdir)
    bundles = {task: resolve_bundle(given, workdir / "bundles") for task, given in given_bundles(args).items()}
    if not bundles:
        raise ValueError(f"give at least one of {' / '.join(f'--{t}-bundle' for t in task_names())}")
    body_parts = dict(DEFAULT_BODY_PARTS)
    body_parts.update(parse_body_part(t) for t in args.body_part)
    overrides: dict[str, dict[str, object]] = {}
    for text in args.override:
        task, config_id, value = parse_override(text)
        overrides.setdefault(task, {})[config_id] = value
    config = WatchConfig(
        bundles=bundles,
        workdir=workdir,
        body_parts=body_parts,
        overrides=overrides,
        heatmap=args.heatmap,
        interval=args.interval,
        max_backoff=args.max_backoff,
        since_date=args.since,
        lookback_days=args.lookback_days,
        use_changes=not args.no_changes,
        keep_work=args.keep_work,
        nproc=args.nproc,
        backlog=args.backlog,
        timeout=args.timeout,
    )
    watcher = Watcher(client, WatchState(args.state), config)
    logger.info("watching %s (bundles: %s; state %s)", client.url, ", ".join(sorted(bundles)), args.state)
    return watcher.run(once=args.once)
