"""What every loop's flow shares: its run id, its clock, and how it reports per-node failures."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from prefect.runtime import flow_run


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
