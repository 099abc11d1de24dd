"""What `hiveops service status` looks at: systemd units and Prefect deployments, as plain data."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class UnitState(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    installed: bool
    enabled: bool
    active: bool | None = None  # None: no systemd to ask


class DeploymentState(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    paused: bool
    last_polled: datetime | None
    work_pool: str | None = None
