"""Is this the right image for the model? Body part and view against the task, blank images, bilateral knees.

Three documented rules, shared by the index (:func:`monai_bone.data.datalist.build_datalist`), the loader-side
transform (:class:`monai_bone.transforms.XrayGuardd`, used by the bundles' training and inference chains and so by the
MONAI Label app) and ``monai-bone index --bilateral``.

**Body part and view** (:func:`check_body_part_view`, DICOM ``BodyPartExamined`` and ``ViewPosition``, upper-cased):

* a body part of the task (``TaskSpec.body_parts`` in :mod:`monai_bone.tasks`; hip: ``HIP``, ``PELVIS``; knee:
  ``KNEE``) is accepted;
* a body part in :data:`AMBIGUOUS_BODY_PARTS` (a wider region that may hold the joint: ``LEG``, ``LOWER LIMB``,
  ``EXTREMITY``, ...) is kept with a warning;
* any other body part (``CHEST``, ``KNEE`` for the hip model, ``HIP`` for the knee model, ...) is refused as
  ``wrong_body_part``;
* a view of the task (``TaskSpec.views``: ``AP``, ``PA`` for both tasks) is accepted; any other view (``LL``,
  ``RL``, ``LAT``, oblique ``LLO``/``RLO``, ...) is refused as ``wrong_view``;
* a missing tag (every PNG/JPEG, many DICOM files) is allowed with a warning -- the model cannot tell.

The maps are arguments (``body_parts``, ``views``, ``ambiguous``) everywhere the rule is applied, so a site whose
archive writes e.g. ``BodyPartExamined=LHIP`` can extend them (``monai-bone index --body-parts HIP,PELVIS,LHIP``).

**Blank and degenerate images** (:func:`blank_image_problem`, on the loaded pixel values after the modality LUT, in
stored grey levels, i.e. divided by RescaleSlope): an image is refused as ``blank_image`` when

* its central 98 % of pixel values (1st to 99th percentile) spans fewer than
  ``max(BLANK_MIN_LEVELS, BLANK_MIN_FRACTION x 2**BitsStored)`` grey levels -- 16 levels, or 1 % of the stored range
  (41 of 4096 at 12 bits, 655 of 65536 at 16 bits): constant, near-constant and noise-only images; or
* at least :data:`SATURATED_FRACTION` (95 %) of its pixels sit at its minimum or maximum value (burnt-out or
  unexposed images; a collimated radiograph keeps well under this, its borders are rarely more than half the image).

**Bilateral knee images** (:func:`bilateral_score`, :func:`is_bilateral`): a knee AP holding both knees side by side is
wide and shows two bright bone columns separated by a dark gap near the middle. The rule, on the image normalised to
[0, 1] (MONOCHROME2, bone bright) and downsampled to at most 256 pixels a side:

* width / height >= :data:`BILATERAL_MIN_ASPECT` (1.2); and
* the column profile (median of each column, smoothed over 5 % of the width) has its lowest point in the central
  30 % of the width (the valley between the knees) below :data:`BILATERAL_VALLEY_RATIO` (0.6) times the lower of the
  two highest points on either side of it (outer sixths excluded), all measured above the image's 1st-percentile
  floor, and those two points lie at least :data:`BILATERAL_MIN_SEPARATION` (30 %) of the width apart. A single
  knee, even padded to a wide image, has bone on one side of its lowest central point only (or, tibia and fibula,
  two peaks close together).

Detection rates on generated bilateral and single synthetic knees are measured by
``benchmarks/bench_guards.py`` (numbers in the README's "Reliability and privacy" section).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from monai_bone.tasks import get_task

__all__ = [
    "checks_bilateral",
    "AMBIGUOUS_BODY_PARTS",
    "BILATERAL_MIN_ASPECT",
    "BILATERAL_MIN_SEPARATION",
    "BILATERAL_VALLEY_RATIO",
    "BLANK_MIN_FRACTION",
    "BLANK_MIN_LEVELS",
    "GUARD_REASONS",
    "SATURATED_FRACTION",
    "BodyPartViewRule",
    "GuardFinding",
    "bilateral_score",
    "blank_image_problem",
    "check_body_part_view",
    "is_bilateral",
    "parse_tag_list",
    "split_halves",
]

#: Reject reasons of the image guards (also listed in :data:`monai_bone.data.dicom_records.REJECT_REASONS`).
GUARD_REASONS: dict[str, str] = {
    "wrong_body_part": "BodyPartExamined is not a body part the task's model was made for (hip: HIP/PELVIS, knee: "
    "KNEE)",
    "wrong_view": "ViewPosition is not a frontal view (AP/PA) the task's model was made for (e.g. a lateral view)",
    "blank_image": "blank or degenerate pixels: near-constant, tiny dynamic range or mostly saturated",
}

#: Wider regions that may hold the task's joint: kept with a warning.
AMBIGUOUS_BODY_PARTS: dict[str, tuple[str, ...]] = {
    "hip": ("FEMUR", "LEG", "LOWER LIMB", "LOWLIMB", "EXTREMITY", "LOWER EXTREMITY"),
    "knee": ("LEG", "LOWER LIMB", "LOWLIMB", "EXTREMITY", "LOWER EXTREMITY", "TIBIA", "FEMUR"),
}

#: Blank rule: minimum spread (grey levels) of the 1st-99th percentile, absolute and as a fraction of 2**BitsStored.
BLANK_MIN_LEVELS: int = 16
BLANK_MIN_FRACTION: float = 0.01
#: Blank rule: fraction of pixels at the image's minimum or maximum from which it counts as saturated.
SATURATED_FRACTION: float = 0.95

#: Bilateral rule: minimum width / height, and valley depth relative to the lower peak.
BILATERAL_MIN_ASPECT: float = 1.2
BILATERAL_VALLEY_RATIO: float = 0.6
#: Bilateral rule: the two peaks lie at least this fraction of the width apart (two knees, not tibia and fibula).
BILATERAL_MIN_SEPARATION: float = 0.3

_MAX_SAMPLE_PIXELS = 262_144


@dataclass(frozen=True)
class GuardFinding:
    """The outcome of a header check: a refusal (``reason`` set) or a warning (``reason`` ``None``).

    Attributes:
        field: ``"body_part"`` or ``"view"``.
        reason: ``"wrong_body_part"`` / ``"wrong_view"`` for a refusal, ``None`` for a warning.
        value: the tag value (``None`` when missing).
        detail: a sentence naming the tag, its value and the rule.
    """

    field: str
    reason: str | None
    value: str | None
    detail: str


def checks_bilateral(task: str | None) -> bool:
    """Whether images of ``task`` may hold both joints side by side (knee tasks: ``KNEE`` among the body parts)."""
    return task is not None and "KNEE" in get_task(task).body_parts


def parse_tag_list(value: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """``"HIP, pelvis"`` or ``["HIP", "PELVIS"]`` → ``("HIP", "PELVIS")``; ``None`` stays ``None`` (task default)."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else value
    out = tuple(str(v).strip().upper() for v in items if str(v).strip())
    if not out:
        raise ValueError(f"empty list of tag values: {value!r}")
    return out


