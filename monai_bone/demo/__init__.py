"""The end-to-end demo behind ``monai-bone demo`` (:mod:`.pipeline`): synthetic cohorts → index → bundle training →
evaluation → inference, its steps (:mod:`.steps`), settings (:mod:`.settings`) and report (:mod:`.report`)."""

from __future__ import annotations

from .pipeline import DemoResult, run_demo
from .report import format_summary
from .settings import DEMO_DEFAULTS, QUICK_SETTINGS

__all__ = ["DEMO_DEFAULTS", "QUICK_SETTINGS", "DemoResult", "format_summary", "run_demo"]
