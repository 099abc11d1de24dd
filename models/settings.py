"""hiveops configuration: a TOML file plus HIVEOPS_* environment variables.

Environment variables override the file (`HIVEOPS_DRY_RUN=true`,
`HIVEOPS_REBALANCE__CHUNK_SAT=100000`). `load_settings` turns every validation failure into a
`ConfigError` that names the key, the value and what is allowed.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from models.advisor import AdvisorConfig
from models.config_lines import key_lines, line_of
from models.fleet import FleetConfig
from models.orchestration import OrchestrationConfig
from models.report import ReportConfig
from models.warehouse_paths import default_read_copy_path, resolve_config_path


class ConfigError(ValueError):
    """A configuration problem an operator can fix by editing one key."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


REST_SCHEMES = ("https", "http", "clnrest+https", "clnrest+http")
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


class NodeConfig(Section):
    """One node, reached either on its unix socket (same host) or through clnrest (any host).

    A REST node's rune comes from `rune_file`, else `$HIVEOPS_RUNE_<NAME>` (see `rune_env`),
    else the `rune=` of a `clnrest+https://` connection URI; it is held as a SecretStr so no
    repr, log line or dump shows it.
    """

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    rpc_socket: Path | None = None
    rest_url: str | None = None
    rune_file: Path | None = None
    rune: SecretStr | None = None
    ca_cert: Path | None = None
    fleet_member: bool = True
    node_id: str | None = Field(default=None, pattern=r"^0[23][0-9a-f]{64}$")

    @model_validator(mode="before")
    @classmethod
    def _connection_uri(cls, data: Any) -> Any:
        """CLN's connection URI `clnrest+https://host:port?rune=...` is accepted as rest_url;
        its rune moves to the secret field so rest_url itself is safe to print."""
        if not isinstance(data, dict) or not isinstance(data.get("rest_url"), str):
            return data
        parts = urlsplit(data["rest_url"])
        query = parse_qs(parts.query)
        if "certs" in query:
            raise ValueError(
                "rest_url: the certs= part of a connection URI is not read; save the node's "
                "ca.pem and set ca_cert to its path"
            )
        data = dict(data)
        if "rune" in query:
            if data.get("rune") or data.get("rune_file"):
                raise ValueError("rest_url carries a rune= and rune/rune_file is set too: keep one")
            data["rune"] = query["rune"][0]
        scheme = parts.scheme.removeprefix("clnrest+")
        data["rest_url"] = f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}"
        return data

    @field_validator("rest_url")
    @classmethod
    def _rest_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError(
                f"rest_url {url!r} must look like https://HOST:PORT (clnrest's clnrest-host and "
                "clnrest-port) or clnrest+https://HOST:PORT"
            )
        if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
            raise ValueError(
                f"rest_url {url!r}: plain http would send the rune in clear over the network; "
                "use https (clnrest-protocol=https, the default)"
            )
        try:
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError as exc:
            raise ValueError(f"rest_url {url!r}: {exc}") from exc
        return url

    @model_validator(mode="after")
    def _one_transport(self) -> NodeConfig:
        if (self.rpc_socket is None) == (self.rest_url is None):
            raise ValueError(
                f"node {self.name}: set exactly one of rpc_socket (lightningd on this host) or "
                "rest_url (clnrest on any host)"
            )
        if self.rpc_socket is not None and (self.rune or self.rune_file or self.ca_cert):
            raise ValueError(
                f"node {self.name}: rune, rune_file and ca_cert are for rest_url nodes; a unix "
                "socket needs none"
            )
        return self

    @property
    def transport(self) -> str:
        return "rest" if self.rest_url is not None else "socket"

    @property
    def rune_env(self) -> str:
        """The environment variable that may hold this node's rune."""
        return "HIVEOPS_RUNE_" + re.sub(r"[^A-Za-z0-9]", "_", self.name).upper()

    def rune_source(self) -> str:
        if self.rune_file is not None:
            return f"rune_file {self.rune_file}"
        if os.environ.get(self.rune_env):
            return f"${self.rune_env}"
        if self.rune is not None:
            return "rune"
        return "none"

    def load_rune(self) -> SecretStr:
        """The rune, read now (a rotated rune_file is picked up by the next loop run)."""
        if self.rune_file is not None:
            try:
                text = self.rune_file.read_text().strip()
            except OSError as exc:
                raise ConfigError(
                    f"nodes[{self.name}].rune_file {self.rune_file}: cannot read it "
                    f"({exc.strerror}); write the rune from `hiveops rune` there (mode 0600)"
                ) from exc
            if not text:
                raise ConfigError(f"nodes[{self.name}].rune_file {self.rune_file} is empty")
            return SecretStr(text)
        env = os.environ.get(self.rune_env)
        if env:
            return SecretStr(env.strip())
        if self.rune is not None:
            return self.rune
        raise ConfigError(
            f"nodes[{self.name}] is reached over REST but has no rune: set rune_file, or "
            f"${self.rune_env}; `hiveops rune --mode act` prints the command that makes one"
        )


