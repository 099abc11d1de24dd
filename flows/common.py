"""What every loop's flow shares: its run id, its clock, and how it reports per-node failures."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prefect.runtime import flow_run

from models.settings import ConfigError, NodeConfig, Settings, load_settings
from tasks.collect import IndexReset, SnapshotRejected
from tasks.fees import InvalidPolicy, NoFreshSnapshot, known_node_ids
from tasks.gateway import NodeError
from tasks.ledger import heartbeat_finish, raise_alert
from warehouse import db


def current_run_id() -> str:
    run_id = flow_run.get_id()
    return str(run_id) if run_id else f"local-{uuid.uuid4().hex[:12]}"


def resolve_now(now: datetime | float | None) -> datetime:
    """Wall time in production; the simulator's clock when the demo or a test passes one."""
    if now is None:
        return datetime.now(UTC)
    if isinstance(now, int | float):
        return datetime.fromtimestamp(now, tz=UTC)
    return now if now.tzinfo else now.replace(tzinfo=UTC)


class LoopFailed(RuntimeError):
    """Raised at the end of a flow whose work failed for some nodes, after the rest was done."""


class FindingsFired(LoopFailed):
    """A check (the watchdog) that worked and found problems: its run fails so the Prefect UI
    shows red, but the problems are announced one by one, not as a broken loop."""


class _NoTracebackForOperatorErrors(logging.Filter):
    """Prefect logs a flow's exception with its traceback; for errors whose message already
    names the thing and the fix (a failed loop, the warehouse, the config) the traceback is
    noise that buries the message, so the record keeps the message only."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, OPERATOR_ERRORS):
            record.exc_info, record.exc_text = None, None
        return True


OPERATOR_ERRORS = (
    LoopFailed,
    db.WarehouseError,
    ConfigError,
    NodeError,
    SnapshotRejected,
    IndexReset,
    InvalidPolicy,
    NoFreshSnapshot,
)
for _name in ("prefect.flow_runs", "prefect.task_runs"):
    logging.getLogger(_name).addFilter(_NoTracebackForOperatorErrors())


@dataclass
class LoopRun:
    """One flow run of a per-node loop: its settings, clock, id and what each node did."""

    loop: str
    settings: Settings
    at: datetime
    run_id: str
    node_ids: dict[str, str]
    summary: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def node_id(self, node: NodeConfig) -> str | None:
        return node.node_id or self.node_ids.get(node.name)

    def never_collected(self, node: NodeConfig) -> str:
        return f"node {node.name} has never been collected; run collect first"

    def finish_node(
        self,
        node: NodeConfig,
        error: str | None,
        *,
        decisions: int,
        rows_written: int,
        detail: dict[str, Any],
    ) -> None:
        """Every node's cycle ends the same way: an alert row if it failed, then its heartbeat
        with what it decided (the self-audit's proof that the loop ran and did something)."""
        wh = self.settings.warehouse_path
        if error:
            self.failures.append(error)
            raise_alert(
                wh,
                loop=self.loop,
                kind=f"{self.loop}_failed",
                severity="warning",
                message=error,
                raised_at=self.at,
                node=node.name,
            )
        heartbeat_finish(
            wh,
            self.run_id,
            self.loop,
            node.name,
            self.at,
            ok=error is None,
            decisions=decisions,
            rows_written=rows_written,
            detail={**detail, "error": error},
        )
        self.summary[node.name] = {**detail, "error": error}

    def end(self) -> dict[str, Any]:
        """The summary, or LoopFailed naming every node that failed (after all were done)."""
        if self.failures:
            raise LoopFailed(" | ".join(self.failures))
        return self.summary


def loop_settings(config_path: str | None) -> Settings:
    """The config, with its warehouse.lock_timeout_s bounding every warehouse wait of the run."""
    settings = load_settings(config_path)
    db.set_lock_timeout(settings.warehouse.lock_timeout_s)
    return settings


def start_loop(loop: str, config_path: str | None, now: datetime | float | None) -> LoopRun:
    settings = loop_settings(config_path)
    return LoopRun(
        loop=loop,
        settings=settings,
        at=resolve_now(now),
        run_id=current_run_id(),
        node_ids=known_node_ids(settings.warehouse_path),
    )
