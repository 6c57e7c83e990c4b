"""``monai-bone index``: scan a DICOM or KOP image folder, or a DICOMweb server, into a MONAI datalist with folds,
rejects and warnings.

Examples::

    monai-bone index cohort/dicom --out cohort/datalist.json \\
        --clinical cohort/clinical.csv --clinical cohort/ground_truth.csv --task hip --folds 10 --seed 0
    monai-bone index http://127.0.0.1:8042/dicom-web --out hip/datalist.json --clinical hip/clinical.csv --task hip

A DICOMweb source's DX/CR instances are retrieved into ``--cache`` (default ``dicomweb_cache/`` beside ``--out``)
and indexed like a folder; a second run downloads only what is not cached yet.

With ``--pseudonymise`` PatientID, Study/SOP Instance UIDs and the join key are replaced by salted pseudonyms in every
output (salt from ``--salt`` or the ``MONAI_BONE_SALT`` environment variable -- prefer the variable: command lines
end up in shell histories and process lists; the salt is never written anywhere). ``--mapping PATH`` also writes the
original -> pseudonym CSV there; keep it apart from the data you share::

    MONAI_BONE_SALT=... monai-bone index /data/hip --out share/datalist.json --clinical /data/hip.csv --task hip \
        --pseudonymise --mapping /secure/pseudonyms.csv

prints ``files seen N = used U + rejected R`` with the count per reject reason, and writes ``rejects.csv`` and
``warnings.csv`` beside the datalist.
"""

from __future__ import annotations

import argparse
import logging

from monai_bone.cli.arguments import add_flag, folds_argument
from monai_bone.cli.commands import command_help
from monai_bone.tasks import task_names

__all__ = ["add_parser", "folds_argument", "run"]

logger = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``index`` sub-command.

    Args:
        subparsers: the object returned by ``ArgumentParser.add_subparsers``.

    Returns:
        The sub-command parser (``func`` set to :func:`run`).
    """
    # the ingestion modules (pydicom, DICOMweb client) load only when `index` is the command: CLI start-up
    from monai_bone.data.index_guards import BILATERAL_MODES
    from monai_bone.data.pseudonym import SALT_ENV
    from monai_bone.data.sources import SOURCE_KINDS
    from monai_bone.data.sources.dicomweb import DEFAULT_CACHE_NAME

    parser = subparsers.add_parser(
        "index",
        help=command_help("index"),
        description=(
            "Header-only scan of SOURCE (DICOM DX/CR files with any names, KOP-style class folders of PNG/JPEG, or "
            "the DX/CR instances of a DICOMweb server, retrieved into --cache first), joined with clinical CSV(s) "
            "on --key; writes the datalist JSON plus rejects.csv and warnings.csv beside it. Without --task (or "
            "without a label column) unlabelled records are kept (inference)."
        ),
    )
    parser.add_argument(
        "source",
        help="DICOM folder, KOP image folder (class sub-folders normal/, osteoporosis/...) or DICOMweb URL "
        "(http://HOST:PORT/dicom-web)",
    )
    parser.add_argument("--out", required=True, help="datalist JSON to write (rejects.csv/warnings.csv go beside it)")
    parser.add_argument(
        "--clinical",
        action="append",
        default=None,
        metavar="CSV",
        help="clinical CSV keyed by --key (repeatable; files are merged on the key; bmd/label columns are labels)",
    )
    parser.add_argument("--key", default="PatientID", help="join key: DICOM keyword = CSV column (default PatientID)")
    parser.add_argument("--task", choices=task_names(), default=None, help="hip (label bmd) or knee (label class)")
    parser.add_argument(
        "--folds", type=folds_argument, default=10, help="patient-disjoint stratified folds, 2 or more (default 10)"
    )
    parser.add_argument("--seed", type=int, default=0, help="fold and test-split shuffling seed (default 0)")
    parser.add_argument(
        "--test-fraction",
        type=float,
        default=None,
        metavar="F",
        help="share of patients held out as a locked, patient-disjoint, stratified test split (records get "
        '"split": "test" and no fold; never read by training, selection, statistics or cv). Default 0.2 when the '
        "data are labelled, else 0; 0 turns it off",
    )
    parser.add_argument(
        "--source-kind", choices=SOURCE_KINDS, default=None, help="source layout (default: auto-detect)"
    )
    parser.add_argument(
        "--cache",
        default=None,
        metavar="DIR",
        help=f"DICOMweb source: folder for the retrieved instances (default: {DEFAULT_CACHE_NAME}/ beside --out)",
    )
    add_flag(
        parser,
        "--pseudonymise",
        help="replace PatientID, Study/SOP Instance UIDs and the join key by salted pseudonyms in all outputs "
        "(the clinical CSV join uses the originals)",
    )
    parser.add_argument(
        "--salt",
        default=None,
        help=f"secret salt of the pseudonyms (default: the {SALT_ENV} environment variable, which is safer than a "
        "command-line argument); never written to any output",
    )
    parser.add_argument(
        "--mapping",
        default=None,
        metavar="CSV",
        help="with --pseudonymise: also write the original -> pseudonym mapping here (keep it private)",
    )
    parser.add_argument(
        "--body-parts",
        default=None,
        metavar="LIST",
        help="with --task: accepted BodyPartExamined values, comma-separated (default hip: HIP,PELVIS; knee: KNEE); "
        "other values are rejected as wrong_body_part",
    )
    parser.add_argument(
        "--views",
        default=None,
        metavar="LIST",
        help="with --task: accepted ViewPosition values (default AP,PA); others are rejected as wrong_view",
    )
    parser.add_argument(
        "--bilateral",
        choices=BILATERAL_MODES,
        default=None,
        help="knee: decode each image and warn about bilateral images (warn, the default for --task knee), split "
        "them into a left and a right study (split), or skip the check (off)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="processes reading headers (default: up to 4 for 1000 files or more on 4+ CPUs; 1 = this process only)",
    )
    parser.add_argument(
        "--dedup",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="group exact/near-duplicate images (perceptual hash of the decoded pixels) so they never straddle folds "
        "or train/test, and reject duplicates with conflicting labels (conflicting_duplicate). Default: on when the "
        "data are labelled",
    )
    add_flag(parser, "--no-progress", help="no progress bar")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``index`` with parsed arguments; prints the summary and returns the exit code (0; 1 when a DICOMweb server
    cannot be used, with the reason logged)."""
    from monai_bone.data.datalist import build_datalist  # ingestion: loaded when the command runs (CLI start-up)
    from monai_bone.data.image_guards import parse_tag_list
    from monai_bone.data.sources.dicomweb import DicomwebError

    if not getattr(args, "verbose", False):  # dicomweb-client logs every request at INFO
        logging.getLogger("dicomweb_client").setLevel(logging.WARNING)
    try:
        summary = build_datalist(
            args.source,
            args.out,
            clinical=args.clinical,
            key=args.key,
            task=args.task,
            folds=args.folds,
            seed=args.seed,
            progress=not args.no_progress,
            source_kind=args.source_kind,
            cache=args.cache,
            pseudonymise=args.pseudonymise,
            salt=args.salt,
            mapping=args.mapping,
            body_parts=parse_tag_list(args.body_parts),
            views=parse_tag_list(args.views),
            bilateral=args.bilateral,
            workers=args.workers,
            test_fraction=args.test_fraction,
            dedup=args.dedup,
        )
    except DicomwebError as err:
        logger.error("%s", err)
        return 1
    print(summary)
    return 0
