"""`hiveops alerts install|list|remove`: Prefect automations that tell a person when a loop fails,
falls silent, or a check finds something, on the channels operators already use.

Targets are URLs: `--notify` takes any apprise URL (tgram://, slack://, discord://, mailto://,
ntfy://, json://, ...; each checked before anything is saved), `--webhook` a plain http(s) URL
that gets `{"subject", "body", "source"}` as JSON. Each target is one Prefect notification block;
every automation notifies all of them. OSS Prefect 3.9 has no generic apprise block, so apprise
URLs ride in a `SlackWebhook` block, which hands any non-Slack URL to apprise unchanged.

Automations (prefect.yaml `triggers:` can only run deployments, so these go through the API):
- findings: a `hiveops.finding.fired|resolved` event (report detectors, watchdog stale loops;
  sent on the transition only, so once per node and detector) becomes its notice, verbatim;
- loop runs: `hiveops.loop.failed|recovered` (the loops' own hooks: the first failure of an
  episode and the first success after it) likewise, within seconds even for a run the scheduler
  made moments before (Prefect's own events of such runs are held up to 15 min);
- crashes: a Prefect `prefect.flow-run.Crashed` of a hiveops deployment (the process died, so no
  hook ran);
- staleness, one per loop: no `hiveops.loop.completed` within stale_factor x its interval since
  the last one (once per silent spell).
Installing again updates everything in place (matched by name): no duplicates.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from models.notices import (
    FIRED_EVENT,
    LOOP_COMPLETED_EVENT,
    LOOP_FAILED_EVENT,
    LOOP_RECOVERED_EVENT,
    RESOLVED_EVENT,
)
from models.notify import check_notify_url, is_plain_webhook, redact
from models.orchestration import OrchestrationConfig, orchestration_of
from models.settings import ConfigError, load_settings

BLOCK_NAME = "hiveops-webhook"
NOTIFY_PREFIX = "hiveops-notify-"
PREFIX = "hiveops: "
FINDINGS_NAME = f"{PREFIX}finding fired or resolved"
LOOP_RUNS_NAME = f"{PREFIX}loop failed or recovered"
CRASH_NAME = f"{PREFIX}run crashed"
CRASHED_EVENTS = {"prefect.flow-run.Crashed"}
EVENT_SUBJECT = "{{ event.payload.subject }}"
EVENT_BODY = "{{ event.payload.body }}"


def stale_name(loop: str) -> str:
    return f"{PREFIX}{loop} stale"


def _notify_all(block_ids: Sequence[UUID], subject: str, body: str) -> list[Any]:
    from prefect.automations import SendNotification

    return [SendNotification(block_document_id=b, subject=subject, body=body) for b in block_ids]


def notice_automation(name: str, events: set[str], block_ids: Sequence[UUID]) -> Any:
    """Every hiveops notice event of these kinds, delivered as written (hiveops wrote the text
    and sent it only on a transition, so no counting or windows are needed here)."""
    from prefect.automations import AutomationCore, EventTrigger, Posture

    return AutomationCore(
        name=name,
        description=f"Deliver hiveops notices ({', '.join(sorted(events))}).",
        tags=["hiveops"],
        trigger=EventTrigger(
            expect=events,
            match={"prefect.resource.id": "hiveops.*"},
            posture=Posture.Reactive,
            threshold=1,
            within=timedelta(0),
        ),
        actions=_notify_all(block_ids, EVENT_SUBJECT, EVENT_BODY),
    )


def crash_automation(block_ids: Sequence[UUID]) -> Any:
    """A run of a deployment tagged `hiveops` that crashed: its process died before its hooks."""
    from prefect.automations import AutomationCore, EventTrigger, Posture

    return AutomationCore(
        name=CRASH_NAME,
        description="A hiveops loop run crashed (its process died or could not start).",
        tags=["hiveops"],
        trigger=EventTrigger(
            expect=CRASHED_EVENTS,
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related=[
                {"prefect.resource.role": "deployment"},
                {"prefect.resource.id": "prefect.tag.hiveops"},
            ],
            posture=Posture.Reactive,
            threshold=1,
            within=timedelta(0),
        ),
        actions=_notify_all(
            block_ids,
            "hiveops: {{ flow.name }} run {{ flow_run.state.name }}",
            (
                "Loop {{ flow.name }} (deployment {{ deployment.name }}): run {{ flow_run.name }}"
                " ({{ flow_run.id }}) is {{ flow_run.state.name }}: {{ flow_run.state.message }}"
                "\nFix: its process died (killed, out of memory, host restart) or could not "
                "import the flow; check `hiveops service status` and the Prefect server log."
            ),
        ),
    )


def stale_automation(loop: str, config: OrchestrationConfig, block_ids: Sequence[UUID]) -> Any:
    """Fires when loop `<loop>` has sent no `hiveops.loop.completed` for `stale_after_s`.

    `after` and `expect` are both that event, bucketed per resource: every completion restarts
    the window, so the alert comes `stale_after_s` after the last success; once fired, the
    bucket is gone until the next completion, so a silent spell is announced once (without
    `for_each`, Prefect re-creates the bucket at every evaluation and repeats the alert every
    window). A loop that never completed has no bucket and no alert here: the watchdog reports
    it (`never_ran`), and the dead man's switch reports a watchdog that is not running.
    """
    from prefect.automations import AutomationCore, EventTrigger, Posture

    window_s = config.stale_after_s(loop)
    schedule = config.schedule(loop).describe()
    return AutomationCore(
        name=stale_name(loop),
        description=f"No completed {loop} run within {window_s}s (scheduled {schedule}).",
        tags=["hiveops"],
        trigger=EventTrigger(
            after={LOOP_COMPLETED_EVENT},
            expect={LOOP_COMPLETED_EVENT},
            match={"prefect.resource.id": f"hiveops.loop.{loop}"},
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=window_s),
        ),
        actions=_notify_all(
            block_ids,
            f"hiveops: {loop} is stale",
            (
                f"Loop {loop}: no completed run of deployment {loop} in the last {window_s}s "
                f"({config.stale_factor:g}x the longest wait of its schedule, {schedule}).\n"
                f"Fix: is the scheduler running (`hiveops service status`; `hiveops serve` or the "
                f"worker)? Is deployment {loop} paused? `hiveops run {loop} --config "
                f"hiveops.toml` runs it once and shows its error."
            ),
        ),
    )


def desired_automations(config: OrchestrationConfig, block_ids: Sequence[UUID]) -> list[Any]:
    return [
        notice_automation(FINDINGS_NAME, {FIRED_EVENT, RESOLVED_EVENT}, block_ids),
        notice_automation(LOOP_RUNS_NAME, {LOOP_FAILED_EVENT, LOOP_RECOVERED_EVENT}, block_ids),
        crash_automation(block_ids),
    ] + [stale_automation(loop, config, block_ids) for loop in config.loops]


def check_webhook_url(url: str | None) -> str | None:
    if url is not None and not is_plain_webhook(url):
        raise ConfigError(
            f"webhook URL {url!r} must start with http:// or https:// (for Telegram, Slack, "
            f"e-mail, ntfy, ... use --notify with an apprise URL)"
        )
    return url


def check_targets(notify: Sequence[str]) -> list[str]:
    """Every --notify URL checked before anything is saved; all problems named at once."""
    good, problems = [], []
    for url in notify:
        try:
            good.append(check_notify_url(url))
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError("\n".join(problems))
    return good


def target_block(url: str) -> Any:
    """The notification block for one target URL."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock, SlackWebhook

    if is_plain_webhook(url):
        return CustomWebhookNotificationBlock(
            name="hiveops",
            url=url,
            method="POST",
            json_data={"subject": "{{subject}}", "body": "{{body}}", "source": "hiveops"},
            timeout=10,
        )
    return SlackWebhook(url=url, notify_type="warning")


