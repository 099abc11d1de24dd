"""`hiveops alerts install|list|remove`: Prefect automations that tell a webhook when a loop fails
or falls silent.

prefect.yaml `triggers:` can only run deployments, so the automations are created through the
API: one reactive automation for runs of hiveops deployments that end Failed, Crashed or
TimedOut, and one proactive automation per loop that fires when its deployment has not completed
a run within `stale_factor` x its interval (the audit's five silent days). Both notify one
webhook block. Installing again updates everything in place (matched by name): no duplicates.
"""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from models.orchestration import OrchestrationConfig, orchestration_of
from models.settings import ConfigError, load_settings

BLOCK_NAME = "hiveops-webhook"
PREFIX = "hiveops: "
FAILURE_NAME = f"{PREFIX}run failed or crashed"
FAILED_EVENTS = {"prefect.flow-run.Failed", "prefect.flow-run.Crashed", "prefect.flow-run.TimedOut"}
COMPLETED_EVENT = "prefect.flow-run.Completed"


def stale_name(loop: str) -> str:
    return f"{PREFIX}{loop} stale"


def failure_automation(block_id: UUID) -> Any:
    """Any run of a deployment tagged `hiveops` that ends badly, reported at once."""
    from prefect.automations import AutomationCore, EventTrigger, Posture, SendNotification

    return AutomationCore(
        name=FAILURE_NAME,
        description="A hiveops loop run failed, crashed or timed out.",
        tags=["hiveops"],
        trigger=EventTrigger(
            expect=FAILED_EVENTS,
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related=[
                {"prefect.resource.role": "deployment"},
                {"prefect.resource.id": "prefect.tag.hiveops"},
            ],
            posture=Posture.Reactive,
            threshold=1,
            within=timedelta(0),
        ),
        actions=[
            SendNotification(
                block_document_id=block_id,
                subject="hiveops: {{ flow.name }} run {{ flow_run.state.name }}",
                body=(
                    "hiveops loop {{ flow.name }} (deployment {{ deployment.name }}): run "
                    "{{ flow_run.name }} ({{ flow_run.id }}) is {{ flow_run.state.name }}: "
                    "{{ flow_run.state.message }}"
                ),
            )
        ],
    )


def stale_automation(loop: str, config: OrchestrationConfig, block_id: UUID) -> Any:
    """Fires when deployment `<loop>` has no Completed run for `stale_after_s`.

    `after` and `expect` are both Completed: every completion restarts the window, so the alert
    comes `stale_after_s` after the last success (not up to twice that, as with fixed windows),
    and repeats every window while the loop stays silent. A deployment that never completed
    alerts one window after the automation is installed or the server starts.
    """
    from prefect.automations import AutomationCore, EventTrigger, Posture, SendNotification

    window_s = config.stale_after_s(loop)
    interval_s = config.interval_s(loop)
    return AutomationCore(
        name=stale_name(loop),
        description=f"No completed {loop} run within {window_s}s ({interval_s}s interval).",
        tags=["hiveops"],
        trigger=EventTrigger(
            after={COMPLETED_EVENT},
            expect={COMPLETED_EVENT},
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related=[
                {"prefect.resource.role": "deployment", "prefect.resource.name": loop},
                {"prefect.resource.role": "flow", "prefect.resource.name": loop},
            ],
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=window_s),
        ),
        actions=[
            SendNotification(
                block_document_id=block_id,
                subject=f"hiveops: {loop} is stale",
                body=(
                    f"hiveops loop {loop}: no completed run of deployment {loop}/{loop} in the "
                    f"last {window_s}s ({config.stale_factor:g}x its {interval_s}s interval). Is "
                    f"`hiveops serve` (or the worker) running? Is the deployment paused?"
                ),
            )
        ],
    )


def desired_automations(config: OrchestrationConfig, block_id: UUID) -> list[Any]:
    return [failure_automation(block_id)] + [
        stale_automation(loop, config, block_id) for loop in config.loops
    ]


def check_webhook_url(url: str | None) -> str | None:
    if url is not None and not url.startswith(("http://", "https://")):
        raise ConfigError(f"webhook URL {url!r} must start with http:// or https://")
    return url