def _clean(value: object) -> str | None:
    if value is None:
        return None
    text = (value if isinstance(value, str) else str(value)).strip().upper()
    return text or None


class BodyPartViewRule:
    """The body part / view rule of one task with its maps resolved once (see :func:`check_body_part_view`).

    Args:
        task: ``"hip"`` or ``"knee"``.
        body_parts: accepted body parts (default: the task's ``TaskSpec.body_parts``).
        views: accepted views (default: the task's ``TaskSpec.views``).
        ambiguous: body parts kept with a warning (default :data:`AMBIGUOUS_BODY_PARTS` of the task).

    Raises:
        ValueError: for an unknown task.
    """

    def __init__(
        self,
        task: str,
        body_parts: Sequence[str] | None = None,
        views: Sequence[str] | None = None,
        ambiguous: Sequence[str] | None = None,
    ) -> None:
        spec = get_task(task)  # ValueError naming the known tasks for an unknown one
        self.task = spec.name
        self.parts = tuple(p.upper() for p in (spec.body_parts if body_parts is None else body_parts))
        wide = AMBIGUOUS_BODY_PARTS.get(spec.name, ()) if ambiguous is None else ambiguous
        self.wide = frozenset(p.upper() for p in wide)
        self.views = tuple(v.upper() for v in (spec.views if views is None else views))

    def __call__(self, body_part: str | None, view: str | None) -> list[GuardFinding]:
        """Findings for one image: refusals first (``reason`` set), then warnings; empty when both tags fit."""
        task, parts, allowed_views = self.task, self.parts, self.views
        body_part, view = _clean(body_part), _clean(view)
        if body_part in parts and view in allowed_views:  # the common case
            return []
        refusals: list[GuardFinding] = []
        notes: list[GuardFinding] = []
        if body_part is None:
            detail = f"no BodyPartExamined: cannot check that it is a {task}"
            notes.append(GuardFinding("body_part", None, None, detail))
        elif body_part in self.wide and body_part not in parts:
            detail = f"BodyPartExamined {body_part} may or may not show the {task} ({'/'.join(parts)} expected); kept"
            notes.append(GuardFinding("body_part", None, body_part, detail))
        elif body_part not in parts:
            detail = (
                f"BodyPartExamined {body_part} is not a {task} radiograph; the {task} model accepts {'/'.join(parts)}"
                f" (extend with body_parts / --body-parts if your archive names it differently)"
            )
            refusals.append(GuardFinding("body_part", "wrong_body_part", body_part, detail))
        if view is None:
            detail = f"no ViewPosition: cannot check that it is a frontal {task} view"
            notes.append(GuardFinding("view", None, None, detail))
        elif view not in allowed_views:
            detail = (
                f"ViewPosition {view} is not a view the {task} model was made for ({'/'.join(allowed_views)} accepted;"
                " a lateral or oblique view is a different image)"
            )
            refusals.append(GuardFinding("view", "wrong_view", view, detail))
        return refusals + notes


