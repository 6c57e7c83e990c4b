"""The monai-bone MONAI Label app: both bundles as infer tasks over a local folder or a DICOMweb server.

Start it with ``monai-bone label serve`` (which prepares the app folder, the studies and the environment), or with
``monailabel start_server --app <folder whose main.py imports BoneLabelApp> --studies ...``. App configuration
(``--conf key value``):

=====================  =============================================================================================
``models``             comma-separated tasks or bundle names to serve (default: every task with a trained bundle)
``hip_bundle``         hip bundle folder or exported ``.zip`` (default: ``bundles/hip_bmd_xattn`` of the source tree)
``knee_bundle``        knee bundle folder or ``.zip`` (default: ``bundles/knee_osteoporosis_hybrid_attention``)
``hip_overrides``      JSON object of ``inference.json`` ID overrides (e.g. ``{"spatial_size": 128}``)
``knee_overrides``     the same for the knee bundle
``device``             torch device (default: the bundles' choice, CUDA when available)
``rejects``            JSON file image id -> reason, for studies the index refused (written by ``label serve``)
``uploads``            upload area of a local datastore (default ``<app folder>/uploads``; ``label serve``:
                       ``<work folder>/uploads``)
``max_upload_mb``      request body cap in MB, answered 413 (default 100; read by :mod:`monai_bone.label.asgi`)
=====================  =============================================================================================

The infer tasks are named after the bundles (``POST /infer/hip_bmd_xattn?image=<id>``). Bad requests get a 4xx JSON
``{"detail": "...", "reason": "..."}`` (MONAI Label itself answers 500 to every error): 404 unknown model or image id,
400 a malformed id or clinical value, 403 a server path given as image, 415 a file that is neither DICOM nor PNG/JPEG,
422 a file that is not a usable hip/knee radiograph (``reason`` is the predictor's, e.g. ``not_xray`` for a CT, which
the index rejects the same way). The datastore is :class:`~monai_bone.label.datastore.ArchiveDatastore` (the archive
is read-only; uploads go to their own folder) or, for DICOMweb, a read-only one; the request guard of
:mod:`monai_bone.label.http` (body cap, JSON form fields) comes with ``--uvicorn_app monai_bone.label.asgi:app``.

DICOMweb defaults (used unless the ``MONAI_LABEL_*`` variable is set): series search filter ``{"Modality": "DX,CR"}``
(a QIDO-RS value list; MONAI Label's default is CT; set ``{"Modality": "DX"}`` for a PACS without list matching), no
NIfTI conversion (the bundles read the DICOM files themselves, with their photometric interpretation and VOI window),
and no download of the dcmqi DICOM-SEG tools (nothing here writes SEG).
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any

from fastapi import HTTPException
from monailabel.config import settings
from monailabel.datastore.dicom import DICOMWebDatastore
from monailabel.interfaces.app import MONAILabelApp
from monailabel.interfaces.datastore import Datastore

from monai_bone._version import __version__
from monai_bone.bundle import BUNDLE_NAMES

from .datastore import ArchiveDatastore, ReadOnlyDICOMwebDatastore
from .infer_task import BoneInferTask
from .predictor import BundlePredictor
from .refusals import RequestRefused, discard_request_file, is_request_file
from .request import PredictionError
from .server import DEFAULT_SEARCH_FILTER, bundle_paths, parse_models

__all__ = ["BoneLabelApp"]

logger = logging.getLogger(__name__)

_ID_RE = re.compile(r"^[A-Za-z0-9._\-]+$")


def _json_conf(conf: dict[str, str], key: str) -> dict[str, Any]:
    text = conf.get(key)
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"--conf {key}: not JSON ({err})") from None
    if not isinstance(value, dict):
        raise ValueError(f"--conf {key}: expected a JSON object of config ID -> value")
    return value


def _apply_dicomweb_defaults() -> None:
    if "MONAI_LABEL_DICOMWEB_SEARCH_FILTER" not in os.environ:
        settings.MONAI_LABEL_DICOMWEB_SEARCH_FILTER = dict(DEFAULT_SEARCH_FILTER)
    if "MONAI_LABEL_DICOMWEB_CONVERT_TO_NIFTI" not in os.environ:
        settings.MONAI_LABEL_DICOMWEB_CONVERT_TO_NIFTI = False


class BoneLabelApp(MONAILabelApp):
    """MONAI Label app serving the monai-bone hip and knee bundles.

    Args:
        app_dir: the app folder (MONAI Label writes ``logs/``, ``model/`` and ``bin/`` there).
        studies: local studies folder or DICOMweb URL.
        conf: ``--conf`` values (see the module docstring).

    Raises:
        ValueError: for a bad conf value, FileNotFoundError for a missing or untrained bundle (at start-up, so a
            server never runs without its models).
    """

    def __init__(self, app_dir: str, studies: str, conf: dict[str, str]) -> None:
        conf = dict(conf or {})
        self.tasks = parse_models(conf.get("models"))
        self.device = conf.get("device") or None
        self.rejected: dict[str, str] = {}
        if conf.get("rejects"):
            self.rejected = json.loads(Path(conf["rejects"]).read_text(encoding="utf-8"))
        self.work_dir = Path(app_dir) / "model"
        _apply_dicomweb_defaults()
        self._bone_conf = conf
        super().__init__(
            app_dir=app_dir,
            studies=studies,
            conf=conf,
            name="monai-bone",
            description="Bone health from plain X-rays: hip BMD / T-score (XAttn-BMD) and knee osteoporosis",
            version=__version__,
        )

    def init_infers(self) -> dict[str, BoneInferTask]:
        """One :class:`BoneInferTask` per configured task, named after its bundle."""
        given = {task: self._bone_conf.get(f"{task}_bundle") for task in self.tasks}
        infers: dict[str, BoneInferTask] = {}
        for task, bundle in bundle_paths(self.tasks, given).items():
            predictor = BundlePredictor(
                bundle,
                device=self.device,
                overrides=_json_conf(self._bone_conf, f"{task}_overrides"),
                work_dir=self.work_dir / "bundles",
            )
            if predictor.task != task:
                raise ValueError(f"{predictor.bundle_dir}: given as the {task} bundle but it is a {predictor.task} one")
            infers[BUNDLE_NAMES[task]] = BoneInferTask(predictor)
        return infers

    def init_datastore(self) -> Datastore:
        """:class:`ArchiveDatastore` over a local folder; MONAI Label's DICOMweb datastore made read-only otherwise."""
        if self.studies.startswith(("http://", "https://")):
            store = super().init_datastore()
            if type(store) is DICOMWebDatastore:  # same state, refusing methods: the class is swapped, not copied
                store.__class__ = ReadOnlyDICOMwebDatastore
            return store
        return ArchiveDatastore(
            self.studies,
            uploads_path=self._bone_conf.get("uploads") or os.path.join(self.app_dir, "uploads"),
            extensions=settings.MONAI_LABEL_DATASTORE_FILE_EXT,
            auto_reload=settings.MONAI_LABEL_DATASTORE_AUTO_RELOAD,
            read_only=settings.MONAI_LABEL_DATASTORE_READ_ONLY,
        )

    def init_strategies(self) -> dict:
        """No active-learning strategies: this app predicts, it does not collect labels."""
        return {}

    def _download_dcmqi_tools(self) -> None:
        logger.info("dcmqi download skipped: monai-bone returns JSON predictions, never DICOM SEG")

    def _resolve_image(self, image: Any, datastore: Any) -> str:
        if not isinstance(image, str) or not image.strip():
            raise RequestRefused(400, "no image id given (?image=<id>)", "no_image")
        if os.path.isabs(image):
            if is_request_file(image) and os.path.exists(image):
                return os.path.realpath(image)  # the file uploaded with this request (MONAI Label's temporary file)
            raise RequestRefused(403, "image must be a datastore id (server paths are not served)", "server_path")
        if not _ID_RE.match(image) or image in (".", ".."):
            raise RequestRefused(400, f"malformed image id {image!r}", "malformed_id")
        if image in self.rejected:
            detail = f"image {image!r} was rejected by the index: {self.rejected[image]}"
            raise RequestRefused(422, detail, self.rejected[image].split(":", 1)[0].strip() or None)
        try:
            uri = datastore.get_image_uri(image)
        except (IndexError, KeyError, LookupError):
            uri = ""
        except Exception as err:  # noqa: BLE001 - a DICOMweb retrieval failure is the remote server's, not ours
            raise HTTPException(status_code=502, detail=f"cannot retrieve image {image!r}: {err}") from None
        if not uri or not os.path.exists(uri):
            raise RequestRefused(404, f"unknown image id {image!r}", "unknown_image")
        return uri

    def infer(self, request: dict[str, Any], datastore: Any = None) -> dict[str, Any]:
        """MONAI Label's infer with request checks and 4xx answers (see the module docstring).

        A refused request's uploaded file is deleted here (MONAI Label deletes it only after a successful answer).
        """
        try:
            model = request.get("model")
            if model not in self._infers:
                detail = f"unknown model {model!r}; served: {sorted(self._infers)}"
                raise RequestRefused(404, detail, "unknown_model")
            request = dict(request)
            request["image"] = self._resolve_image(request.get("image"), datastore or self.datastore())
            try:
                return super().infer(request, datastore)
            except PredictionError as err:  # any reason of the predictor's passes through
                raise RequestRefused(err.status, str(err), err.reason) from None
        except BaseException:
            discard_request_file(request.get("image"))
            raise
