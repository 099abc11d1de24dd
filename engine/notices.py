"""Which findings changed state since the previous check, and the text a person reads.

Pure: the report's findings of this run and the previous one, the watchdog's new and cleared
stale loops, a loop run's outcome against its previous run. Nodes come from a finding's evidence
(`node`, `node_name`, `nodes`), so a detector that fires on two nodes notifies twice, and clears
per node.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from models.notices import FLEET, Notice
from models.orchestration import StaleLoop
from models.report import Finding, Severity

BODY_MAX = 1_500
STALE_DETECTOR = "loop_stale"


def evidence_nodes(evidence: Any) -> set[str]:
    """Node names a finding's evidence mentions, anywhere in its nesting."""
    found: set[str] = set()
    if isinstance(evidence, dict):
        for key, value in evidence.items():
            if key in {"node", "node_name"} and isinstance(value, str) and value:
                found.add(value)
            elif key == "nodes" and isinstance(value, list):
                found |= {v for v in value if isinstance(v, str) and v}
                found |= evidence_nodes([v for v in value if not isinstance(v, str)])
            else:
                found |= evidence_nodes(value)
    elif isinstance(evidence, list):
        for item in evidence:
            found |= evidence_nodes(item)
    return found


def finding_nodes(finding: Finding) -> set[str]:
    return evidence_nodes(finding.evidence) or {FLEET}


def _node_evidence(evidence: Any, node: str) -> Any:
    """The parts of the evidence about `node` (whole items of lists that mention it)."""
    if node == FLEET:
        return evidence
    if isinstance(evidence, dict):
        kept = {}
        for key, value in evidence.items():
            if isinstance(value, list):
                kept[key] = [v for v in value if _about(key, v, node)]
            elif isinstance(value, dict) and evidence_nodes(value):
                kept[key] = _node_evidence(value, node)
            else:
                kept[key] = value
        return kept
    return evidence


def _about(key: str, item: Any, node: str) -> bool:
    """Keep a list item unless it is about another node."""
    if isinstance(item, dict | list):
        mentioned = evidence_nodes(item)
        return not mentioned or node in mentioned
    return key != "nodes" or item == node


def _clip(text: str) -> str:
    return text if len(text) <= BODY_MAX else text[: BODY_MAX - 1] + "…"


def _where(node: str) -> str:
    return "the fleet" if node == FLEET else node


def report_notices(previous: list[Finding] | None, current: list[Finding]) -> list[Notice]:
    """Fired notices for (detector, node) pairs that fire now but did not in the previous report;
    resolved notices for pairs that fired then and not now (the detector measured, and no longer
    names that node). A detector that cannot measure this time clears nothing: "not measured" is
    no news either way."""
    before = {(f.detector, node): f for f in previous or [] if f.fired for node in finding_nodes(f)}
    now_fired = {(f.detector, node): f for f in current if f.fired for node in finding_nodes(f)}
    measured = {f.detector for f in current if f.measurable}
    notices: list[Notice] = []
    for (detector, node), f in sorted(now_fired.items()):
        if (detector, node) in before:
            continue
        evidence = json.dumps(_node_evidence(f.evidence, node), default=str, sort_keys=True)
        notices.append(
            Notice(
                state="fired",
                source="report",
                detector=detector,
                node=node,
                severity=str(f.severity),
                subject=f"hiveops {f.severity.priority} {detector} on {_where(node)}: {f.summary}"[
                    :200
                ],
                body=_clip(
                    f"The daily self-audit found a problem on {_where(node)} "
                    f"(detector {detector}, {f.severity}).\n"
                    f"What is wrong: {f.summary}\nFix: {f.action}\nEvidence: {evidence}"
                ),
            )
        )
    for (detector, node), f in sorted(before.items()):
        if (detector, node) in now_fired:
            continue
        if detector not in measured:
            continue
        notices.append(
            Notice(
                state="resolved",
                source="report",
                detector=detector,
                node=node,
                severity=str(Severity.INFO),
                subject=f"hiveops resolved: {detector} on {_where(node)}",
                body=(
                    f"Resolved: the daily self-audit no longer finds {detector} on {_where(node)}."
                    f"\nIt was: {f.summary}"
                ),
            )
        )
    return notices


def stale_fix(loop: str) -> str:
    return (
        f"check that the scheduler runs (`hiveops service status`, or `hiveops serve` / the "
        f"Prefect worker) and that deployment {loop} is not paused; `hiveops run {loop} "
        f"--config hiveops.toml` runs it once and shows its error"
    )


def watchdog_notices(new: Iterable[StaleLoop], cleared: Iterable[tuple[str, str]]) -> list[Notice]:
    """Fired for each newly stale (loop, node); resolved for each (loop, node) that is fresh
    again. The detector is `loop_stale_<loop>`, the node `fleet` for fleet-wide loops."""
    notices = []
    for s in new:
        node = s.node if s.node and s.node != "*" else FLEET
        notices.append(
            Notice(
                state="fired",
                source="watchdog",
                detector=f"{STALE_DETECTOR}_{s.loop}",
                node=node,
                severity=s.severity,
                subject=f"hiveops: {s.loop} is stale on {_where(node)}",
                body=_clip(
                    f"The watchdog found loop {s.loop} stale on {_where(node)}.\n"
                    f"What is wrong: {s.describe()}.\nFix: {stale_fix(s.loop)}."
                ),
            )
        )
    for loop, node_name in cleared:
        node = node_name if node_name and node_name != "*" else FLEET
        notices.append(
            Notice(
                state="resolved",
                source="watchdog",
                detector=f"{STALE_DETECTOR}_{loop}",
                node=node,
                severity="info",
                subject=f"hiveops resolved: {loop} runs again on {_where(node)}",
                body=f"Resolved: loop {loop} succeeded again on {_where(node)}; it is fresh now.",
            )
        )
    return notices


def loop_run_notice(
    loop: str,
    *,
    failed: bool,
    previous_failed: bool | None,
    run_name: str,
    message: str,
    ui_url: str | None,
) -> Notice | None:
    """A failed run after a good (or no) previous run fires; a good run after a failed one
    resolves; a failure after a failure is the same episode and says nothing new."""
    where = f" ({ui_url})" if ui_url else ""
    if failed and not previous_failed:
        return Notice(
            state="fired",
            source="loop",
            detector=f"run_failed_{loop}",
            node=FLEET,
            severity="critical",
            subject=f"hiveops: {loop} run failed",
            body=_clip(
                f"Loop {loop} failed (run {run_name}{where}).\nWhat is wrong: {message}\n"
                f"Fix: read the run's log in the Prefect UI; `hiveops run {loop} --config "
                f"hiveops.toml` reproduces it. You hear again when {loop} succeeds."
            ),
        )
    if not failed and previous_failed:
        return Notice(
            state="resolved",
            source="loop",
            detector=f"run_failed_{loop}",
            node=FLEET,
            severity="info",
            subject=f"hiveops resolved: {loop} runs again",
            body=f"Resolved: loop {loop} completed again (run {run_name}{where}).",
        )
    return None
