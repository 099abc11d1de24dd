"""Alerts through Prefect automations, delivered to a real HTTP listener on 127.0.0.1: a failing
run of a hiveops deployment and a deployment that stops completing each reach the webhook;
installing twice changes nothing but what changed."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.flow_engine import run_flow

from flows.common import LoopFailed
from flows.watchdog import watchdog
from hiveops.alerts import install_alerts, list_alerts, remove_alerts
from models.orchestration import OrchestrationConfig
from tasks.ledger import heartbeat_finish, heartbeat_start


class Webhook:
    """Records every JSON POST with its arrival time (monotonic)."""

    def __init__(self) -> None:
        self.posts: list[tuple[float, dict[str, Any]]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                hook.posts.append((time.monotonic(), json.loads(body or b"{}")))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def subjects(self) -> list[str]:
        return [p["subject"] for _, p in self.posts]

    def wait_for(self, subject: str, timeout_s: float) -> tuple[float, dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while True:
            for at, post in self.posts:
                if post.get("subject") == subject:
                    return at, post
            if time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        raise AssertionError(f"no {subject!r} at the webhook in {timeout_s}s: {self.subjects()}")


@pytest.fixture
def webhook(prefect_harness: None) -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    remove_alerts()  # the harness server lives on for the rest of the session
    hook.server.shutdown()


def test_install_twice_updates_in_place_without_duplicates(webhook: Webhook) -> None:
    config = OrchestrationConfig(loops=("collect", "fees"))
    first = install_alerts(config, webhook.url)
    assert set(first.values()) == {"created"}
    ids = {r["name"]: r["id"] for r in list_alerts()}
    assert set(ids) == {"hiveops: run failed or crashed", "hiveops: collect stale",
                        "hiveops: fees stale"}  # fmt: skip

    changed = OrchestrationConfig(loops=("collect",), intervals_s={"collect": 300})
    second = install_alerts(changed)  # the saved webhook block is reused
    assert second == {
        "hiveops: run failed or crashed": "updated",
        "hiveops: collect stale": "updated",
        "hiveops: fees stale": "deleted",
    }
    rows = {r["name"]: r for r in list_alerts()}
    assert {n: r["id"] for n, r in rows.items()} == {
        n: i for n, i in ids.items() if n != "hiveops: fees stale"
    }
    assert rows["hiveops: collect stale"]["within_s"] == 600


def test_failing_watchdog_run_of_a_deployment_reaches_the_webhook(
    webhook: Webhook, tmp_path: Path
) -> None:
    config_path = tmp_path / "hiveops.toml"
    config_path.write_text('warehouse_path = "w.duckdb"\n')
    now = datetime.now(UTC)
    long_ago = now - timedelta(days=2)
    heartbeat_start.fn(tmp_path / "w.duckdb", "c1", "collect", "nexus-02", long_ago)
    heartbeat_finish.fn(tmp_path / "w.duckdb", "c1", "collect", "nexus-02", long_ago, ok=True)
    install_alerts(OrchestrationConfig(loops=("watchdog",)), webhook.url)
    deployment_id = watchdog.to_deployment(name="watchdog", tags=["hiveops", "watchdog"]).apply()
    with get_client(sync_client=True) as client:
        run = client.create_flow_run_from_deployment(
            deployment_id, parameters={"config_path": str(config_path)}
        )
    with pytest.raises(LoopFailed):
        run_flow(watchdog, flow_run=run, parameters={"config_path": str(config_path)})
    _, post = webhook.wait_for("hiveops: watchdog run Failed", timeout_s=20)
    assert str(run.id) in post["body"]
    assert "collect on nexus-02 last succeeded 2.0 d ago" in post["body"]


@flow(name="collect")
def completes() -> int:
    return 1


@flow(name="outcomes")
def never_runs() -> int:
    return 1


def test_paused_deployment_alerts_as_stale_while_a_completing_one_does_not(
    webhook: Webhook,
) -> None:
    config = OrchestrationConfig(
        loops=("collect", "outcomes"), intervals_s={"collect": 5, "outcomes": 5}
    )
    never_runs.to_deployment(name="outcomes", tags=["hiveops"], paused=True).apply()
    collect_id = completes.to_deployment(name="collect", tags=["hiveops"]).apply()
    install_alerts(config, webhook.url)
    installed = time.monotonic()
    with get_client(sync_client=True) as client:
        while not any(s == "hiveops: outcomes is stale" for s in webhook.subjects()):
            assert time.monotonic() - installed < 30, webhook.subjects()
            run_flow(completes, flow_run=client.create_flow_run_from_deployment(collect_id))
            time.sleep(1.5)
    at, post = webhook.wait_for("hiveops: outcomes is stale", timeout_s=0)
    print(f"staleness alert {at - installed:.1f}s after install (window 10s)")
    # Window 2x5 s; Prefect evaluates proactive triggers every 5 s, from their first evaluation.
    assert at - installed <= config.stale_after_s("outcomes") + 10
    assert "no completed run of deployment outcomes/outcomes in the last 10s" in post["body"]
    assert "hiveops: collect is stale" not in webhook.subjects()
