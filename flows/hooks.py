"""Flow-run hooks every loop carries: its failure and recovery reach a person at once.

Prefect's own state events of a run the scheduler created less than 5 minutes before it started
are held up to 15 minutes by the automation service's causal ordering (the run's Scheduled state
never had an event, and its Pending event `follows` that missing one): the first runs after
`hiveops serve` starts would alert late. These hooks send their own events, which follow nothing,
so an automation delivers them within seconds. Runs outside a deployment (`hiveops run`, the
demo, tests calling flows) say nothing: nobody scheduled them, nobody waits for them.
"""

from __future__ import annotations

import logging
from typing import Any

from engine.notices import loop_run_notice
from tasks.notices import (
    FINDINGS_MARK,
    emit_loop_completed,
    emit_notices,
    previous_run_failed,
    run_url,
)

log = logging.getLogger("hiveops.hooks")
PREFIX = "Flow run encountered an exception: "


def _announce(loop: str, flow_run: Any, *, failed: bool, message: str) -> None:
    notice = loop_run_notice(
        loop,
        failed=failed,
        previous_failed=previous_run_failed(flow_run),
        run_name=flow_run.name,
        message=message.removeprefix(PREFIX) or "(no message)",
        ui_url=run_url(flow_run),
    )
    if notice is not None:
        related = [
            {
                "prefect.resource.id": f"prefect.flow-run.{flow_run.id}",
                "prefect.resource.role": "flow-run",
                "prefect.resource.name": flow_run.name,
            },
            {
                "prefect.resource.id": f"prefect.deployment.{flow_run.deployment_id}",
                "prefect.resource.role": "deployment",
            },
        ]
        emit_notices([notice], related)


def on_loop_failure(flow: Any, flow_run: Any, state: Any) -> None:
    if flow_run.deployment_id is None:
        return
    try:
        if FINDINGS_MARK in (state.message or ""):
            # The check ran and found problems; its findings are announced one by one.
            emit_loop_completed(flow.name, flow_run)
            return
        _announce(flow.name, flow_run, failed=True, message=state.message or "")
    except Exception:  # a hook must never hide the run's own outcome
        log.exception("hiveops: failure notice for %s not sent", flow.name)


def on_loop_completion(flow: Any, flow_run: Any, state: Any) -> None:
    if flow_run.deployment_id is None:
        return
    try:
        emit_loop_completed(flow.name, flow_run)
        _announce(flow.name, flow_run, failed=False, message="")
    except Exception:
        log.exception("hiveops: completion notice for %s not sent", flow.name)


LOOP_HOOKS: dict[str, Any] = {
    "on_failure": [on_loop_failure],
    "on_completion": [on_loop_completion],
}