def check_body_part_view(
    task: str,
    body_part: str | None,
    view: str | None,
    body_parts: Sequence[str] | None = None,
    views: Sequence[str] | None = None,
    ambiguous: Sequence[str] | None = None,
) -> list[GuardFinding]:
    """Check BodyPartExamined and ViewPosition against a task (see the module docstring for the rule).

    Args:
        task: ``"hip"`` or ``"knee"``.
        body_part: BodyPartExamined (any case; empty/``None`` = missing).
        view: ViewPosition (any case; empty/``None`` = missing).
        body_parts: accepted body parts (default: the task's ``TaskSpec.body_parts``).
        views: accepted views (default: the task's ``TaskSpec.views``).
        ambiguous: body parts kept with a warning (default :data:`AMBIGUOUS_BODY_PARTS` of the task).

    Returns:
        Findings: refusals first (``reason`` set), then warnings; empty when both tags fit.

    Raises:
        ValueError: for an unknown task.
    """
    return BodyPartViewRule(task, body_parts, views, ambiguous)(body_part, view)


def _sample(image: np.ndarray) -> np.ndarray:
    """A strided subsample of at most ~256k pixels (every k-th row and column)."""
    arr = np.asarray(image)
    while arr.ndim > 2 and arr.shape[0] == 1:
        arr = arr[0]
    step = max(1, int(np.ceil(np.sqrt(arr.size / _MAX_SAMPLE_PIXELS))))
    return np.asarray(arr[::step, ::step] if arr.ndim == 2 else arr.reshape(-1)[:: step * step], dtype=np.float64)


def blank_image_problem(
    image: np.ndarray,
    bits_stored: int | None = None,
    rescale_slope: float | None = None,
    min_levels: int = BLANK_MIN_LEVELS,
    min_fraction: float = BLANK_MIN_FRACTION,
    saturated_fraction: float = SATURATED_FRACTION,
) -> str | None:
    """Whether an image is blank or degenerate (see the module docstring for the rule and its thresholds).

    Args:
        image: pixel values ``(H, W)`` or ``(1, H, W)`` as loaded (modality LUT applied).
        bits_stored: DICOM BitsStored (8 for 8-bit PNG/JPEG); ``None``/0: only the absolute level count applies.
        rescale_slope: the RescaleSlope already applied (values are divided by it to count stored grey levels).
        min_levels: absolute minimum 1st-99th percentile spread in grey levels.
        min_fraction: minimum spread as a fraction of ``2**bits_stored``.
        saturated_fraction: fraction of pixels at the minimum or maximum from which the image counts as saturated.

    Returns:
        ``None`` for a usable image, else a sentence naming the measured values and the threshold.
    """
    sample = _sample(image)
    if sample.size == 0:
        return "the image has no pixels"
    if not np.all(np.isfinite(sample)):
        return "the image has non-finite pixel values"
    slope = abs(float(rescale_slope)) if rescale_slope and np.isfinite(rescale_slope) and rescale_slope != 0 else 1.0
    levels = sample / slope
    p1, p99 = np.percentile(levels, [1.0, 99.0])
    spread = float(p99 - p1)
    bits = int(bits_stored) if bits_stored and 1 <= int(bits_stored) <= 32 else 0
    needed = max(float(min_levels), float(min_fraction) * float(2**bits) if bits else 0.0)
    if spread < needed:
        full = f" ({min_fraction:.0%} of 2^{bits} levels)" if bits and needed > min_levels else ""
        return (
            f"blank or near-constant image: the 1st-99th percentile spans {spread:.1f} grey levels "
            f"(values {p1:.6g}..{p99:.6g}); at least {needed:.0f}{full} are needed"
        )
    lo, hi = float(levels.min()), float(levels.max())
    at_ends = float(np.mean((levels == lo) | (levels == hi)))
    if at_ends >= saturated_fraction:
        return (
            f"saturated image: {at_ends:.1%} of the pixels sit at the minimum ({lo:.6g}) or maximum ({hi:.6g}); "
            f"at most {saturated_fraction:.0%} are allowed"
        )
    return None


