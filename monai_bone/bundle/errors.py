"""One readable line instead of tracebacks when ``python -m monai.bundle run`` stops on a bad argument.

MONAI's runner evaluates config expressions lazily and wraps their errors in ``RuntimeError("Failed to evaluate
ConfigExpression ...")`` chains, so a missing ``--datalist`` ends in two or three tracebacks. Importing
``monai_bone`` inside that runner (every monai-bone bundle config starts with ``$import monai_bone``) installs
:func:`bundle_excepthook` as ``sys.excepthook``; it is installed only when the process's ``__main__`` is
``monai.bundle`` (never in a library user's process, notebook or test run).

The hook looks at the innermost error of the chain. When it was raised while reading one of the bundle's arguments
-- the function it came from is in :data:`ARGUMENT_READERS` (e.g. ``fold_records`` reads ``--datalist``) -- it prints
one line to stderr and the process exits with status 1::

    monai-bone: bad --datalist: datalist not found: /data/dl.json (fix: pass --datalist PATH, a datalist JSON
    written by `monai-bone index`)

Any other error (a bug, an out-of-memory) keeps Python's full traceback. A log record carrying a bad-argument
error (MONAI's ``StatsHandler`` logs the exception that stopped an engine) keeps its message line without the
traceback.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from types import TracebackType

__all__ = ["ARGUMENT_FIXES", "ARGUMENT_READERS", "bundle_excepthook", "format_argument_error", "install"]

#: Function that reads a bundle argument -> the config id it reads.
ARGUMENT_READERS: dict[str, str] = {
    "load_records": "datalist",
    "fold_records": "datalist",
    "split_folds": "val_fold",
    "datalist_info": "datalist",
    "prepare_inference_datalist": "input",
    "inference_records": "input",
    "inference_source_kind": "input",
    "load_clinical_stats": "clinical_stats_path",
    "read_clinical_csv": "clinical_csv",
    "load_checkpoint": "ckpt_path",
    "require_checkpoint": "ckpt_path",
    "resolve_salt": "salt",
}
#: What to do about a bad value of each id.
ARGUMENT_FIXES: dict[str, str] = {
    "datalist": "pass --datalist PATH, a datalist JSON written by `monai-bone index` (with --folds 2 or more for "
    "training)",
    "val_fold": "pass --val_fold K with a fold that the datalist holds (its num_folds says how many); a datalist "
    "indexed with --folds 1 has no validation fold: re-index with `monai-bone index --folds 2` or more",
    "input": "pass --input PATH: a datalist JSON, a folder of DICOM/PNG/JPEG files, or one .dcm/.png/.jpg file",
    "clinical_stats_path": "train the bundle first (training writes models/clinical_stats.json) or pass "
    "--clinical_stats_path PATH",
    "clinical_csv": "pass --clinical_csv PATH to a readable clinical CSV keyed by PatientID (or leave it out)",
    "ckpt_path": "pass --ckpt_path PATH to a model.pt written by training this bundle (or train it first)",
    "pretrained": "put the weights file where the message says, pass --pretrained_path FILE, or pass --pretrained "
    "null to train from random initialisation",
    "salt": "set the MONAI_BONE_SALT environment variable (or pass --salt) to the secret salt of your pseudonyms",
}
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # monai_bone/


def _innermost(err: BaseException) -> BaseException:
    seen = set()
    while id(err) not in seen:
        seen.add(id(err))
        nxt = err.__cause__ or (None if err.__suppress_context__ else err.__context__)
        if nxt is None:
            break
        err = nxt
    return err


def _reader_id(err: BaseException) -> str | None:
    """The config id of the innermost monai-bone argument reader in the error's traceback."""
    found = None
    for frame in traceback.extract_tb(err.__traceback__):
        if frame.name in ARGUMENT_READERS and os.path.abspath(frame.filename).startswith(_PACKAGE_DIR):
            found = ARGUMENT_READERS[frame.name]
    if found is None and "CheckpointFileError" in type(err).__name__:
        found = "ckpt_path"
    if found is None and type(err).__name__ == "PretrainedWeightsError":
        found = "pretrained"
    return found


def format_argument_error(err: BaseException) -> str | None:
    """The one-line message for an error caused by a bad bundle argument, or ``None`` for any other error."""
    inner = _innermost(err)
    weights = type(inner).__name__ == "PretrainedWeightsError"  # a RuntimeError whose message says what to do
    if not (weights or isinstance(inner, (ValueError, OSError, KeyError, TypeError))):
        return None
    config_id = _reader_id(inner)
    if config_id is None:
        return None
    message = " ".join(str(inner).split()) or type(inner).__name__
    return f"monai-bone: bad --{config_id}: {message} (fix: {ARGUMENT_FIXES.get(config_id, 'check that argument')})"


def bundle_excepthook(
    exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None, _default=sys.__excepthook__
) -> None:
    """``sys.excepthook`` of bundle runs: one line for bad arguments, the usual traceback otherwise."""
    line = format_argument_error(exc) if isinstance(exc, Exception) else None
    if line is None:
        _default(exc_type, exc, tb)
        return
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


class _ArgumentErrorFilter(logging.Filter):
    """Drops the traceback of a logged bad-argument error (e.g. MONAI's StatsHandler ``logger.exception``), keeping
    its message line."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, Exception) and format_argument_error(exc) is not None:
            record.exc_info, record.exc_text = None, None
        return True


def install(force: bool = False) -> bool:
    """Install :func:`bundle_excepthook` when this process runs ``python -m monai.bundle`` (or ``force``).

    Returns:
        Whether the hook was installed.
    """
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if not force and getattr(spec, "name", "") != "monai.bundle.__main__":
        return False
    sys.excepthook = bundle_excepthook
    for handler in logging.getLogger().handlers:  # the bundle's logging.conf is applied before configs import us
        if not any(isinstance(f, _ArgumentErrorFilter) for f in handler.filters):
            handler.addFilter(_ArgumentErrorFilter())
    return True
