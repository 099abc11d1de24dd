"""`hiveops approve ID`, `hiveops reject ID --reason TEXT`, `hiveops approvals list`.

The answer is written to the warehouse first (so it counts even if no flow run is waiting);
then, if an advisor-execute run is paused on this decision, it is resumed with the same answer
and carries the action out.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import UTC, datetime
from pathlib import Path

from models.advisor import advisor_config
from models.settings import load_settings
from tasks.advisor import DecisionNotFound, find_decision, record_answer
from warehouse import db


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    for name, help_text in (
        ("approve", "approve an advisor decision waiting for approval"),
        ("reject", "reject an advisor decision (starts a growing cooldown for its target)"),
    ):
        cmd = sub.add_parser(name, help=help_text)
        cmd.add_argument("decision_id", help="the decision id (or a unique prefix, 4+ chars)")
        cmd.add_argument("--reason", required=name == "reject", default="")
        cmd.add_argument("--by", default=None, help="who answers (default: the login name)")
        cmd.add_argument("--config", type=Path)
        cmd.add_argument("--now", type=float, help="unix time to use as now (simulated clocks)")
        cmd.set_defaults(handler=run_answer, approved=name == "approve")
    approvals = sub.add_parser("approvals", help="advisor decisions waiting for an answer")
    asub = approvals.add_subparsers(dest="approvals_command", required=True)
    listing = asub.add_parser("list")
    listing.add_argument("--config", type=Path)
    listing.set_defaults(handler=run_list)


def run_answer(args: argparse.Namespace) -> int:
    return answer(
        args.decision_id,
        approved=args.approved,
        reason=args.reason,
        by=args.by,
        config=args.config,
        now=args.now,
    )


def answer(
    decision_id: str,
    *,
    approved: bool,
    reason: str = "",
    by: str | None = None,
    config: str | Path | None = None,
    now: float | None = None,
) -> int:
    """Record the answer and resume a waiting flow run; 0 done, 1 not pending, 2 bad input."""
    settings = load_settings(config)
    at = datetime.fromtimestamp(now, tz=UTC) if now is not None else datetime.now(UTC)
    who = by or _login()
    verb = "approve" if approved else "reject"
    try:
        decision = find_decision(settings.warehouse_path, decision_id)
        changed = record_answer(
            settings.warehouse_path,
            decision["decision_id"],
            approved=approved,
            reason=reason,
            by=who,
            at=at,
            config=advisor_config(settings),
        )
    except (DecisionNotFound, ValueError) as exc:
        print(f"hiveops {verb}: {exc}", file=sys.stderr)
        return 2
    full_id = decision["decision_id"]
    if not changed:
        print(
            f"hiveops {verb}: decision {full_id} is {decision['state']}, not pending_approval; "
            f"nothing changed",
            file=sys.stderr,
        )
        return 1
    db.release_all()  # hand the warehouse to the resumed run at once
    resumed = _resume(decision.get("approval_run_id"), approved, reason, who)
    done = "approved" if approved else "rejected"
    print(f"{done} {full_id} ({decision['opportunity_type']} → {decision['target']}); {resumed}")
    return 0


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "operator"


def _resume(run_id: str | None, approved: bool, reason: str, who: str) -> str:
    """Resume the paused advisor-execute run for this decision, if there is one."""
    if not run_id:
        return "no run is waiting: the next advisor run acts on it"
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.flow_runs import resume_flow_run

    try:
        flow_run_id = UUID(run_id)
    except ValueError:
        return f"run {run_id} is not a Prefect flow run: the next advisor run acts on it"
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(flow_run_id)
    if flow_run.state is None or not flow_run.state.is_paused():
        state = flow_run.state.name if flow_run.state else "unknown"
        return f"run {run_id} is {state}, not paused: the next advisor run acts on it"
    resume_flow_run(
        flow_run_id, run_input={"approved": approved, "reason": reason, "reviewer": who}
    )
    return f"resumed flow run {run_id}"


def run_list(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    with db.reader(settings.warehouse_path) as con:
        rows = db.fetch_all(con, "advisor.pending")
    if not rows:
        print("no advisor decision is waiting for approval")
        return 0
    for r in rows:
        print(
            f"{r['decision_id'][:12]}  {r['opportunity_type']:<16} {r['target'][:24]:<24} "
            f"{r['predicted_benefit_msat'] // 1000:>9} sat  conf {r['confidence']:.2f}  "
            f"expires {r['expires_at']:%Y-%m-%d %H:%M}  "
            f"{'run ' + r['approval_run_id'][:8] if r['approval_run_id'] else 'no run waiting'}"
        )
        print(f"    {r['benefit_reason']}")
    return 0
