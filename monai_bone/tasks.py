"""The task registry: one small spec per task that the CLI, index, reports, bundles and demo read.

A *task* is a clinical question with its own label kind, bundle and image rules. monai-bone ships two:

* ``hip`` — XAttn-BMD: hip radiograph + clinical fields -> femoral-neck BMD (g/cm^2), regression.
* ``knee`` — hybrid attention net: knee radiograph -> osteoporosis class, classification.

Code that needs to branch on the task should read a field of :class:`TaskSpec` (``spec.label_kind``,
``spec.label_key``, ``spec.bundle_name``...) instead of comparing the task name with a string literal, so that a new
task is added here (and in its bundle) rather than in every module. Example::

    from monai_bone.tasks import get_task, task_names

    spec = get_task("hip")
    spec.label_key        # "bmd"
    spec.is_regression    # True
    task_names()          # ("hip", "knee")
"""

from __future__ import annotations

from dataclasses import dataclass, field

from monai_bone.constants import (
    CLINICAL_FIELDS,
    KNEE_LABELS_BINARY,
    SCREENING_THRESHOLD,
    T_OSTEOPOROSIS,
    T_SCREENING,
    WHO_CLASSES,
)

__all__ = ["REGISTRY", "TaskSpec", "get_task", "register_task", "task_for_bundle", "task_names"]


@dataclass(frozen=True)
class TaskSpec:
    """What monai-bone needs to know about one task.

    Attributes:
        name: short task name used on the command line (``hip``).
        label_kind: ``"regression"`` (a continuous target) or ``"classification"`` (class index).
        label_key: datalist key holding the label (``bmd`` or ``label``).
        bundle_name: folder name of the task's MONAI bundle in ``bundles/`` and inside the installed package.
        body_parts: accepted DICOM BodyPartExamined values (upper case).
        views: accepted DICOM ViewPosition values (upper case).
        clinical_fields: clinical fields the task's model reads (empty for image-only tasks).
        class_names: class names of a classification task, index order (binary bundle default).
        screening_threshold: decision threshold in label units (g/cm^2 for BMD), ``None`` for classification.
        t_score_cuts: T-score cuts reported beside the threshold (screening, osteoporosis).
        synthetic_prefix: PatientID prefix of the synthetic cohort (``SYN-H``).
        title: human-readable title for reports.
    """

    name: str
    label_kind: str
    label_key: str
    bundle_name: str
    body_parts: tuple[str, ...]
    views: tuple[str, ...] = ("AP", "PA")
    clinical_fields: tuple[str, ...] = ()
    class_names: tuple[str, ...] = ()
    screening_threshold: float | None = None
    t_score_cuts: tuple[float, ...] = ()
    synthetic_prefix: str = ""
    title: str = ""
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.label_kind not in ("regression", "classification"):
            raise ValueError(f"label_kind must be 'regression' or 'classification', got {self.label_kind!r}")

    @property
    def is_regression(self) -> bool:
        """True when the task predicts a continuous value (BMD)."""
        return self.label_kind == "regression"

    @property
    def is_classification(self) -> bool:
        """True when the task predicts a class index."""
        return self.label_kind == "classification"

    @property
    def uses_clinical(self) -> bool:
        """True when the task's model reads clinical fields beside the image."""
        return bool(self.clinical_fields)


REGISTRY: dict[str, TaskSpec] = {}


def register_task(spec: TaskSpec, *, replace: bool = False) -> TaskSpec:
    """Add ``spec`` to the registry (``replace=True`` to override an existing task of that name)."""
    if spec.name in REGISTRY and not replace:
        raise ValueError(f"task {spec.name!r} is already registered")
    REGISTRY[spec.name] = spec
    return spec


def task_names() -> tuple[str, ...]:
    """Registered task names, in registration order (for ``argparse`` ``choices``)."""
    return tuple(REGISTRY)


def get_task(name: str | TaskSpec) -> TaskSpec:
    """The spec of task ``name`` (a spec passes through); a clear ``ValueError`` for an unknown name."""
    if isinstance(name, TaskSpec):
        return name
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown task {name!r}; expected one of {list(REGISTRY)}") from None


def task_for_bundle(bundle_name: str) -> TaskSpec:
    """The task whose bundle folder is ``bundle_name`` (``hip_bmd_xattn`` -> hip)."""
    for spec in REGISTRY.values():
        if spec.bundle_name == bundle_name:
            return spec
    raise ValueError(f"no task uses bundle {bundle_name!r}; known: {[s.bundle_name for s in REGISTRY.values()]}")


register_task(
    TaskSpec(
        name="hip",
        label_kind="regression",
        label_key="bmd",
        bundle_name="hip_bmd_xattn",
        body_parts=("HIP", "PELVIS"),
        clinical_fields=CLINICAL_FIELDS,
        class_names=WHO_CLASSES,
        screening_threshold=SCREENING_THRESHOLD,
        t_score_cuts=(T_SCREENING, T_OSTEOPOROSIS),
        synthetic_prefix="SYN-H",
        title="Hip X-ray + clinical fields -> femoral-neck BMD (XAttn-BMD)",
    )
)
register_task(
    TaskSpec(
        name="knee",
        label_kind="classification",
        label_key="label",
        bundle_name="knee_osteoporosis_hybrid_attention",
        body_parts=("KNEE",),
        class_names=KNEE_LABELS_BINARY,
        synthetic_prefix="SYN-K",
        title="Knee X-ray -> osteoporosis (hybrid attention network)",
    )
)
