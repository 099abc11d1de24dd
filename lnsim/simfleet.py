"""SimFleet: the simulated fleet as tests, the demo and benchmarks use it.

Builds the network and market for a scenario, serves one lightningd-compatible socket per fleet
member plus a control socket (`sim-control`) through which another process can drive the clock,
inject faults and stop or start nodes. With `rest=True` every member also serves clnrest on
loopback HTTPS (its own CA, runes checked), and `write_config` can point members at it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from lnsim.restserver import RestServer
from lnsim.rpcmethods import PARAMS_ORDER, NodeMethods
from lnsim.rpcserver import Faults, NodeServer
from lnsim.scenario_model import Scenario, load_scenario
from lnsim.simmarket import Market
from lnsim.simrunes import NodeRunes
from lnsim.simtls import ensure_certs
from lnsim.state import Channel
from lnsim.topology import build_network


class SimFleet:
    def __init__(
        self,
        scenario: str | Path | Scenario = "audit",
        workdir: Path | str = ".",
        seed: int | None = None,
        rest: bool = False,
    ) -> None:
        self.scenario = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        self.workdir = Path(workdir).resolve()
        self.net = build_network(self.scenario, seed)
        self.market = Market(self.net, self.scenario, seed)
        self.faults = Faults(seed=self.scenario.seed)
        self.tick = threading.Condition()
        self.node_ids = {n.fleet.name: n.pubkey for n in self.net.fleet_nodes() if n.fleet}
        self.socket_paths = {name: self.workdir / name / "lightning-rpc" for name in self.node_ids}
        self.control_path = self.workdir / "sim-control"
        self.servers: dict[str, NodeServer] = {}
        self.runes: dict[str, NodeRunes] = {}
        self.rest_servers: dict[str, RestServer] = {}
        for name, pk in self.node_ids.items():
            methods = NodeMethods(self.market, pk, str(self.workdir / name), self.tick)
            runes = NodeRunes.for_node(self.scenario.seed, name, lambda: self.net.now)
            handlers = methods.handlers() | runes.handlers()
            self.runes[name] = runes
            self.servers[name] = NodeServer(
                name, self.socket_paths[name], handlers, self.faults, PARAMS_ORDER
            )
            if rest:
                certs = ensure_certs(self.workdir / name / "clnrest")
                self.rest_servers[name] = RestServer(self.servers[name], runes, certs)
        self._control: NodeServer | None = None
        self._advance_lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> SimFleet:
        for server in self.servers.values():
            server.start()
        for rest in self.rest_servers.values():
            rest.start()
        self._control = NodeServer(
            "sim-control",
            self.control_path,
            self._control_handlers(),
            Faults(),
            {"sim-advance": ["seconds"]},
        )
        self._control.start()
        return self

    def stop(self) -> None:
        for rest in self.rest_servers.values():
            rest.stop()
        for server in self.servers.values():
            server.stop()
        if self._control:
            self._control.stop()

    def __enter__(self) -> SimFleet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- clock and state ---------------------------------------------------------------------
    @property
    def now(self) -> int:
        return self.net.now

    def advance(self, seconds: int) -> Any:
        with self._advance_lock:
            report = self.market.advance(int(seconds))
        with self.tick:
            self.tick.notify_all()
        return report

    def stop_node(self, name: str) -> None:
        """The node vanishes: its socket (and clnrest) go away, its peers see it disconnected."""
        if name in self.rest_servers:
            self.rest_servers[name].stop()
        self.servers[name].stop()
        with self.net.lock:
            self.market.set_node_online(self.node_ids[name], False)

    def start_node(self, name: str) -> None:
        with self.net.lock:
            self.market.set_node_online(self.node_ids[name], True)
        self.servers[name].start()
        if name in self.rest_servers:
            self.rest_servers[name].start()

    def set_peer_online(self, peer_id: str, online: bool) -> None:
        """An external peer goes away (or comes back): HTLCs to it fail, sling sees it
        disconnected, listpeerchannels shows `peer_connected: false`."""
        with self.net.lock:
            if peer_id not in self.net.nodes:
                raise KeyError(f"no node {peer_id} in the simulated network")
            self.market.set_node_online(peer_id, online)

    def external_channels(self, name: str) -> list[Channel]:
        """Member `name`'s open channels to nodes outside the fleet (the ones the market routes
        over and tests fill or drain). Call with `net.lock` held when the result is used."""
        me = self.node_ids[name]
        members = set(self.node_ids.values())
        return [
            c
            for c in self.net.channels_of(me)
            if c.is_normal and c.other(me) not in members and c.to_node1_msat is not None
        ]

    def route_payments(
        self, name: str, in_scid: str, out_scid: str, amount_msat: int, parts: int = 1
    ) -> int:
        """Payments from `in_scid`'s peer through member `name` out over `out_scid`, booked as
        forwards like the market's own: fills `in_scid` and drains `out_scid`. Returns how many
        of the `parts` payments settled."""
        me = self.node_ids[name]
        settled = 0
        with self.net.lock:
            into, out = self.net.channels[in_scid], self.net.channels[out_scid]
            hops = [(into.other(me), me, into), (me, out.other(me), out)]
            for _ in range(parts):
                result = self.market.payments.execute(hops, amount_msat // parts, self.net.now)
                settled += int(result.ok)
        return settled

    def forward_count(self, name: str, status: str | None = None) -> int:
        with self.net.lock:
            fleet = self.net.nodes[self.node_ids[name]].fleet
            assert fleet is not None
            if status is None:
                return len(fleet.forwards)
            return sum(1 for f in fleet.forwards if f.status == status)

    def call_count(self, name: str, method: str) -> int:
        return self.servers[name].calls[method]

    def create_rune(
        self, name: str, restrictions: list[list[str]] | str, *, base: str | None = None
    ) -> str:
        """What `lightning-cli createrune` on that member's host prints (its `rune`)."""
        params: dict[str, Any] = {"restrictions": restrictions}
        if base is not None:
            params["rune"] = base
        return str(self.runes[name].createrune(params)["rune"])

    def write_rune_file(self, name: str, rune: str) -> Path:
        path = self.workdir / name / "hiveops.rune"
        path.write_text(rune + "\n")
        os.chmod(path, 0o600)
        return path

    def write_config(
        self,
        path: Path | str,
        warehouse_path: Path | str,
        *,
        rest_members: Iterable[str] = (),
        rune_mode: Literal["read", "act"] = "act",
        advisor_exec: bool = True,
    ) -> Path:
        """A hiveops config; members in `rest_members` are reached over clnrest with a rune of
        the given mode's restrictions (in a rune_file) and their CA pinned."""
        from models.runes import restrictions

        over_rest = set(rest_members)
        missing = over_rest - set(self.rest_servers)
        if missing:
            raise ValueError(f"{sorted(missing)} serve no REST: start SimFleet(rest=True)")
        lines = [f'warehouse_path = "{Path(warehouse_path).resolve()}"', ""]
        for name, socket_path in self.socket_paths.items():
            lines += ["[[nodes]]", f'name = "{name}"']
            if name in over_rest:
                rest = self.rest_servers[name]
                rune = self.create_rune(name, restrictions(rune_mode, advisor_exec))
                lines += [
                    f'rest_url = "{rest.url}"',
                    f'rune_file = "{self.write_rune_file(name, rune)}"',
                    f'ca_cert = "{rest.certs.ca}"',
                ]
            else:
                lines.append(f'rpc_socket = "{socket_path}"')
            lines += ["fleet_member = true", f'node_id = "{self.node_ids[name]}"', ""]
        lines += [
            "[sim]",
            f'control_socket = "{self.control_path}"',
            f'scenario = "{self.scenario.name}"',
            "",
        ]
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines))
        return path

    # -- control socket ----------------------------------------------------------------------
    def _control_handlers(self) -> dict[str, Any]:
        def advance(p: dict[str, Any]) -> dict[str, Any]:
            report = self.advance(int(p["seconds"]))
            return {
                "now": self.now,
                "payments": report.payments,
                "fleet_forwards": report.fleet_forwards,
            }

        def fault(p: dict[str, Any]) -> dict[str, Any]:
            options = {k: v for k, v in p.items() if k not in ("node", "method")}
            self.faults.set(p["node"], p.get("method", "*"), **options)
            return {"result": "ok"}

        return {
            "sim-advance": advance,
            "sim-now": lambda p: {"now": self.now},
            "sim-stats": lambda p: {
                "now": self.now,
                "scenario": self.scenario.name,
                "forwards": {n: self.forward_count(n) for n in self.node_ids},
            },
            "sim-fault": fault,
            "sim-clear-faults": lambda p: (self.faults.clear(p.get("node")), {"result": "ok"})[1],
            "sim-node-stop": lambda p: (self.stop_node(p["node"]), {"result": "ok"})[1],
            "sim-node-start": lambda p: (self.start_node(p["node"]), {"result": "ok"})[1],
        }
