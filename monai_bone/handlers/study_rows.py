"""The base of the per-study handlers: one row per evaluated study, gathered over ranks and written at epoch end.

:class:`StudyRowHandler` collects rows at every ``ITERATION_COMPLETED`` (after MONAI's decollate, so any batch size and
a partial last batch give exactly one row per study); at ``EPOCH_COMPLETED`` the rows of all ranks are gathered
(:func:`gather_rows`) and the ``save_rank`` process writes them. Only the image file name and ``patient_id`` identify
a study; no other header field is read or written. Subclasses: the evaluation report
(:class:`~monai_bone.handlers.BoneReportWriter`), the inference writer and the DICOM results writer.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monai.data import decollate_batch
from monai.utils import IgniteInfo, min_version, optional_import, string_list_all_gather
from monai.utils import ImageMetaKey as Key

idist, _ = optional_import("ignite", IgniteInfo.OPT_IMPORT_VERSION, min_version, "distributed")
Events, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Events")
if TYPE_CHECKING:
    from ignite.engine import Engine
else:
    Engine, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Engine")

__all__ = ["StudyRowHandler", "gather_rows", "row_fieldnames"]


def gather_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """All-gather per-study rows (JSON-serialisable dicts) from every rank, rank 0's rows first.

    Uses ``monai.utils.string_list_all_gather`` (ignite distributed or native ``torch.distributed``); a no-op
    outside distributed runs. Every rank must call it (collective).

    Args:
        rows: this rank's rows.

    Returns:
        The rows of all ranks.
    """
    if idist.get_world_size() <= 1:
        return rows
    encoded = string_list_all_gather([json.dumps(r) for r in rows])
    return [json.loads(s) for s in encoded if s]


def _as_items(data: Any, what: str) -> list[Any]:
    if data is None:
        return []
    if isinstance(data, Mapping):
        return decollate_batch(dict(data), detach=True)
    if isinstance(data, (list, tuple)):
        return list(data)
    raise TypeError(f"engine.state.{what} must be a dict or a list of per-study dicts, got {type(data).__name__}.")


class StudyRowHandler:
    """Base Ignite handler that turns each evaluated study into one row and writes all rows at epoch end.

    Subclasses implement :meth:`make_row` (one study -> one dict) and :meth:`write` (all rows, on ``save_rank``).
    Works with decollated (default) and batch-first ``engine.state.batch`` / ``engine.state.output``.

    Args:
        output_dir: folder for the written files (created).
        image_key: key of the input image; its ``filename_or_obj`` metadata names the study.
        id_key: key of the patient identifier in the batch (written when present).
        error_key: key of an error message in a batch or output item (bad study: no prediction, error row).
        relative_to: when given, image paths are written relative to this folder.
        save_rank: the rank that writes the files in distributed runs.
        name: logger name; default the engine's logger.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        image_key: str = "image",
        id_key: str = "patient_id",
        error_key: str = "error",
        relative_to: str | os.PathLike | None = None,
        save_rank: int = 0,
        name: str | None = None,
    ) -> None:
        self.output_dir = Path(output_dir)
        self.image_key = image_key
        self.id_key = id_key
        self.error_key = error_key
        self.relative_to = relative_to
        self.save_rank = int(save_rank)
        self._name = name
        self.logger = logging.getLogger(name or __name__)
        self.rows: list[dict[str, Any]] = []

    def attach(self, engine: Engine) -> None:
        """Register the handler on ``engine`` (epoch start: reset; iteration end: collect; epoch end: write).

        Args:
            engine: an Ignite engine, typically a ``monai.engines.SupervisedEvaluator``.
        """
        if self._name is None:
            self.logger = engine.logger
        if not engine.has_event_handler(self._started, Events.EPOCH_STARTED):
            engine.add_event_handler(Events.EPOCH_STARTED, self._started)
        if not engine.has_event_handler(self, Events.ITERATION_COMPLETED):
            engine.add_event_handler(Events.ITERATION_COMPLETED, self)
        if not engine.has_event_handler(self._completed, Events.EPOCH_COMPLETED):
            engine.add_event_handler(Events.EPOCH_COMPLETED, self._completed)

    def _started(self, _engine: Engine) -> None:
        self.rows = []

    def __call__(self, engine: Engine) -> None:
        """Collect one row per study of the current iteration."""
        batch = _as_items(engine.state.batch, "batch")
        output = _as_items(engine.state.output, "output")
        if batch and output and len(batch) != len(output):
            raise ValueError(f"batch has {len(batch)} studies but the output has {len(output)}.")
        for i in range(max(len(batch), len(output))):
            b = batch[i] if i < len(batch) else {}
            o = output[i] if i < len(output) else {}
            if not isinstance(b, Mapping) or not isinstance(o, Mapping):
                raise TypeError("BoneReportWriter/BonePredictionWriter need dictionary data (MONAI dict transforms).")
            row: dict[str, Any] = {"image": self._filename(b, o), "patient_id": self._patient_id(b, o)}
            error = self._error(b, o)
            if error:
                row["error"] = error
            else:
                row.update(self.make_row(b, o))
            self.rows.append(row)

    def _completed(self, engine: Engine) -> None:
        ws = idist.get_world_size()
        if self.save_rank >= ws:
            raise ValueError(f"save_rank {self.save_rank} is not below the world size {ws}.")
        rows = gather_rows(self.rows)
        if idist.get_rank() == self.save_rank:
            self.write(rows, engine)

    def _source_path(self, b: Mapping, o: Mapping) -> str:
        """The study's image path as loaded (``filename_or_obj`` metadata, else the path itself); "" if unknown."""
        for item in (b, o):
            img = item.get(self.image_key)
            meta = getattr(img, "meta", None) or item.get(f"{self.image_key}_meta_dict") or {}
            fname = meta.get(Key.FILENAME_OR_OBJ) if isinstance(meta, Mapping) else None
            if fname is None and isinstance(img, (str, os.PathLike)):
                fname = img
            if fname is not None:
                return os.fspath(fname)
        return ""

    def _filename(self, b: Mapping, o: Mapping) -> str:
        """The image path written in the rows: :meth:`_source_path`, relative to ``relative_to`` when given."""
        fname = self._source_path(b, o)
        if fname and self.relative_to is not None:
            with contextlib.suppress(ValueError):  # other drive on Windows: keep the absolute path
                fname = os.path.relpath(fname, os.fspath(self.relative_to))
        return fname

    def _patient_id(self, b: Mapping, o: Mapping) -> str:
        for item in (b, o):
            pid = item.get(self.id_key)
            if pid is not None:
                return str(pid)
        return ""

    def _error(self, b: Mapping, o: Mapping) -> str:
        for item in (b, o):
            err = item.get(self.error_key)
            if err:
                return str(err)
        return ""

    def make_row(self, batch_item: Mapping, output_item: Mapping) -> dict[str, Any]:
        """Build the row values of one study (besides ``image``, ``patient_id`` and ``error``)."""
        raise NotImplementedError

    def write(self, rows: list[dict[str, Any]], engine: Engine) -> None:
        """Write all rows (called on ``save_rank`` only)."""
        raise NotImplementedError


def row_fieldnames(rows: Sequence[Mapping[str, Any]], first: Sequence[str]) -> list[str]:
    """Column names: ``first``, then every other key of ``rows`` in first-seen order."""
    names = list(first)
    for r in rows:
        names.extend(k for k in r if k not in names)
    return names
