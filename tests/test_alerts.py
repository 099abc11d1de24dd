"""Alerts through Prefect automations, delivered to a real HTTP listener on 127.0.0.1: installing
twice changes nothing but what changed, and a crashed run of a hiveops deployment (no hook ran)
reaches the webhook. Notices of findings and loop runs: tests/test_alert_delivery.py."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.states import Crashed, Pending, Running

from hiveops.alerts import install_alerts, list_alerts, remove_alerts
from models.orchestration import OrchestrationConfig


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
    notices = {
        "hiveops: finding fired or resolved",
        "hiveops: loop failed or recovered",
        "hiveops: run crashed",
    }
    assert set(ids) == notices | {"hiveops: collect stale", "hiveops: fees stale"}

    changed = OrchestrationConfig(loops=("collect",), intervals_s={"collect": 300})
    second = install_alerts(changed)  # the saved webhook block is reused
    assert second == {name: "updated" for name in notices} | {
        "hiveops: collect stale": "updated",
        "hiveops: fees stale": "deleted",
    }
    rows = {r["name"]: r for r in list_alerts()}
    assert {n: r["id"] for n, r in rows.items()} == {
        n: i for n, i in ids.items() if n != "hiveops: fees stale"
    }
    assert rows["hiveops: collect stale"]["within_s"] == 600


@flow(name="collect")
def crashes() -> int:
    return 1


def test_crashed_run_of_a_hiveops_deployment_reaches_the_webhook(webhook: Webhook) -> None:
    """A run whose process died: the server (here: the API) marks it Crashed, and no hook of
    the flow ever ran, so Prefect's own Crashed event is what is delivered."""
    install_alerts(OrchestrationConfig(loops=("collect",)), webhook.url)
    deployment_id = crashes.to_deployment(name="collect", tags=["hiveops", "collect"]).apply()
    with get_client(sync_client=True) as client:
        run = client.create_flow_run_from_deployment(deployment_id)
        for state in (Pending(), Running(), Crashed(message="Flow run process exited with -9")):
            client.set_flow_run_state(run.id, state, force=True)
    _, post = webhook.wait_for("hiveops: collect run Crashed", timeout_s=30)
    assert str(run.id) in post["body"]
    assert "exited with -9" in post["body"] and "Fix:" in post["body"]
