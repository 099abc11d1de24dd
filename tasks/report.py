"""Report tasks: read what the detectors judge, draw the charts, record findings and alerts,
publish the markdown to Prefect."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
from prefect import task
from prefect.artifacts import create_markdown_artifact

from engine.config_risks import config_warnings
from engine.report.base import FRAMES, AuditInputs, utc
from engine.report.compose import ChartData
from engine.report.embed import inline_images
from engine.report.png import bar_chart, line_chart
from models.orchestration import LoopFreshness, orchestration_of
from models.report import Finding, ReportConfig
from models.settings import Settings
from tasks.ledger import raise_alert
from warehouse import db
from warehouse.queries import sql

LOOP = "report"
ARTIFACT_KEY = "hiveops-daily-report"
PNL_CHART = "pnl.png"
BALANCE_CHART = "balance.png"
MARKDOWN_FILE = "report.md"


def report_dir_for(warehouse_path: Path, at: datetime) -> Path:
    """`<warehouse folder>/reports/<day>/`: next to the data it describes, one folder a day."""
    return Path(warehouse_path).resolve().parent / "reports" / f"{at:%Y-%m-%d}"


def _utc_columns(frame: pl.DataFrame) -> pl.DataFrame:
    """DuckDB hands back Etc/UTC; the detectors compare against UTC datetimes."""
    return frame.with_columns(
        pl.col(name).dt.convert_time_zone("UTC")
        for name, dtype in frame.schema.items()
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None
    )


@task(name="load-report-inputs", retries=2, retry_delay_seconds=1)
def load_report_inputs(settings: Settings, now: datetime, config: ReportConfig) -> AuditInputs:
    """Every frame whose tables exist (information_schema), plus freshness and config risks."""
    windows = {
        "recent": now - timedelta(seconds=config.recent_window_s),
        "history": now - timedelta(seconds=config.history_window_s),
    }
    with db.writer(settings.warehouse_path, who="report read") as con:
        tables = frozenset(r["table_name"] for r in db.fetch_all(con, "report_audit.tables"))
        frames: dict[str, pl.DataFrame] = {}
        for spec in FRAMES:
            if any(t not in tables for t in spec.tables):
                continue
            name = f"report_audit.{spec.name}"
            offered: dict[str, Any] = {"now": now, "since": windows.get(spec.window)}
            params = {k: v for k, v in offered.items() if f"${k}" in sql(name)}
            frames[spec.name] = _utc_columns(db.fetch_frame(con, name, **params))
        freshness = tuple(
            LoopFreshness(
                **{
                    **r,
                    "last_ok_at": utc(r["last_ok_at"]),
                    "last_started_at": utc(r["last_started_at"]),
                }
            )
            for r in db.fetch_all(con, "report_audit.freshness", now=now)
        )
        first_at = utc(db.fetch_one(con, "report_audit.first_heartbeat", now=now).get("first_at"))
    channels = frames.get("channels")
    capacities_sat = (
        [int(c) // 1000 for c in channels.filter(~pl.col("is_fleet"))["capacity_msat"]]
        if channels is not None
        else []
    )
    return AuditInputs(
        now=now.astimezone(UTC),
        tables=tables,
        frames=frames,
        freshness=freshness,
        first_heartbeat_at=first_at,
        orchestration=orchestration_of(settings),
        node_names=tuple(n.name for n in settings.nodes),
        config_warnings=tuple(config_warnings(settings, capacities_sat)),
    )


def _day(text: str) -> date:
    return date.fromisoformat(text)


def _draw_with_matplotlib(report_dir: Path, data: ChartData) -> None:
    from matplotlib.dates import DateFormatter, DayLocator
    from matplotlib.figure import Figure  # the OO API: no pyplot state, no GUI backend

    fig = Figure(figsize=(8, 4), dpi=100)
    ax = fig.subplots()
    for node, points in sorted(data.pnl_by_node.items()):
        ax.plot([_day(d) for d, _ in points], [v / 1000 for _, v in points], marker=".", label=node)
    if data.pnl_fleet:
        ax.plot(
            [_day(d) for d, _ in data.pnl_fleet],
            [v / 1000 for _, v in data.pnl_fleet],
            color="black",
            linewidth=2,
            marker=".",
            label="fleet",
        )
    days = sorted({_day(d) for points in data.pnl_by_node.values() for d, _ in points})
    if len(days) == 1:  # one point: matplotlib would spread the axis over years
        ax.set_xlim(days[0] - timedelta(days=1), days[0] + timedelta(days=1))
    span_days = (days[-1] - days[0]).days if days else 0
    ax.xaxis.set_major_locator(DayLocator(interval=max(1, span_days // 8)))  # whole days only
    ax.xaxis.set_major_formatter(DateFormatter("%m-%d"))
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_title("Cumulative net P&L (revenue - on-chain - rebalance fees)")
    ax.set_ylabel("sat")
    if data.pnl_by_node:
        ax.legend(loc="best", fontsize="small")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(report_dir / PNL_CHART)

    fig = Figure(figsize=(8, 4), dpi=100)
    ax = fig.subplots()
    labels = [str(b["bucket"]) for b in data.balance]
    external = [int(b["external"]) for b in data.balance]
    fleet = [int(b["fleet"]) for b in data.balance]
    ax.bar(labels, external, label="external")
    ax.bar(labels, fleet, bottom=external, label="fleet")
    ax.set_title("Channels by local share of capacity")
    ax.set_xlabel("local share")
    ax.set_ylabel("channels")
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    fig.savefig(report_dir / BALANCE_CHART)


def _draw_plain(report_dir: Path, data: ChartData) -> None:
    series = [[v for _, v in points] for _, points in sorted(data.pnl_by_node.items())]
    (report_dir / PNL_CHART).write_bytes(line_chart(series))
    groups = [(int(b["external"]), int(b["fleet"])) for b in data.balance]
    (report_dir / BALANCE_CHART).write_bytes(bar_chart(groups))


@task(name="render-report-charts")
def render_charts(report_dir: Path, data: ChartData) -> tuple[dict[str, str], str]:
    """(chart name -> file name, note). Without matplotlib the charts are drawn unlabelled."""
    report_dir.mkdir(parents=True, exist_ok=True)
    names = {"pnl": PNL_CHART, "balance": BALANCE_CHART}
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        _draw_plain(report_dir, data)
        return names, "matplotlib is not installed: the charts are drawn without axes or labels"
    _draw_with_matplotlib(report_dir, data)
    return names, ""


@task(name="write-report-file")
def write_report_file(report_dir: Path, markdown: str) -> Path:
    report_dir.mkdir(parents=True, exist_ok=True)
    path = report_dir / MARKDOWN_FILE
    path.write_text(markdown)
    return path


def raise_finding_alerts(
    warehouse_path: Path, findings: list[Finding], at: datetime
) -> dict[str, str]:
    """One alert row per fired detector (kind `report_<detector>`); detector -> alert id."""
    return {
        f.detector: raise_alert(
            warehouse_path,
            loop=LOOP,
            kind=f"report_{f.detector}",
            severity=str(f.severity),
            message=f.summary,
            raised_at=at,
            details={"detector": f.detector, "action": f.action, "evidence": f.evidence},
        )
        for f in findings
        if f.fired
    }


@task(name="record-report", retries=2, retry_delay_seconds=1)
def record_report(
    warehouse_path: Path,
    run_id: str,
    at: datetime,
    report_dir: Path,
    findings: list[Finding],
    alert_ids: dict[str, str],
    charts: list[str],
    markdown: str,
) -> int:
    """report_runs and report_findings rows, in one transaction; returns findings written."""
    run = pl.DataFrame(
        [
            {
                "run_id": run_id,
                "generated_at": at,
                "report_dir": str(report_dir),
                "detectors": len(findings),
                "fired": sum(f.fired for f in findings),
                "not_measurable": sum(not f.measurable for f in findings),
                "charts": json.dumps(charts),
                "artifact_key": ARTIFACT_KEY,
                "markdown": markdown,
            }
        ]
    )
    rows = pl.DataFrame(
        [
            {
                "run_id": run_id,
                "generated_at": at,
                "detector": f.detector,
                "status": f.status,
                "severity": str(f.severity),
                "summary": f.summary,
                "action": f.action,
                "evidence": json.dumps(f.evidence, default=str),
                "alert_id": alert_ids.get(f.detector),
            }
            for f in findings
        ],
        schema_overrides={"alert_id": pl.String},
    )
    with db.writer(warehouse_path, who="report record") as con:
        con.execute("BEGIN TRANSACTION")
        db.stage(con, run)
        db.run(con, "report_audit.insert_run")
        db.stage(con, rows, key=["run_id", "detector"])
        db.run(con, "report_audit.insert_findings")
        con.execute("COMMIT")
    return rows.height


@task(name="publish-report")
def publish_report(
    markdown: str, at: datetime, fired: int, report_dir: Path, charts: dict[str, str]
) -> str:
    """The markdown as the Prefect artifact `hiveops-daily-report` (one version per run), with
    its charts inlined: the UI renders it in a browser, which cannot load files beside it."""
    images = {name: (report_dir / name).read_bytes() for name in charts.values()}
    artifact_id = create_markdown_artifact(
        markdown=inline_images(markdown, images),
        key=ARTIFACT_KEY,
        description=f"hiveops self-audit {at:%Y-%m-%d}: {fired} detector(s) fired",
    )
    return str(artifact_id)
