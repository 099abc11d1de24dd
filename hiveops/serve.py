"""`hiveops serve`: every loop as a scheduled Prefect deployment, run by this one process.

No work pool and no worker: Prefect's `serve()` polls for due runs and starts each in a
subprocess. Scheduling needs a real Prefect server (the ephemeral API never schedules), so when no
PREFECT_API_URL is configured, serve starts `prefect server start` on 127.0.0.1 itself, points
this process and its runs at it, prints the UI address, and stops it on exit. On a graceful stop
Prefect pauses the served deployments; the staleness automations (`hiveops alerts install`) and
the watchdog's next run are what notice that nothing is running any more.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.orchestration import LOOPS, OrchestrationConfig, orchestration_of
from models.settings import ConfigError, load_settings

PREFERRED_PORT = 4200
DESCRIPTIONS = {
    "collect": "Snapshot every node, sync forwards, competitor fees and on-chain costs.",
    "fees": "Decide, record and apply a fee for every channel (dry_run in the config holds).",
    "rebalance": "Plan and drive rebalances within the budget and the EV gate.",
    "outcomes": "Measure what each fee change and rebalance really earned.",
    "advisor": "Advise on channels to open, close or resize.",
    "fleet": "Coordinate fleet members: zero-fee fleet channels, assistance for weak members.",
    "report": "Daily self-audit report: detectors, P&L, budget, what is broken.",
    "watchdog": "Fail loudly when any loop's heartbeats stop succeeding.",
}


@dataclass
class LocalServer:
    """A `prefect server start` subprocess this process owns."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM the server's process group, SIGKILL it if it lingers."""
        if self.process.poll() is not None:
            return
        for sig, wait_s in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(timeout=wait_s)
                return
            except subprocess.TimeoutExpired:
                continue


def free_port(preferred: int | None = None) -> int:
    """`preferred` when nothing listens there, else any free port the kernel hands out."""
    candidates = [preferred, 0] if preferred else [0]
    for port in candidates:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise RuntimeError("no free TCP port on 127.0.0.1")


def _get_json(url: str, timeout_s: float = 2.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        return json.loads(response.read() or b"null")


def wait_healthy(
    api_url: str, timeout_s: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Poll `<api>/health` until it answers; fail early if the server process died."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"Prefect server exited with code {process.returncode}")
        try:
            if _get_json(f"{api_url}/health") is True:
                return
        except (urllib.error.URLError, OSError, ValueError):
            pass
        time.sleep(0.25)
    raise TimeoutError(f"Prefect server at {api_url} not healthy after {timeout_s:.0f}s")


def start_local_server(
    *, port: int | None = None, home: Path | None = None, timeout_s: float = 300.0
) -> LocalServer:
    """Start `prefect server start` on 127.0.0.1 and wait until its API answers.

    Host and port go in through PREFECT_SERVER_API_HOST/PORT rather than --host/--port: with the
    flags, Prefect 3.9's UI keeps pointing at port 4200 and cannot reach its API.
    """
    from prefect.settings import PREFECT_HOME

    port = port or free_port(PREFERRED_PORT)
    home = Path(home or PREFECT_HOME.value()).expanduser()
    home.mkdir(parents=True, exist_ok=True)
    log_path = home / "hiveops-prefect-server.log"
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        "PREFECT_SERVER_API_PORT": str(port),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    env.pop("PREFECT_API_URL", None)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own process group: Ctrl-C reaches serve first, which still needs the server
            # to pause its deployments, and stop() can end the server with all its children.
            start_new_session=True,
        )
    server = LocalServer(process, port, log_path)
    try:
        wait_healthy(server.api_url, timeout_s, process)
    except (RuntimeError, TimeoutError) as exc:
        server.stop()
        raise RuntimeError(f"{exc}; see {log_path}") from exc
    return server


@contextmanager
def exit_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into SystemExit for the block, so `finally` clauses (stopping the server we
    started) run; Prefect's runner installs its own graceful handler while it serves."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def prefect_api(
    *, port: int | None = None, home: Path | None = None, announce: bool = True
) -> Iterator[str]:
    """The configured PREFECT_API_URL, or a local server started (and stopped) for the block."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    configured = PREFECT_API_URL.value()
    if configured:
        if announce:
            print(f"Prefect API: {configured} (from PREFECT_API_URL)", flush=True)
        yield configured
        return
    if announce:
        print(
            "PREFECT_API_URL is not set: starting a local Prefect server (its first start "
            "creates its database and can take a minute)",
            flush=True,
        )
    server = start_local_server(port=port, home=home)
    previous = os.environ.get("PREFECT_API_URL")
    os.environ["PREFECT_API_URL"] = server.api_url  # flow-run subprocesses inherit it
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            if announce:
                print(
                    f"Prefect UI: {server.ui_url}  (server pid {server.process.pid}, "
                    f"log {server.log_path})",
                    flush=True,
                )
            yield server.api_url
    finally:
        if previous is None:
            os.environ.pop("PREFECT_API_URL", None)
        else:
            os.environ["PREFECT_API_URL"] = previous
        server.stop()


def load_loop_flows(loops: Sequence[str], *, strict: bool) -> dict[str, Any]:
    """Import `flows/<loop>.py:<loop>` for each loop; missing ones are skipped unless `strict`."""
    found: dict[str, Any] = {}
    for loop in loops:
        try:
            module = importlib.import_module(f"flows.{loop}")
            found[loop] = getattr(module, loop)
        except (ModuleNotFoundError, AttributeError) as exc:
            if strict:
                raise ConfigError(
                    f"loop {loop!r} has no flow flows/{loop}.py:{loop} ({exc}); drop it from --only"
                ) from exc
            print(
                f"hiveops serve: skipping {loop}: flows/{loop}.py:{loop} not available", flush=True
            )
    return found


def prefect_schedule(orchestration: OrchestrationConfig, loop: str) -> Any:
    """The loop's `[orchestration]` schedule as a Prefect schedule (interval, or cron + zone)."""
    from prefect.schedules import Cron, Interval

    schedule = orchestration.schedule(loop)
    if schedule.cron is not None:
        return Cron(schedule.cron, timezone=schedule.timezone)
    assert schedule.interval_s is not None
    return Interval(schedule.interval_s)


