"""What reaches a person: one notice when a (node, detector) starts firing, one when it clears.

Findings live in the warehouse (alert rows, report findings); a notice is the transition between
two checks, so a detector that stays fired for a week is announced once, and its clearing too.
Notices travel as Prefect events; the `hiveops alerts install` automations deliver them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

FIRED_EVENT = "hiveops.finding.fired"
RESOLVED_EVENT = "hiveops.finding.resolved"
LOOP_FAILED_EVENT = "hiveops.loop.failed"
LOOP_RECOVERED_EVENT = "hiveops.loop.recovered"
LOOP_COMPLETED_EVENT = "hiveops.loop.completed"
FLEET = "fleet"  # the node of a finding that is not about one node


class Notice(BaseModel):
    """One notification's worth: which (source, detector, node) changed state, and the text."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    state: Literal["fired", "resolved"]
    source: Literal["report", "watchdog", "loop"]
    detector: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    node: str = Field(min_length=1)
    severity: str = "warning"
    subject: str = Field(min_length=1)
    body: str = Field(min_length=1)

    @property
    def event(self) -> str:
        if self.source == "loop":
            return LOOP_FAILED_EVENT if self.state == "fired" else LOOP_RECOVERED_EVENT
        return FIRED_EVENT if self.state == "fired" else RESOLVED_EVENT

    @property
    def resource_id(self) -> str:
        """Stable per (source, detector, node): Prefect groups by it, operators filter by it."""
        return f"hiveops.{self.source}.{self.detector}.{self.node}"

    def resource(self) -> dict[str, str]:
        return {
            "prefect.resource.id": self.resource_id,
            "prefect.resource.name": f"{self.detector} on {self.node}",
            "hiveops.source": self.source,
            "hiveops.detector": self.detector,
            "hiveops.node": self.node,
            "hiveops.severity": self.severity,
        }
