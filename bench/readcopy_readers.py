"""Read-only connects to the read copy while every loop runs under a Prefect worker.

    .venv/bin/python bench/readcopy_readers.py [--connects 1000] [--seconds 300] [--interval 60]

The documented deployment path, end to end: the simulated fleet (`hiveops sim start`, real
time), a local Prefect server, a process work pool, `prefect deploy --all` from this checkout's
prefect.yaml (intervals shortened to --interval so every loop runs several times), a worker. Once
the first copy is published, `--connects` read-only connects to the copy are spread over
`--seconds`, each opening it, reading its publish row and closing, as a notebook or a BI tool
does. Prints connects, failures, how many publishes the readers saw, and the flow runs' states.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    for sig, wait_s in ((signal.SIGINT, 20), (signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue
        except ProcessLookupError:
            return


async def run_states(api_url: str) -> Counter[tuple[str, str]]:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        return await _states()


async def _states() -> Counter[tuple[str, str]]:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        runs = await client.read_flow_runs(limit=200)
        names = {d.id: d.name for d in await client.read_deployments()}
    return Counter((names.get(r.deployment_id, "?"), r.state_name or "?") for r in runs)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--connects", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=300)
    ap.add_argument("--interval", type=int, default=60, help="every loop's schedule, s")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args()

    import duckdb

    from hiveops.serve import start_local_server

    work = Path(tempfile.mkdtemp(prefix="bench-readers-"))
    py = sys.executable
    env = {
        **os.environ,
        "PREFECT_HOME": str(work / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "HIVEOPS_HOME": str(ROOT),
        "HIVEOPS_CONFIG": str(work / "hiveops.toml"),
    }
    os.environ.update({k: env[k] for k in ("PREFECT_HOME", "PREFECT_SERVER_ANALYTICS_ENABLED")})
    procs: list[subprocess.Popen[bytes]] = []
    server = None
    try:
        sim = [py, "-m", "hiveops.cli", "sim", "start", "--workdir", str(work / "sim")]
        sim += ["--write-config", str(work / "hiveops.toml"), "--speed", "60"]
        procs.append(start(sim, env, work / "sim.log"))
        server = start_local_server(home=work / "prefect")
        env["PREFECT_API_URL"] = os.environ["PREFECT_API_URL"] = server.api_url
        print(f"work {work}; Prefect API {server.api_url}", flush=True)
        deadline = time.monotonic() + 120
        while not (work / "hiveops.toml").exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        recipe = re.sub(
            r"interval: \d+", f"interval: {args.interval}", (ROOT / "prefect.yaml").read_text()
        )
        (work / "prefect.yaml").write_text(recipe)
        prefect = [py, "-m", "prefect"]
        for argv in (
            [*prefect, "work-pool", "create", "hiveops", "--type", "process"],
            [
                *prefect,
                "--no-prompt",
                "deploy",
                "--all",
                "--prefect-file",
                str(work / "prefect.yaml"),
            ],
        ):
            done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
            if done.returncode != 0:
                print(f"{' '.join(argv[2:5])} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
                return 1
        procs.append(
            start([*prefect, "worker", "start", "--pool", "hiveops"], env, work / "worker.log")
        )
        copy = work / "hiveops.read.duckdb"
        deadline = time.monotonic() + 600
        while not copy.exists() and time.monotonic() < deadline:
            time.sleep(1)
        if not copy.exists():
            print(f"no copy published in 10 minutes; see {work}/worker.log")
            return 1
        print(
            f"first copy published; {args.connects} connects over {args.seconds:.0f} s", flush=True
        )

        failures: Counter[str] = Counter()
        seen: set[str] = set()
        slowest_s = 0.0
        began = time.monotonic()
        for i in range(args.connects):
            due = began + i * args.seconds / args.connects
            time.sleep(max(0.0, due - time.monotonic()))
            t = time.monotonic()
            try:
                con = duckdb.connect(str(copy), read_only=True)
                try:
                    seen.add(con.execute("select run_id from read_copy_freshness").fetchone()[0])
                finally:
                    con.close()
            except Exception as exc:
                failures[str(exc).splitlines()[0][:160]] += 1
            slowest_s = max(slowest_s, time.monotonic() - t)
        elapsed = time.monotonic() - began
        print(f"connects: {args.connects} in {elapsed:.0f} s, failed: {sum(failures.values())}")
        for message, n in failures.most_common():
            print(f"  {n} x {message}")
        print(f"slowest connect + read + close: {slowest_s:.2f} s; publishes seen: {len(seen)}")
        print("flow runs by deployment and state:", flush=True)
        try:
            states = asyncio.run(run_states(server.api_url))
        except Exception as exc:  # the connects above are the result; the states only inform
            print(f"  (flow run states not read: {exc})")
            states = Counter()
    finally:
        for proc in reversed(procs):
            stop(proc)
        if server is not None:
            server.stop()

    by_loop: dict[str, Counter[str]] = {}
    for (loop, state), n in states.items():
        by_loop.setdefault(loop, Counter())[state] += n
    for loop in sorted(by_loop):
        print(f"  {loop}: " + ", ".join(f"{s} {n}" for s, n in sorted(by_loop[loop].items())))
    if args.keep:
        print(f"work folder {work} kept for the logs")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