def build_deployments(
    flows: dict[str, Any], config_path: Path, orchestration: OrchestrationConfig
) -> list[Any]:
    """One deployment per loop, named like the loop, on the configured schedule."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.types.entrypoint import EntrypointType

    # One run of a loop at a time; a run due while the previous one still works is cancelled
    # rather than queued, so a slow loop never builds a backlog (the next interval comes anyway).
    one_at_a_time = ConcurrencyLimitConfig(
        limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW
    )
    return [
        flow.to_deployment(
            name=loop,
            schedule=prefect_schedule(orchestration, loop),
            parameters={"config_path": str(config_path)},
            tags=["hiveops", loop],
            description=DESCRIPTIONS.get(loop),
            concurrency_limit=one_at_a_time,
            # By module, not file path: runs import the installed package from any directory.
            entrypoint_type=EntrypointType.MODULE_PATH,
        )
        for loop, flow in flows.items()
    ]


def select_loops(orchestration: OrchestrationConfig, only: Sequence[str] | None) -> list[str]:
    if not only:
        return list(orchestration.loops)
    unknown = [loop for loop in only if loop not in LOOPS]
    if unknown:
        raise ConfigError(
            f"--only: unknown loop(s) {', '.join(unknown)}; known: {', '.join(LOOPS)}"
        )
    return list(dict.fromkeys(only))


def serve_loops(
    config_path: str | Path | None = None,
    *,
    only: Sequence[str] | None = None,
    orchestration: OrchestrationConfig | None = None,
    limit: int | None = None,
    port: int | None = None,
) -> int:
    """Serve the loops until interrupted; returns the exit code."""
    settings = load_settings(config_path)
    orchestration = orchestration or orchestration_of(settings)
    loops = select_loops(orchestration, only)
    flows = load_loop_flows(loops, strict=bool(only))
    if not flows:
        raise ConfigError("no loop to serve; check --only and the flows/ folder")
    assert settings.config_path is not None
    with exit_on_sigterm(), prefect_api(port=port):
        from prefect import serve

        deployments = build_deployments(flows, settings.config_path, orchestration)
        if orchestration.webhook_url or orchestration.notify_urls:
            from hiveops.alerts import install_alerts

            install_alerts(orchestration)
        cadence = ", ".join(f"{loop} {orchestration.schedule(loop).describe()}" for loop in flows)
        print(f"hiveops serve: {cadence}; Ctrl-C stops (and pauses the deployments)", flush=True)
        serve(*deployments, limit=limit, print_starting_message=False)
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m hiveops.serve` (the same as `hiveops serve`)."""
    parser = argparse.ArgumentParser(prog="hiveops serve", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    return run_from_args(args)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path)
    parser.add_argument("--only", help="comma-separated loops to serve (default: all)")
    parser.add_argument("--limit", type=int, help="at most this many concurrent flow runs")
    parser.add_argument("--port", type=int, help="port for a server serve starts itself")


def run_from_args(args: argparse.Namespace) -> int:
    only = [p.strip() for p in args.only.split(",") if p.strip()] if args.only else None
    try:
        return serve_loops(args.config, only=only, limit=args.limit, port=args.port)
    except ConfigError as exc:
        print(f"hiveops: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
