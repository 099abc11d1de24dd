"""The self-audit (issue #7): one pure detector per failure class of the 2026-02 audit, the
chart numbers and the markdown renderer. The report task reads, these judge and render."""

from engine.report.base import FRAMES, AuditInputs
from engine.report.detectors import DETECTORS, TITLES, run_detectors
from engine.report.markdown import ReportContext, render_report

__all__ = [
    "DETECTORS",
    "FRAMES",
    "TITLES",
    "AuditInputs",
    "ReportContext",
    "render_report",
    "run_detectors",
]