def save_webhook_block(url: str) -> UUID:
    """Create or overwrite the `hiveops-webhook` block (the plain JSON webhook)."""
    return target_block(url).save(BLOCK_NAME, overwrite=True)


def _hiveops_blocks(client: Any) -> dict[str, UUID]:
    """Saved hiveops target blocks by name."""
    return {
        b.name: b.id
        for b in client.read_block_documents()
        if b.name and (b.name == BLOCK_NAME or b.name.startswith(NOTIFY_PREFIX))
    }


def save_targets(client: Any, webhook_url: str | None, notify: Sequence[str]) -> list[UUID]:
    """Blocks for the given targets (replacing earlier hiveops-notify-* ones when --notify is
    given); with none given, the blocks saved by an earlier install."""
    existing = _hiveops_blocks(client)
    ids: list[UUID] = []
    if webhook_url:
        ids.append(save_webhook_block(webhook_url))
    elif BLOCK_NAME in existing:
        ids.append(existing[BLOCK_NAME])
    if notify:
        for i, url in enumerate(notify):
            ids.append(target_block(url).save(f"{NOTIFY_PREFIX}{i + 1}", overwrite=True))
        for name, block_id in existing.items():
            if name.startswith(NOTIFY_PREFIX) and int(name.removeprefix(NOTIFY_PREFIX)) > len(
                notify
            ):
                client.delete_block_document(block_id)
    else:
        ids += [block_id for name, block_id in sorted(existing.items()) if name != BLOCK_NAME]
    return ids


