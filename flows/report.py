"""report: the daily self-audit, one detector per failure class of the 2026-02 audit.

Reads the warehouse, judges it with pure detectors, raises one alert row per fired detector,
draws the P&L and channel-balance charts, records every finding and publishes the markdown as
the Prefect artifact `hiveops-daily-report`. Fired detectors do not fail the run (the report did
its job; the alert rows and the artifact carry the news); a report that cannot be made does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow, task

from engine.notices import report_notices
from engine.report import AuditInputs, render_report, run_detectors
from engine.report.compose import chart_data, compose_report
from flows.common import LoopFailed, current_run_id, loop_settings, resolve_now
from flows.hooks import LOOP_HOOKS
from models.report import Finding, ReportConfig, report_config_of
from tasks.ledger import FLEET_WIDE, heartbeat_finish, heartbeat_start, raise_alert
from tasks.notices import emit_notices, read_previous_findings
from tasks.report import (
    LOOP,
    load_report_inputs,
    publish_report,
    raise_finding_alerts,
    record_report,
    render_charts,
    report_dir_for,
    write_report_file,
)


@task(name="run-detectors")
def judge(inputs: AuditInputs, config: ReportConfig) -> list[Finding]:
    return run_detectors(inputs, config)


@flow(name="report", **LOOP_HOOKS)
def report(config_path: str | None = None, now: datetime | float | None = None) -> dict[str, Any]:
    settings = loop_settings(config_path)
    at = resolve_now(now)
    run_id = current_run_id()
    wh = settings.warehouse_path
    config = report_config_of(settings)
    # Read before this run's own heartbeat, so the previous report run is what gets judged.
    loaded = load_report_inputs(settings, at, config, return_state=True)
    heartbeat_start(wh, run_id, LOOP, FLEET_WIDE, at)
    try:
        inputs: AuditInputs = loaded.result()
        findings = judge(inputs, config)
        previous = read_previous_findings(wh, at)
        alert_ids = raise_finding_alerts(wh, findings, at)
        report_dir = report_dir_for(wh, at)
        charts, note = render_charts(report_dir, chart_data(inputs))
        markdown = render_report(compose_report(inputs, findings, run_id, charts, note))
        markdown_path = write_report_file(report_dir, markdown)
        fired = [f.detector for f in findings if f.fired]
        written = record_report(
            wh, run_id, at, report_dir, findings, alert_ids, sorted(charts.values()), markdown
        )
        artifact_id = publish_report(markdown, at, len(fired), report_dir, charts)
        # Only what changed since the previous report reaches a person: new (node, detector)
        # pairs fire once, cleared ones get a resolved notice.
        notified = emit_notices(report_notices(previous, findings))
    except Exception as exc:
        message = f"report could not be made: {type(exc).__name__}: {exc}"
        raise_alert(
            wh, loop=LOOP, kind="report_failed", severity="critical", message=message, raised_at=at
        )
        heartbeat_finish(wh, run_id, LOOP, FLEET_WIDE, at, ok=False, detail=message)
        raise LoopFailed(message) from exc
    heartbeat_finish(
        wh,
        run_id,
        LOOP,
        FLEET_WIDE,
        at,
        ok=True,
        decisions=len(findings),
        rows_written=written + len(alert_ids) + 1,
        detail={"fired": fired, "report": str(markdown_path), "notices": notified},
    )
    return {
        "fired": fired,
        "not_measurable": [f.detector for f in findings if not f.measurable],
        "ok": [f.detector for f in findings if f.ok],
        "alerts": len(alert_ids),
        "report_dir": str(report_dir),
        "markdown": str(markdown_path),
        "charts": [str(report_dir / name) for name in sorted(charts.values())],
        "artifact_id": artifact_id,
        "notices": notified,
    }
