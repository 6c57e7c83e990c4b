"""The end-to-end demo behind ``monai-bone demo`` (:mod:`.pipeline`): synthetic cohorts → index → bundle training →
evaluation → inference, and its report."""

from __future__ import annotations

from .pipeline import DEMO_DEFAULTS, QUICK_SETTINGS, DemoResult, format_summary, run_demo

__all__ = ["DEMO_DEFAULTS", "QUICK_SETTINGS", "DemoResult", "format_summary", "run_demo"]