def _downsample(image: np.ndarray, max_side: int = 256) -> np.ndarray:
    arr = np.asarray(image, dtype=np.float64)
    while arr.ndim > 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-D image, got shape {arr.shape}")
    step = max(1, int(np.ceil(max(arr.shape) / max_side)))
    rows, cols = (arr.shape[0] // step) * step, (arr.shape[1] // step) * step
    if step > 1 and rows and cols:
        arr = arr[:rows, :cols].reshape(rows // step, step, cols // step, step).mean(axis=(1, 3))
    return arr


def bilateral_score(image: np.ndarray, monochrome1: bool = False) -> float:
    """How bilateral a knee image looks: ``1 - valley / lower peak`` of the column profile (0 when not wide enough).

    Args:
        image: ``(H, W)`` or ``(1, H, W)`` pixel values (any range).
        monochrome1: the values are MONOCHROME1 (bone dark); they are inverted first.

    Returns:
        A score in [0, 1]; :func:`is_bilateral` compares it with ``1 - BILATERAL_VALLEY_RATIO``.
    """
    arr = _downsample(image)
    h, w = arr.shape
    if h == 0 or w == 0 or w / h < BILATERAL_MIN_ASPECT:
        return 0.0
    lo, hi = np.percentile(arr, [1.0, 99.0])
    if hi <= lo:
        return 0.0
    arr = np.clip((arr - lo) / (hi - lo), 0.0, 1.0)
    if monochrome1:
        arr = 1.0 - arr
    profile = np.median(arr, axis=0)
    k = max(1, int(round(0.05 * w)))
    profile = np.convolve(np.pad(profile, k, mode="edge"), np.ones(2 * k + 1) / (2 * k + 1), mode="same")[k:-k]
    start, stop = int(0.35 * w), max(int(0.65 * w), int(0.35 * w) + 1)
    v = start + int(np.argmin(profile[start:stop]))
    edge = w // 6
    if v <= edge or v + 1 >= w - edge:
        return 0.0
    valley = float(profile[v])
    left_at = edge + int(np.argmax(profile[edge:v]))
    right_at = v + 1 + int(np.argmax(profile[v + 1 : w - edge]))
    if right_at - left_at < BILATERAL_MIN_SEPARATION * w:  # e.g. tibia and fibula of one knee
        return 0.0
    lower = min(float(profile[left_at]), float(profile[right_at]))
    if lower <= 0:
        return 0.0
    return float(np.clip(1.0 - valley / lower, 0.0, 1.0))


def is_bilateral(image: np.ndarray, monochrome1: bool = False) -> bool:
    """Whether a knee image holds both knees side by side (see the module docstring for the rule)."""
    return bilateral_score(image, monochrome1=monochrome1) >= 1.0 - BILATERAL_VALLEY_RATIO


def split_halves(image: np.ndarray) -> dict[str, np.ndarray]:
    """The left and right halves of an image (``{"left": (..., H, W//2), "right": (..., H, W - W//2)}``).

    Halves are named by image side (as displayed), not by the patient's laterality, which depends on the view.
    """
    arr = np.asarray(image)
    mid = arr.shape[-1] // 2
    return {"left": arr[..., :mid], "right": arr[..., mid:]}
