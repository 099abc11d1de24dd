"""Notices out as Prefect events; the previous report's findings in from the warehouse.

Events are POSTed to the API's `/events` endpoint and confirmed, not queued in Prefect's
background events worker: a short-lived flow-run process could exit before that worker flushes,
and a notice lost that way would never be announced (the transition is only seen once).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from models.notices import Notice
from models.report import Finding
from warehouse import db

log = logging.getLogger("hiveops.notices")


def notice_event(notice: Notice, related: list[dict[str, str]] | None = None) -> Any:
    from prefect.events import Event, RelatedResource, Resource

    return Event(
        event=notice.event,
        resource=Resource(notice.resource()),
        related=[RelatedResource(r) for r in related or []],
        payload={"subject": notice.subject, "body": notice.body, "state": notice.state},
    )


def emit_notices(notices: list[Notice], related: list[dict[str, str]] | None = None) -> int:
    """Send each notice as an event; returns how many the API accepted. Without a configured
    Prefect server, or when it refuses, the notices are logged, not raised: the warehouse rows
    already hold the findings and the check must not fail because of delivery."""
    if not notices:
        return 0
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        # The ephemeral API (no server configured: `hiveops run`, the demo) has no automations
        # to deliver them, and starting one per notice costs seconds.
        for n in notices:
            log.info("hiveops notice (no Prefect server configured, not sent): %s", n.subject)
        return 0

    events = [notice_event(n, related).model_dump(mode="json") for n in notices]
    try:
        with get_client(sync_client=True) as client:
            response = client.request("POST", "/events", json=events)  # type: ignore[arg-type]
            response.raise_for_status()
    except Exception as exc:
        log.warning("hiveops: %d notice(s) not sent as Prefect events: %s", len(notices), exc)
        for n in notices:
            log.warning("hiveops notice (undelivered): %s", n.subject)
        return 0
    return len(events)


def read_previous_findings(warehouse_path: Path, before: datetime) -> list[Finding] | None:
    """The findings of the last report run before `before`, or None when there was none."""
    with db.writer(warehouse_path, who="report previous findings") as con:
        rows = db.fetch_all(con, "notices.previous_findings", before=before)
    if not rows:
        return None
    return [
        Finding(
            detector=r["detector"],
            ok=r["status"] == "ok",
            measurable=r["status"] != "not_measurable",
            severity=r["severity"],
            summary=r["summary"],
            action=r["action"],
            evidence=json.loads(r["evidence"]) if isinstance(r["evidence"], str) else r["evidence"],
        )
        for r in rows
    ]


FINDINGS_MARK = "FindingsFired"  # the exception class a check raises when it found problems


def _run_failed(state: Any) -> bool:
    """Failed or crashed because the loop broke; a check failing on its findings did its work."""
    if state is None or state.type.value not in {"FAILED", "CRASHED"}:
        return False
    return FINDINGS_MARK not in (state.message or "")


def previous_run_failed(flow_run: Any) -> bool | None:
    """Whether the deployment's last finished run before `flow_run` failed (None: no such run)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterId,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    finished = [StateType.COMPLETED, StateType.FAILED, StateType.CRASHED]
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(not_any_=[flow_run.id]),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=finished)),
            ),
            deployment_filter=DeploymentFilter(
                id=DeploymentFilterId(any_=[flow_run.deployment_id])
            ),
            sort=FlowRunSort.END_TIME_DESC,
            limit=1,
        )
    return _run_failed(runs[0].state) if runs else None


def run_url(flow_run: Any) -> str | None:
    from prefect.settings import PREFECT_UI_URL

    ui = PREFECT_UI_URL.value()
    return f"{ui.rstrip('/')}/runs/flow-run/{flow_run.id}" if ui else None


def emit_loop_completed(loop: str, flow_run: Any) -> None:
    """The heartbeat the staleness automation waits for (a Prefect-own Completed event of a run
    the scheduler created moments earlier can be held for 15 minutes; this one is not)."""
    from prefect.client.orchestration import get_client
    from prefect.events import Event, RelatedResource, Resource

    from models.notices import LOOP_COMPLETED_EVENT

    event = Event(
        event=LOOP_COMPLETED_EVENT,
        resource=Resource({"prefect.resource.id": f"hiveops.loop.{loop}", "hiveops.loop": loop}),
        related=[
            RelatedResource(
                {
                    "prefect.resource.id": f"prefect.flow-run.{flow_run.id}",
                    "prefect.resource.role": "flow-run",
                    "prefect.resource.name": flow_run.name,
                }
            )
        ],
    )
    try:
        with get_client(sync_client=True) as client:
            client.request(  # type: ignore[call-arg]
                "POST", "/events", json=[event.model_dump(mode="json")]
            ).raise_for_status()
    except Exception as exc:
        log.warning("hiveops: %s completion event not sent: %s", loop, exc)