class RpcConfig(Section):
    timeout_s: float = Field(default=30.0, gt=0, le=600)
    retries: int = Field(default=3, ge=0, le=10)
    backoff_base_s: float = Field(default=0.5, gt=0, le=60)
    backoff_max_s: float = Field(default=8.0, gt=0, le=600)
    page_size: int = Field(default=10_000, ge=100, le=100_000)


class FeeConfig(Section):
    min_fee_ppm: int = Field(default=0, ge=0, le=50_000)
    max_fee_ppm: int = Field(default=2_500, ge=1, le=50_000)
    base_fee_msat: int = Field(default=0, ge=0, le=100_000)
    fleet_fee_ppm: int = Field(default=0, ge=0, le=50_000)
    max_step_pct: float = Field(default=25.0, gt=0, le=100)
    min_change_ppm: int = Field(default=5, ge=0, le=50_000)
    min_interval_s: int = Field(default=24 * 3600, ge=0, le=90 * 86_400)

    @model_validator(mode="after")
    def _floor_below_ceiling(self) -> FeeConfig:
        if self.min_fee_ppm > self.max_fee_ppm:
            raise ValueError(
                f"min_fee_ppm={self.min_fee_ppm} is above max_fee_ppm={self.max_fee_ppm}"
            )
        return self


class RebalanceConfig(Section):
    chunk_sat: int = Field(default=100_000, gt=0, le=100_000_000)
    max_fee_ppm: int = Field(default=500, ge=0, le=10_000)
    allow_large_chunks: bool = False
    max_attempts_per_run: int = Field(default=4, ge=0, le=100)
    # false reproduces the audited setup (pay up to max_fee_ppm whatever the channel earns);
    # `hiveops config check` warns about it. Budget, breaker and dry-run still apply.
    ev_gate: bool = True


class HtlcmaxConfig(Section):
    """max-HTLC as a liquidity lever (engine.htlcmax): a channel advertises what it can send.

    Off by default: measured with decisions every 12 h (bench/htlcmax.py) it cost 4.5 % of
    routing revenue on `busy` (balances move within hours there, so a rung posted at one run is
    stale long before the next), while on the family's random-1-1 it cut local failures 0.21x
    and added 6 % revenue, and was neutral on three thin markets."""

    enabled: bool = False
    # rungs are capacity × 2^(-k/2): a rung is posted until the spendable balance crosses the
    # next one (the ladder is the hysteresis), and at least `floor_share` of capacity
    floor_share: float = Field(default=1 / 64, gt=0, le=1)
    # at or above this share of capacity spendable, the channel advertises its capacity
    free_share: float = Field(default=0.5, gt=0, le=1)
    min_interval_s: int = Field(default=4 * 3600, ge=0)

    @model_validator(mode="after")
    def _floor_below_free(self) -> HtlcmaxConfig:
        if self.floor_share >= self.free_share:
            raise ValueError(
                f"floor_share={self.floor_share} must be below free_share={self.free_share} "
                f"(the smallest max-HTLC posted, and the spendable share at which the "
                f"capacity is posted)"
            )
        return self


class BudgetConfig(Section):
    daily_budget_sat: int = Field(default=2_000, ge=0, le=100_000_000)  # at most 1 BTC a day
    share_of_earnings: float = Field(default=0.5, ge=0, le=1.0)
    earnings_window_days: int = Field(default=7, ge=1, le=90)


