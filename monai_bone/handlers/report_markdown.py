"""``report.md``: the evaluation report a reader sees, rendered from the ``metrics.json`` document.

Every section repeats what the numbers are (split, studies/patients, whether the model was selected on the split)
and where operating-point thresholds were chosen; a synthetic report says so at the top.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

from monai_bone.constants import SYNTHETIC_NOTE
from monai_bone.utils.numbers import format_number

__all__ = ["report_markdown"]

_HEADLINE = ("mse", "mae", "rmse", "r2", "pearson_r", "bias", "accuracy", "sensitivity", "specificity", "f1", "auc")


def _f(v: Any) -> str:
    return format_number(v, ".4g")


def _evidence(block: Mapping[str, Any]) -> str:
    sel = block.get("selected_on_split")
    selected = "unknown" if sel is None else str(bool(sel)).lower()
    return (
        f"split `{block.get('split')}`, {block.get('n_studies')} studies / {block.get('n_patients')} patients, "
        f"selected_on_split: {selected}"
    )


def _headline(doc: Mapping[str, Any], out: io.StringIO) -> None:
    ci = doc.get("confidence_intervals") or {}
    rows = [k for k in _HEADLINE if k in doc and not isinstance(doc[k], Mapping)]
    out.write("| Metric | Value | 95 % CI (patient bootstrap) |\n|---|---|---|\n")
    for k in rows:
        c = ci.get(k) or {}
        interval = f"[{_f(c.get('low'))}, {_f(c.get('high'))}]" if c else "-"
        out.write(f"| {k} | {_f(doc[k])} | {interval} |\n")


def _operating_points(ops: Mapping[str, Any], out: io.StringIO) -> None:
    out.write(f"\n## Operating points\n\n{_evidence(ops)}. ")
    out.write(f"Thresholds chosen on: **{ops['thresholds_chosen_on']}**.\n\n")
    out.write("| Target | Rule | Threshold | Sensitivity | Specificity |\n|---|---|---|---|---|\n")
    for target, s in ops["targets"].items():
        for name in ("fixed", "youden", "sens90"):
            r = s.get(name) or {}
            thr = r.get("threshold_bmd", r.get("threshold"))
            out.write(
                f"| {target} | {name}: {r.get('rule', '')} | {_f(thr)} | {_f(r.get('sensitivity'))} | "
                f"{_f(r.get('specificity'))} |\n"
            )
        out.write(
            f"| {target} | sensitivity at specificity 0.80 / 0.90 | - | {_f(s.get('sens_at_spec80'))} / "
            f"{_f(s.get('sens_at_spec90'))} | - |\n"
        )


def _calibration(doc: Mapping[str, Any], out: io.StringIO) -> None:
    cal = doc.get("calibration") or {}
    out.write(f"\n## Calibration and agreement\n\n{_evidence(cal)}.\n\n")
    if "slope" in cal:
        out.write(f"- Calibration (true = intercept + slope × pred): slope {_f(cal['slope'])}, ")
        out.write(f"intercept {_f(cal['intercept'])} (perfect: 1 and 0).\n")
    ba = doc.get("bland_altman") or {}
    if "bias_low" in ba:
        out.write(
            f"- Bland–Altman: bias {_f(ba['bias'])} [{_f(ba['bias_low'])}, {_f(ba['bias_high'])}], limits of "
            f"agreement {_f(ba['loa_lower'])} [{_f(ba['loa_lower_low'])}, {_f(ba['loa_lower_high'])}] to "
            f"{_f(ba['loa_upper'])} [{_f(ba['loa_upper_low'])}, {_f(ba['loa_upper_high'])}]; proportional bias "
            f"slope {_f(ba['proportional_slope'])}, p = {_f(ba['proportional_p'])}.\n"
        )
    if "brier" in cal:
        out.write(f"- Brier score {_f(cal['brier'])}, expected calibration error {_f(cal['ece'])} ")
        out.write(f"({cal.get('n_bins')} bins).\n")


def _subgroups(rows: Sequence[Mapping[str, Any]], out: io.StringIO) -> None:
    if not rows:
        return
    fixed = {"subgroup", "value", "n_studies", "n_patients", "split", "selected_on_split"}
    metrics = [k for k in rows[0] if k not in fixed]
    out.write(f"\n## Subgroups\n\nsplit `{rows[0].get('split')}`; small subgroups give wide intervals.\n\n")
    out.write("| Subgroup | Value | Studies / patients | " + " | ".join(metrics) + " |\n")
    out.write("|---|---|---|" + "---|" * len(metrics) + "\n")
    for r in rows:
        cells = " | ".join(_f(r.get(k)) for k in metrics)
        out.write(f"| {r['subgroup']} | {r['value']} | {r['n_studies']} / {r['n_patients']} | {cells} |\n")


def report_markdown(doc: Mapping[str, Any]) -> str:
    """The Markdown report of a ``metrics.json`` document (as written by ``BoneReportWriter``)."""
    out = io.StringIO()
    tag = " — SYNTHETIC DATA" if doc.get("synthetic") else ""
    out.write(f"# {str(doc.get('task', '')).capitalize()} evaluation report{tag}\n\n")
    if doc.get("synthetic"):
        out.write(f"> **{SYNTHETIC_NOTE}.** These numbers describe the synthetic generator, not patients.\n\n")
    out.write(f"Scored: {_evidence(doc)}.\n")
    if doc.get("optimistic"):
        out.write(f"\n**{doc['optimistic']}**\n")
    out.write("\n")
    _headline(doc, out)
    if "operating_points" in doc:
        _operating_points(doc["operating_points"], out)
    if "calibration" in doc:
        _calibration(doc, out)
    _subgroups(doc.get("subgroups") or [], out)
    return out.getvalue()
