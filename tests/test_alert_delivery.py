"""Alerts reach a person, once, on a real Prefect server: a plain webhook, an apprise json://
target and an e-mail (aiosmtpd) each get one notice when a detector fires, a watchdog finding
appears, a loop starts failing or goes stale, and one when each clears; the watchdog pings a
dead man's switch whose monitor notices when the pings stop."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.flow_engine import run_flow

from flows.outcomes import outcomes
from flows.report import report
from flows.watchdog import watchdog
from hiveops.alerts import check_targets, install_alerts, list_alerts, remove_alerts
from models.orchestration import OrchestrationConfig
from models.settings import ConfigError
from tasks.ledger import heartbeat_finish, heartbeat_start
from tests.receivers import HttpReceiver, SmtpReceiver, wait_until

NOTIFY_S = 30  # an event to a delivered notice: seconds on an idle box; slack for a busy one


def test_malformed_targets_are_named_with_the_shape_expected() -> None:
    good = [
        "tgram://123456789:AAHabcdefghijklmnopqrstuvwxyz012345/12345",
        "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ",
        "discord://1234567890/abcdefABCDEF",
        "mailtos://ops:secret@smtp.example.org?to=oncall@example.org",
        "ntfy://hiveops-alerts",
        "json://127.0.0.1:8080/alerts",
        "https://hooks.example.org/hiveops",
    ]
    assert check_targets(good) == good
    with pytest.raises(ConfigError) as exc:
        check_targets(["tgram://oops", "discord://only-an-id", "ntfy:/x", "foo://bar", "https://"])
    lines = str(exc.value).splitlines()
    assert "not a valid Telegram URL" in lines[0] and "tgram://BOT_TOKEN/CHAT_ID" in lines[0]
    assert "not a valid Discord URL" in lines[1]
    assert "discord://WEBHOOK_ID/WEBHOOK_TOKEN" in lines[1]
    assert "has no scheme" in lines[2]
    assert "apprise cannot use scheme foo://" in lines[3]
    assert "no host" in lines[4]
    with pytest.raises(ConfigError, match=r"orchestration.notify_urls.*not a valid Telegram"):
        from models.settings import load_settings

        bad = Path(__file__).parent / "_bad_notify.toml"
        bad.write_text('[orchestration]\nnotify_urls = ["tgram://oops"]\n')
        try:
            load_settings(bad)
        finally:
            bad.unlink()


@pytest.fixture(scope="module")
def targets(prefect_harness: None) -> Iterator[tuple[HttpReceiver, SmtpReceiver]]:
    http, smtp = HttpReceiver(), SmtpReceiver()
    yield http, smtp
    remove_alerts()  # the harness server lives on for the rest of the session
    http.close()
    smtp.close()


def _deployment_run(flow: Any, config: Path, **parameters: Any) -> Any:
    """A run of the flow's deployment executed here (what serve's runner does in a subprocess)."""
    deployment_id = flow.to_deployment(name=flow.name, tags=["hiveops", flow.name]).apply()
    params = {"config_path": str(config), **parameters}
    with get_client(sync_client=True) as client:
        run = client.create_flow_run_from_deployment(deployment_id, parameters=params)
    return run_flow(flow, flow_run=run, parameters=params, return_type="state")


def test_each_fault_reaches_every_target_once_and_its_clearing_too(
    targets: tuple[HttpReceiver, SmtpReceiver], tmp_path: Path
) -> None:
    http, smtp = targets
    check = "hiveops-watchdog"
    wh = tmp_path / "w.duckdb"
    (tmp_path / "broken").mkdir()
    good = tmp_path / "hiveops.toml"
    good.write_text(
        'warehouse_path = "w.duckdb"\n[orchestration]\nloops = ["collect"]\n'
        f'deadman_url = "{http.base}/ping/{check}"\n[orchestration.intervals_s]\ncollect = 3600\n'
    )
    broken = tmp_path / "broken.toml"
    broken.write_text('warehouse_path = "broken"\n')  # a directory: every run fails
    now = datetime.now(UTC)
    heartbeat_start.fn(wh, "c1", "collect", "nexus-02", now - timedelta(days=2))
    heartbeat_finish.fn(wh, "c1", "collect", "nexus-02", now - timedelta(days=2), ok=True)
    from warehouse.db import release_all

    release_all()

    installed = install_alerts(
        OrchestrationConfig(loops=("outcomes",), intervals_s={"outcomes": 5}),
        webhook_url=f"{http.base}/hook",
        notify=[f"json://127.0.0.1:{http.base.rsplit(':', 1)[1]}/apprise", smtp.url()],
    )
    assert set(installed) == {
        "hiveops: finding fired or resolved",
        "hiveops: loop failed or recovered",
        "hiveops: run crashed",
        "hiveops: outcomes stale",
    }
    assert {r["targets"] for r in list_alerts()} == {3}

    def got(subject: str) -> list[str]:
        found = [m.channel for m in http.messages + smtp.messages if m.subject == subject]
        return sorted(found)

    every = ["apprise-json", "email", "webhook"]

    def arrives(subject: str) -> None:
        wait_until(
            lambda: got(subject) == every,
            NOTIFY_S,
            subject,
            lambda: sorted({(m.subject, m.channel) for m in http.messages + smtp.messages}),
        )

    # A watchdog finding, twice in a row: one notice; the dead man's switch hears `/fail`.
    for _ in range(2):
        state = _deployment_run(watchdog, good)
        assert state.is_failed() and "FindingsFired" in state.message
    stale_subject = "hiveops: collect is stale on nexus-02"
    arrives(stale_subject)
    body = next(m.body for m in http.messages if m.subject == stale_subject)
    assert "last succeeded 2.0 d ago" in body and "Fix:" in body and "hiveops run collect" in body
    assert [p.path for p in http.pings] == [f"/ping/{check}/fail"] * 2
    assert "collect on nexus-02 last succeeded 2.0 d ago" in http.pings[0].body

    # A report detector firing, twice: one notice per (node, detector).
    for i in range(2):
        assert _deployment_run(report, good, now=now.timestamp() + i).is_completed()
    detector_subject = next(
        m.subject for m in wait_until(
            lambda: [m for m in http.messages if "loop_stale on nexus-02" in m.subject],
            NOTIFY_S, "the report's loop_stale notice",
        )
    )  # fmt: skip
    arrives(detector_subject)
    assert detector_subject.startswith("hiveops P0 loop_stale on nexus-02: ")
    # no [[nodes]] in this config: that fires too, about the fleet rather than one node
    risky_subject = next(m.subject for m in http.messages if "risky_config" in m.subject)
    assert risky_subject.startswith("hiveops P1 risky_config on the fleet: ")
    detector_body = next(m.body for m in http.messages if m.subject == detector_subject)
    assert "What is wrong:" in detector_body and "Fix:" in detector_body

    # A loop failing twice: one notice, at once (not after Prefect's 15-minute look-back).
    for _ in range(2):
        failed_at = time.monotonic()
        assert _deployment_run(outcomes, broken).is_failed()
    arrives("hiveops: outcomes run failed")
    first = min(m.at for m in http.messages if m.subject == "hiveops: outcomes run failed")
    print(f"loop failure notice {first - failed_at:.1f}s after the second failed run")
    failed_body = next(m.body for m in http.messages if m.subject == "hiveops: outcomes run failed")
    assert "What is wrong:" in failed_body and "broken" in failed_body

    # Everything cleared: collect fresh, outcomes with a good config.
    heartbeat_start.fn(wh, "c2", "collect", "nexus-02", datetime.now(UTC))
    heartbeat_finish.fn(wh, "c2", "collect", "nexus-02", datetime.now(UTC), ok=True)
    release_all()
    assert _deployment_run(watchdog, good).is_completed()
    assert _deployment_run(report, good, now=datetime.now(UTC).timestamp()).is_completed()
    assert _deployment_run(outcomes, good).is_completed()
    completed = time.monotonic()
    arrives("hiveops resolved: collect runs again on nexus-02")
    arrives("hiveops resolved: loop_stale on nexus-02")
    arrives("hiveops resolved: outcomes runs again")
    assert http.pings[-1].path == f"/ping/{check}"  # the all-clear ping

    # The dead man's switch: no more watchdog runs, so its monitor reports the pings missing.
    http.monitor(check, period_s=2.0, grace_s=1.0)
    wait_until(lambda: got(f"[DOWN] {check}") == ["monitor"], 10, "the missed-ping report")
    # outcomes (every 5 s) falls silent after its last run: one staleness notice a window later.
    arrives("hiveops: outcomes is stale")
    stale_at = min(m.at for m in http.messages if m.subject == "hiveops: outcomes is stale")
    print(f"staleness notice {stale_at - completed:.1f}s after the last completion (window 10s)")
    assert 10 <= stale_at - completed <= 10 + NOTIFY_S
    # Let one more staleness window pass (a repeat would come then): nothing is announced twice.
    time.sleep(max(0.0, stale_at + 10 + 5 - time.monotonic()))
    subjects = [m.subject for m in http.messages if m.channel == "webhook"]
    assert len(subjects) == len(set(subjects)), subjects
    assert sorted(subjects) == sorted(
        [
            stale_subject,
            detector_subject,
            "hiveops: outcomes run failed",
            "hiveops resolved: collect runs again on nexus-02",
            "hiveops resolved: loop_stale on nexus-02",
            "hiveops resolved: outcomes runs again",
            "hiveops: outcomes is stale",
            risky_subject,
        ]
    )
    assert got(f"[DOWN] {check}") == ["monitor"]


def test_cli_refuses_a_malformed_target_before_starting_anything_and_lists_targets(
    targets: tuple[HttpReceiver, SmtpReceiver], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hiveops.cli import main

    config = tmp_path / "hiveops.toml"
    config.write_text('warehouse_path = "w.duckdb"\n[orchestration]\nloops = ["collect"]\n')
    assert main(["alerts", "install", "--config", str(config), "--notify", "tgram://x"]) == 2
    assert "not a valid Telegram URL" in capsys.readouterr().err
    http, _ = targets
    port = http.base.rsplit(":", 1)[1]
    assert main(["alerts", "install", "--config", str(config), "--notify",
                 f"json://127.0.0.1:{port}/apprise"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "created  hiveops: collect stale" in out or "updated  hiveops: collect stale" in out
    assert f"target   hiveops-notify-1: json://127.0.0.1:{port}/…" in out
    assert "hiveops-notify-2" not in out  # the e-mail target of the earlier install is replaced