class WarehouseConfig(Section):
    lock_timeout_s: float = Field(default=60.0, gt=0, le=3600)
    # Ad-hoc readers (hiveops sql, notebooks, BI tools) open this copy, never the live file;
    # default beside the warehouse: hiveops.duckdb -> hiveops.read.duckdb (docs/WAREHOUSE.md).
    read_copy_path: Path | None = None
    # A loop run publishes the copy as its last step unless the copy is younger than
    # publish_every_s, or the last publish took more than a tenth of this run and the copy is
    # younger than publish_max_age_s (a big warehouse: publish less often, staleness bounded).
    publish_every_s: float = Field(default=0.0, ge=0, le=86_400)
    publish_max_age_s: float = Field(default=1_800.0, ge=0, le=86_400)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HIVEOPS_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    warehouse_path: Path = Path("hiveops.duckdb")
    dry_run: bool = False
    nodes: list[NodeConfig] = Field(default_factory=list)
    rpc: RpcConfig = RpcConfig()
    fees: FeeConfig = FeeConfig()
    rebalance: RebalanceConfig = RebalanceConfig()
    htlcmax: HtlcmaxConfig = HtlcmaxConfig()
    budget: BudgetConfig = BudgetConfig()
    fleet: FleetConfig = FleetConfig()
    advisor: AdvisorConfig = AdvisorConfig()
    report: ReportConfig = ReportConfig()
    orchestration: OrchestrationConfig = OrchestrationConfig()
    warehouse: WarehouseConfig = WarehouseConfig()
    # Written by the simulator; ignored by every loop, used only by the demo.
    sim: dict[str, Any] = Field(default_factory=dict)
    config_path: Path | None = None

    @field_validator("nodes")
    @classmethod
    def _unique_names(cls, nodes: list[NodeConfig]) -> list[NodeConfig]:
        seen: set[str] = set()
        for node in nodes:
            if node.name in seen:
                raise ValueError(f"node name {node.name!r} appears twice")
            seen.add(node.name)
        return nodes

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment beats the file (passed as init kwargs by load_settings).
        return env_settings, init_settings

    @property
    def read_copy_path(self) -> Path:
        return self.warehouse.read_copy_path or default_read_copy_path(self.warehouse_path)

    def node(self, name: str) -> NodeConfig:
        for node in self.nodes:
            if node.name == name:
                return node
        known = ", ".join(n.name for n in self.nodes) or "none"
        raise ConfigError(f"no node named {name!r} in the config (configured: {known})")


def load_settings(path: str | Path | None = None, *, require_file: bool = True) -> Settings:
    """Read and validate the config; relative paths in it resolve against its folder."""
    config_path = resolve_config_path(path)
    data: dict[str, Any] = {}
    text = ""
    if config_path.exists():
        text = config_path.read_text()
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{config_path}: not valid TOML: {exc}") from exc
    elif require_file:
        raise ConfigError(
            f"config file {config_path} not found; pass --config PATH, set HIVEOPS_CONFIG, "
            f"or write one with `hiveops sim start --write-config {config_path}`"
        )
    try:
        settings = Settings(**data, config_path=config_path.resolve())
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, config_path, text)) from exc
    return _resolve_relative(settings, config_path.resolve().parent)


def _resolve_relative(settings: Settings, base: Path) -> Settings:
    def absolute(p: Path) -> Path:
        return p if p.is_absolute() else base / p

    def maybe(p: Path | None) -> Path | None:
        return None if p is None else absolute(p)

    nodes = [
        n.model_copy(
            update={
                "rpc_socket": maybe(n.rpc_socket),
                "rune_file": maybe(n.rune_file),
                "ca_cert": maybe(n.ca_cert),
            }
        )
        for n in settings.nodes
    ]
    copy = settings.warehouse.read_copy_path
    warehouse = settings.warehouse.model_copy(
        update={"read_copy_path": absolute(copy) if copy else None}
    )
    resolved = settings.model_copy(
        update={
            "warehouse_path": absolute(settings.warehouse_path),
            "nodes": nodes,
            "warehouse": warehouse,
        }
    )
    _loaded_warehouses[resolved.warehouse_path.resolve()] = resolved.warehouse
    return resolved


# Every loop loads its settings before it writes; the warehouse layer publishes the read copy for
# any loop without each flow handing it the config (warehouse.readcopy.config_for).
_loaded_warehouses: dict[Path, WarehouseConfig] = {}


def loaded_warehouse_config(warehouse_path: Path) -> WarehouseConfig | None:
    """The [warehouse] section this process last loaded for that file, if any."""
    return _loaded_warehouses.get(Path(warehouse_path).resolve())


def format_validation_error(exc: ValidationError, source: Path, text: str = "") -> str:
    """One line per problem, each starting with `file:line:` when the key is in the file."""
    lines = [f"invalid configuration in {source} (or HIVEOPS_* environment):"]
    positions = key_lines(text)
    for err in exc.errors():
        loc = tuple(part for part in err["loc"] if part != "function-after")
        key = ".".join(str(part) for part in loc)
        value = err.get("input")
        line = line_of(positions, loc)
        where = f"{source}:{line}: " if line else ""
        if (
            "rune" in key
            or (isinstance(value, dict) and "rune" in value)
            or (isinstance(value, str) and "rune=" in value)
        ):
            value = "(hidden: holds a rune)"
        if err["type"] == "extra_forbidden":
            lines.append(
                f"  {where}{key}: unknown key (typo?); remove it or check the README's keys"
            )
        elif err["type"] == "missing":
            lines.append(f"  {where}{key}: required but missing")
        else:
            lines.append(f"  {where}{key} = {value!r}: {err['msg']}")
    return "\n".join(lines)