def _hiveops_automations(client: Any) -> list[Any]:
    return [a for a in client.read_automations() if a.name.startswith(PREFIX)]


def install_alerts(
    config: OrchestrationConfig,
    webhook_url: str | None = None,
    notify: Sequence[str] = (),
) -> dict[str, str]:
    """Create or update the target blocks and the automations; remove hiveops automations no
    longer wanted (a loop dropped from `orchestration.loops`). Returns {name: action}."""
    from prefect.client.orchestration import get_client

    url = check_webhook_url(webhook_url or config.webhook_url)
    targets = check_targets(list(notify) or list(config.notify_urls))
    done: dict[str, str] = {}
    with get_client(sync_client=True) as client:
        block_ids = save_targets(client, url, targets)
        if not block_ids:
            raise ConfigError(
                "no alert target: pass --notify URL (apprise: tgram://, slack://, discord://, "
                "mailto://, ntfy://, ...) or --webhook URL, or set orchestration.notify_urls / "
                "orchestration.webhook_url in the config"
            )
        existing: dict[str, list[Any]] = {}
        for automation in _hiveops_automations(client):
            existing.setdefault(automation.name, []).append(automation)
        for wanted in desired_automations(config, block_ids):
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


def list_targets() -> list[str]:
    """The saved target blocks, redacted (names and where they deliver)."""
    from prefect.blocks.core import Block
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        names = sorted(_hiveops_blocks(client))
    rows = []
    for name in names:
        block: Any = Block.load(name if "/" in name else _slug_name(name))
        url = getattr(block, "url", None)
        text = url.get_secret_value() if hasattr(url, "get_secret_value") else str(url)
        rows.append(f"{name}: {redact(text)}")
    return rows


def _slug_name(name: str) -> str:
    return f"{'custom-webhook' if name == BLOCK_NAME else 'slack-webhook'}/{name}"


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
                    "targets": len(a.actions),
                    "id": str(a.id),
                }
            )
        return rows


def remove_alerts() -> int:
    """Delete every hiveops automation (the target blocks stay)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        found = _hiveops_automations(client)
        for automation in found:
            client.delete_automation(automation.id)
    return len(found)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="alerts_command", required=True)
    install = sub.add_parser("install", help="create or update the alert targets and automations")
    install.add_argument("--config", type=Path)
    install.add_argument(
        "--notify",
        action="append",
        default=[],
        metavar="URL",
        help="apprise URL (tgram://, slack://, discord://, mailto://, ntfy://, json://, ...); "
        "repeat for several targets (default: orchestration.notify_urls)",
    )
    install.add_argument(
        "--webhook", help="plain JSON webhook URL (default: orchestration.webhook_url)"
    )
    listing = sub.add_parser("list", help="show the installed hiveops automations and targets")
    listing.add_argument("--config", type=Path)
    remove = sub.add_parser("remove", help="delete the hiveops automations")
    remove.add_argument("--config", type=Path)


def run_from_args(args: argparse.Namespace) -> int:
    """Talks to PREFECT_API_URL, or to a local server started for the command (same database
    as `hiveops serve` uses, so what is installed here is active when serve runs)."""
    from hiveops.serve import exit_on_sigterm, prefect_api

    config = orchestration_of(load_settings(args.config))
    check_webhook_url(getattr(args, "webhook", None))
    check_targets(getattr(args, "notify", []))  # before a server is started for nothing
    with exit_on_sigterm(), prefect_api(announce=False):
        if args.alerts_command == "install":
            for name, action in install_alerts(config, args.webhook, args.notify).items():
                print(f"{action:8} {name}")
            for row in list_targets():
                print(f"target   {row}")
        elif args.alerts_command == "list":
            rows = list_alerts()
            for r in rows:
                state = "on " if r["enabled"] else "off"
                print(
                    f"{state} {r['posture']:<10} {r['within_s']:>7}s {r['targets']} target(s)  "
                    f"{r['name']}  ({r['id']})"
                )
            if not rows:
                print("no hiveops automations; run `hiveops alerts install`")
            for row in list_targets():
                print(f"target {row}")
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
