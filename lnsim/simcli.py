"""`hiveops sim start`: serve a simulated fleet until stopped."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from types import FrameType

from lnsim.simfleet import SimFleet


def sim_start(
    scenario: str,
    workdir: Path,
    write_config: Path | None,
    seed: int | None,
    speed: float,
    manual: bool,
    rest: list[str] | None = None,
) -> int:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    with SimFleet(scenario, workdir=workdir, seed=seed, rest=rest is not None) as fleet:
        print(f"simulated fleet '{fleet.scenario.name}' at {fleet.workdir}")
        for name, path in fleet.socket_paths.items():
            print(f"  {name:<10} {fleet.node_ids[name]}  {path}")
            if name in fleet.rest_servers:
                server = fleet.rest_servers[name]
                print(f"  {'':<10} clnrest {server.url}  CA {server.certs.ca}")
        print(
            f"  control    {fleet.control_path}  (sim-advance, sim-now, sim-stats, sim-fault, "
            f"sim-node-stop, sim-node-start)"
        )
        if write_config:
            over_rest = (rest or list(fleet.node_ids)) if rest is not None else []
            config = fleet.write_config(
                write_config, Path(write_config).parent / "hiveops.duckdb", rest_members=over_rest
            )
            print(f"config written to {config}")
        mode = (
            "manual clock (advance it through sim-control)"
            if manual
            else (f"clock runs at {speed:g} simulated s per wall s")
        )
        print(f"{mode}; Ctrl-C stops", flush=True)
        while not stop.is_set():
            started = time.monotonic()
            if not manual:
                fleet.advance(max(1, round(speed)))
            stop.wait(max(0.0, 1.0 - (time.monotonic() - started)))
    print("stopped")
    return 0
