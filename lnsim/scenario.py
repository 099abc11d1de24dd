"""Scenarios: the simulated network's size, fleet, balances, demand and dynamics, as data.

A scenario is a builtin name (`audit`, `busy`: files in lnsim/scenarios/) or a path to a TOML or
JSON file with the same keys. Unknown keys are errors, so a typo cannot silently fall back to a
default and change what a benchmark measures.
"""

from __future__ import annotations

import json
import re
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

BUILTIN_DIR = Path(__file__).parent / "scenarios"
PEER_RULE = re.compile(r"^(rank|capacity):\d+$|^fleet:.+$")
SCID = re.compile(r"^\d+x\d+x\d+$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NetworkSpec(Strict):
    external_nodes: int = Field(default=80, ge=10, le=2000)
    hub_rank: int = Field(default=40, ge=0, description="BFS starts at the n-th best-connected")
    fanout: int = Field(default=6, ge=1, description="neighbours followed per node in the BFS")
    max_channels_per_node: int = Field(default=8, ge=1, description="sparsify: keep the n largest")


class DemandSpec(Strict):
    payments_per_hour: float = Field(gt=0)
    amount_median_sat: int = Field(default=40_000, gt=0)
    amount_sigma: float = Field(default=1.2, ge=0, description="log-normal sigma")
    amount_min_sat: int = Field(default=1_000, gt=0)
    amount_max_sat: int = Field(default=2_000_000, gt=0)
    max_attempts: int = Field(default=4, ge=1, le=20, description="routes a payer tries")
    risk_factor_ppm: int = Field(
        default=600, ge=0, description="price of -log P(success), in ppm of the amount"
    )
    hop_cost_ppm: int = Field(default=10, ge=0, description="per-hop penalty (delay, cltv)")
    source_weighting: Literal["uniform", "capacity"] = "uniform"


class CompetitorSpec(Strict):
    walk_every_s: int = Field(default=6 * 3600, gt=0)
    walk_fraction: float = Field(default=0.05, ge=0, le=1, description="policies moved per walk")
    walk_step: float = Field(default=0.2, ge=0, lt=1, description="max relative ppm step")


class PeerSpec(Strict):
    offline_probability: float = Field(default=0.02, ge=0, lt=1)
    outage_mean_h: float = Field(default=4.0, gt=0)
    gossip_delay_s: int = Field(
        default=600, ge=0, description="how long payers keep routing to a node that went down"
    )


class OnchainSpec(Strict):
    feerate_perkw: int = Field(default=2_500, ge=253)
    open_weight: int = Field(default=700 * 4, gt=0, description="funding tx weight units")
    close_weight: int = Field(default=500 * 4, gt=0)
    lockin_blocks: int = Field(default=6, ge=1)


class SlingSpec(Strict):
    attempt_every_s: int = Field(default=60, gt=0, description="per job while Rebalancing")
    idle_retry_s: int = Field(default=600, gt=0, description="after Balanced/NoRoutes/...")
    peer_retry_s: int = Field(default=60, gt=0, description="after Disconnected/PeerNotReady")
    ban_s: int = Field(default=3600, ge=0, description="a failing channel is avoided this long")


class ChannelSpec(Strict):
    peer: str = Field(description="'rank:N' (by degree), 'capacity:N' or 'fleet:<member>'")
    capacity_sat: int = Field(gt=20_000)
    local_share: float = Field(ge=0, le=1)
    fee_base_msat: int = Field(default=0, ge=0)
    fee_ppm: int = Field(default=100, ge=0)
    scid: str | None = Field(default=None, description="fixed short_channel_id, else derived")

    @field_validator("peer")
    @classmethod
    def _peer_rule(cls, value: str) -> str:
        if not PEER_RULE.match(value):
            raise ValueError(f"peer={value!r}: use 'rank:N', 'capacity:N' or 'fleet:<member>'")
        return value

    @field_validator("scid")
    @classmethod
    def _scid_form(cls, value: str | None) -> str | None:
        if value is not None and not SCID.match(value):
            raise ValueError(f"scid={value!r}: use BLOCKxTXxOUT, e.g. 933128x1345x0")
        return value


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
    start_blockheight: int = Field(default=934_000, gt=0, lt=2**24)
    network: NetworkSpec = NetworkSpec()
    demand: DemandSpec
    competitors: CompetitorSpec = CompetitorSpec()
    peers: PeerSpec = PeerSpec()
    onchain: OnchainSpec = OnchainSpec()
    sling: SlingSpec = SlingSpec()
    members: list[MemberSpec] = Field(min_length=1)

    @field_validator("members")
    @classmethod
    def _fleet_refs(cls, members: list[MemberSpec]) -> list[MemberSpec]:
        names = [m.name for m in members]
        if len(set(names)) != len(names):
            raise ValueError(f"member names must be unique: {names}")
        for member in members:
            for channel in member.channels:
                kind, _, ref = channel.peer.partition(":")
                if kind == "fleet" and (ref not in names or ref == member.name):
                    raise ValueError(
                        f"{member.name}: peer={channel.peer!r} names no other member ({names})"
                    )
        return members

    @property
    def start_s(self) -> int:
        start = self.start if self.start.tzinfo else self.start.replace(tzinfo=UTC)
        return int(start.timestamp())


class ScenarioError(ValueError):
    pass


def builtin_scenarios() -> list[str]:
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.toml"))


def load_scenario(name_or_path: str | Path) -> Scenario:
    """A builtin scenario by name, or a TOML/JSON file; errors name the file and the key."""
    path = Path(name_or_path)
    if not path.suffix and not path.exists():
        path = BUILTIN_DIR / f"{name_or_path}.toml"
    if not path.exists():
        raise ScenarioError(
            f"scenario {str(name_or_path)!r} not found: use a builtin "
            f"({', '.join(builtin_scenarios())}) or a path to a .toml/.json file"
        )
    try:
        text = path.read_text()
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
        return Scenario.model_validate(data)
    except (ValidationError, tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ScenarioError(f"scenario file {path}: {exc}") from exc