def save_webhook_block(url: str) -> UUID:
    """Create or overwrite the `hiveops-webhook` notification block; its document id."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    block = CustomWebhookNotificationBlock(
        name="hiveops",
        url=url,
        method="POST",
        json_data={"subject": "{{subject}}", "body": "{{body}}", "source": "hiveops"},
        timeout=10,
    )
    return block.save(BLOCK_NAME, overwrite=True)


def _existing_block_id() -> UUID | None:
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    try:
        return CustomWebhookNotificationBlock.load(BLOCK_NAME)._block_document_id
    except ValueError:
        return None


def _hiveops_automations(client: Any) -> list[Any]:
    return [a for a in client.read_automations() if a.name.startswith(PREFIX)]


def install_alerts(config: OrchestrationConfig, webhook_url: str | None = None) -> dict[str, str]:
    """Create or update the block and the automations; remove hiveops automations no longer
    wanted (a loop dropped from `orchestration.loops`). Returns {automation name: action}."""
    from prefect.client.orchestration import get_client

    url = check_webhook_url(webhook_url or config.webhook_url)
    block_id = save_webhook_block(url) if url else _existing_block_id()
    if block_id is None:
        raise ConfigError(
            "no alert webhook: pass --webhook URL or set orchestration.webhook_url in the config"
        )
    done: dict[str, str] = {}
    with get_client(sync_client=True) as client:
        existing: dict[str, list[Any]] = {}
        for automation in _hiveops_automations(client):
            existing.setdefault(automation.name, []).append(automation)
        for wanted in desired_automations(config, block_id):
            found = existing.pop(wanted.name, [])
            if found:
                client.update_automation(found[0].id, wanted)
                for duplicate in found[1:]:
                    client.delete_automation(duplicate.id)
                done[wanted.name] = "updated"
            else:
                client.create_automation(wanted)
                done[wanted.name] = "created"
        for name, stale in existing.items():
            for automation in stale:
                client.delete_automation(automation.id)
            done[name] = "deleted"
    return done


def list_alerts() -> list[dict[str, Any]]:
    """The installed hiveops automations, one summary dict each."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        rows = []
        for a in sorted(_hiveops_automations(client), key=lambda a: a.name):
            trigger = a.trigger
            rows.append(
                {
                    "name": a.name,
                    "enabled": a.enabled,
                    "posture": getattr(getattr(trigger, "posture", None), "value", "compound"),
                    "within_s": int(getattr(trigger, "within", timedelta(0)).total_seconds()),
                    "id": str(a.id),
                }
            )
        return rows


def remove_alerts() -> int:
    """Delete every hiveops automation (the webhook block stays)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        found = _hiveops_automations(client)
        for automation in found:
            client.delete_automation(automation.id)
    return len(found)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="alerts_command", required=True)
    install = sub.add_parser("install", help="create or update the webhook block and automations")
    install.add_argument("--config", type=Path)
    install.add_argument("--webhook", help="webhook URL (default: orchestration.webhook_url)")
    listing = sub.add_parser("list", help="show the installed hiveops automations")
    listing.add_argument("--config", type=Path)
    remove = sub.add_parser("remove", help="delete the hiveops automations")
    remove.add_argument("--config", type=Path)


def run_from_args(args: argparse.Namespace) -> int:
    """Talks to PREFECT_API_URL, or to a local server started for the command (same database
    as `hiveops serve` uses, so what is installed here is active when serve runs)."""
    from hiveops.serve import exit_on_sigterm, prefect_api

    config = orchestration_of(load_settings(args.config))
    check_webhook_url(getattr(args, "webhook", None))
    with exit_on_sigterm(), prefect_api(announce=False):
        if args.alerts_command == "install":
            for name, action in install_alerts(config, args.webhook).items():
                print(f"{action:8} {name}")
        elif args.alerts_command == "list":
            rows = list_alerts()
            for r in rows:
                state = "on " if r["enabled"] else "off"
                print(f"{state} {r['posture']:<10} {r['within_s']:>7}s  {r['name']}  ({r['id']})")
            if not rows:
                print("no hiveops automations; run `hiveops alerts install`")
        else:
            print(f"removed {remove_alerts()} automation(s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m hiveops.alerts ...` (the same as `hiveops alerts ...`)."""
    parser = argparse.ArgumentParser(prog="hiveops alerts", description=__doc__)
    add_arguments(parser)
    try:
        return run_from_args(parser.parse_args(argv))
    except ConfigError as exc:
        print(f"hiveops: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
