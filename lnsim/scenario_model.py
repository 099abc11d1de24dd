"""Scenario files: the simulated network's size, demand, balances and dynamics.

A scenario is a builtin name (`audit`, `busy`, files in lnsim/scenario_files/), a draw of the
scenario family (`random-<seed>-<i>`, lnsim/scenario_family.py) or a path to a TOML or
JSON file with the same keys. Unknown keys are errors, so a typo cannot silently fall back to a
default and change what a benchmark measures.
"""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

BUILTIN_DIR = Path(__file__).parent / "scenario_files"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NetworkSpec(Strict):
    external_nodes: int = Field(default=80, ge=10, le=2000)
    hub_rank: int = Field(
        default=40, ge=0, description="BFS starts at the n-th best-connected node"
    )


class DemandSpec(Strict):
    payments_per_hour: float = Field(gt=0)
    amount_median_sat: int = Field(default=40_000, gt=0)
    amount_sigma: float = Field(default=1.2, ge=0)
    amount_min_sat: int = Field(default=1_000, gt=0)
    amount_max_sat: int = Field(default=2_000_000, gt=0)
    max_attempts: int = Field(default=4, ge=1, le=20)
    risk_ppm: int = Field(default=600, ge=0, description="cost of -log(success) per amount")
    hop_ppm: int = Field(default=10, ge=0, description="per-hop penalty favouring short routes")


class CompetitorSpec(Strict):
    walk_every_s: int = Field(default=6 * 3600, gt=0)
    walk_fraction: float = Field(default=0.05, ge=0, le=1)
    walk_step: float = Field(default=0.2, ge=0, lt=1)
    # Competitors that watch the fleet (off by default): at each walk, this share of the other
    # channels toward a fleet member's external peer posts `undercut_pct` below the fleet's fee
    # there, never above its own fee from before it reacted, never below `undercut_floor_ppm`.
    undercut_share: float = Field(default=0.0, ge=0, le=1)
    undercut_pct: float = Field(default=10.0, ge=0, lt=100)
    undercut_floor_ppm: int = Field(default=1, ge=0)


class PeerSpec(Strict):
    outages_per_day: float = Field(default=0.02, ge=0)
    outage_mean_s: int = Field(default=4 * 3600, gt=0)


class SlingSpec(Strict):
    attempt_every_s: int = Field(default=600, gt=0)


class ChannelSpec(Strict):
    peer: str = Field(description="'rank:N' (external node by degree rank) or 'fleet:<member>'")
    capacity_sat: int = Field(gt=20_000)
    local_share: float = Field(ge=0, le=1)
    fee_ppm: int = Field(default=100, ge=0)
    base_msat: int = Field(default=0, ge=0)


class MemberSpec(Strict):
    name: str
    alias: str | None = None
    onchain_sat: int = Field(default=2_000_000, ge=0)
    channels: list[ChannelSpec] = Field(default_factory=list)


class Scenario(Strict):
    name: str
    description: str = ""
    seed: int = 1
    start: datetime = datetime(2026, 1, 20, tzinfo=UTC)
    network: NetworkSpec = NetworkSpec()
    demand: DemandSpec
    competitors: CompetitorSpec = CompetitorSpec()
    peers: PeerSpec = PeerSpec()
    sling: SlingSpec = SlingSpec()
    feerate_perkw: int = Field(default=2_500, gt=0)
    members: list[MemberSpec]

    @property
    def start_s(self) -> int:
        start = self.start if self.start.tzinfo else self.start.replace(tzinfo=UTC)
        return int(start.timestamp())


class ScenarioError(ValueError):
    pass


def load_scenario(name_or_path: str | Path) -> Scenario:
    """A builtin name, a `random-<seed>-<i>` draw of lnsim.scenario_family, or a file."""
    from lnsim.scenario_family import scenario_by_name  # the family builds on this module

    drawn = scenario_by_name(str(name_or_path))
    if drawn is not None:
        return drawn
    path = Path(name_or_path)
    if not path.suffix:
        path = BUILTIN_DIR / f"{name_or_path}.toml"
    if not path.exists():
        builtin = ", ".join(sorted(p.stem for p in BUILTIN_DIR.glob("*.toml")))
        raise ScenarioError(
            f"scenario {name_or_path!r} not found "
            f"(builtin: {builtin}, random-<seed>-<i>, or a file)"
        )
    try:
        data = (
            json.loads(path.read_text())
            if path.suffix == ".json"
            else tomllib.loads(path.read_text())
        )
        return Scenario.model_validate(data)
    except (ValidationError, tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ScenarioError(f"scenario file {path}: {exc}") from exc
