"""Notices are transitions: a (detector, node) that starts firing, one that clears; a detector
that stays fired or cannot measure says nothing new."""

from __future__ import annotations

from engine.notices import evidence_nodes, loop_run_notice, report_notices
from models.report import Finding, Severity


def fired(detector: str, *nodes: str) -> Finding:
    return Finding(
        detector=detector,
        ok=False,
        severity=Severity.CRITICAL,
        summary=f"{detector} on {', '.join(nodes) or 'the fleet'}",
        action="do the fix",
        evidence={"failing": [{"node": n, "failed": 3} for n in nodes]},
    )


def ok(detector: str) -> Finding:
    return Finding(detector=detector, ok=True, severity=Severity.INFO, summary="fine")


def unmeasured(detector: str) -> Finding:
    return Finding(
        detector=detector, ok=False, measurable=False, severity=Severity.INFO, summary="no data"
    )


def keys(notices: list) -> list[tuple[str, str, str]]:  # type: ignore[type-arg]
    return [(n.state, n.detector, n.node) for n in notices]


def test_nodes_come_from_anywhere_in_the_evidence() -> None:
    evidence = {"nodes": ["a", {"node_name": "b"}], "x": {"deep": [{"node": "c"}]}, "n": 3}
    assert evidence_nodes(evidence) == {"a", "b", "c"}
    assert evidence_nodes({"channels": 4}) == set()


def test_report_announces_new_pairs_once_and_clears_per_node() -> None:
    first = report_notices(None, [fired("loop_stale", "n1", "n2"), fired("budget_rows")])
    assert keys(first) == [
        ("fired", "budget_rows", "fleet"),
        ("fired", "loop_stale", "n1"),
        ("fired", "loop_stale", "n2"),
    ]
    n1 = next(n for n in first if n.node == "n1")
    assert "Fix: do the fix" in n1.body
    evidence = n1.body.split("Evidence: ", 1)[1]  # only n1's part of the evidence
    assert '"node": "n1"' in evidence and "n2" not in evidence
    assert n1.resource_id == "hiveops.report.loop_stale.n1"
    previous = [fired("loop_stale", "n1", "n2"), fired("budget_rows")]
    # still fired: nothing; n2 cleared: resolved; budget_rows unmeasurable now: held
    again = report_notices(previous, [fired("loop_stale", "n1"), unmeasured("budget_rows")])
    assert keys(again) == [("resolved", "loop_stale", "n2")]
    cleared = report_notices([fired("loop_stale", "n1")], [ok("loop_stale")])
    assert keys(cleared) == [("resolved", "loop_stale", "n1")]
    assert cleared[0].event == "hiveops.finding.resolved"


def test_a_loop_run_episode_fires_once_and_resolves_once() -> None:
    kw = {"run_name": "r", "message": "boom", "ui_url": None}
    assert loop_run_notice("fees", failed=True, previous_failed=None, **kw).state == "fired"  # type: ignore[union-attr,arg-type]
    assert loop_run_notice("fees", failed=True, previous_failed=True, **kw) is None  # type: ignore[arg-type]
    back = loop_run_notice("fees", failed=False, previous_failed=True, **kw)  # type: ignore[arg-type]
    assert back is not None and back.event == "hiveops.loop.recovered"
    assert loop_run_notice("fees", failed=False, previous_failed=False, **kw) is None  # type: ignore[arg-type]


def test_watchdog_stale_loops_fire_per_node_and_clear() -> None:
    from engine.notices import watchdog_notices
    from models.orchestration import StaleLoop

    stale = StaleLoop(
        loop="collect", node="nexus-02", reason="stale", last_ok_at=None, age_s=7200,
        interval_s=600, stale_after_s=1200, severity="critical",
    )  # fmt: skip
    (fired_notice, cleared) = watchdog_notices([stale], [("fees", "*")])
    assert fired_notice.subject == "hiveops: collect is stale on nexus-02"
    assert "last succeeded 2.0 h ago" in fired_notice.body and "Fix:" in fired_notice.body
    assert fired_notice.resource_id == "hiveops.watchdog.loop_stale_collect.nexus-02"
    assert (cleared.state, cleared.node) == ("resolved", "fleet")
    assert cleared.subject == "hiveops resolved: fees runs again on the fleet"
