-- Named queries of the self-audit report: the frames its detectors judge, and its own records.
-- Reads take $now (a simulated clock replays the past) and, when windowed, $since; the report
-- task passes only the parameters a query mentions.

-- name: tables
SELECT table_name FROM information_schema.tables WHERE table_schema = 'main';

-- name: freshness
SELECT loop, node,
       max(finished_at) FILTER (WHERE status = 'ok') AS last_ok_at,
       max(started_at) AS last_started_at,
       count(*) FILTER (WHERE status = 'failed')::BIGINT AS failed_runs,
       count(*)::BIGINT AS runs
FROM heartbeats
WHERE started_at <= $now
GROUP BY ALL
ORDER BY loop, node;

-- name: first_heartbeat
SELECT min(started_at) AS first_at FROM heartbeats WHERE started_at <= $now;

-- name: heartbeats
SELECT loop, node, run_id, started_at, finished_at, status, detail
FROM heartbeats
WHERE started_at >= $since AND started_at <= $now
ORDER BY started_at;

-- name: alerts
-- The report's own alerts are left out: they restate findings, they are not new failures.
SELECT alert_id, raised_at, loop, node, kind, severity, message, resolved_at
FROM alerts
WHERE raised_at >= $since AND raised_at <= $now AND loop <> 'report'
ORDER BY raised_at;

-- name: node_snapshots
SELECT coalesce(n.name, s.node_id) AS node_name, s.node_id, s.taken_at, s.num_channels,
       s.capacity_msat, s.local_msat, s.remote_msat
FROM node_snapshots s
LEFT JOIN nodes n USING (node_id)
WHERE s.taken_at >= $since AND s.taken_at <= $now
ORDER BY s.taken_at;

-- name: node_status
SELECT n.name AS node_name, n.node_id, n.is_fleet, s.taken_at, s.num_channels,
       s.capacity_msat, s.local_msat, s.remote_msat, s.onchain_msat
FROM nodes n
LEFT JOIN (
    SELECT * FROM node_snapshots WHERE taken_at <= $now
    QUALIFY row_number() OVER (PARTITION BY node_id ORDER BY taken_at DESC) = 1
) s USING (node_id)
ORDER BY n.name;

-- name: channels
-- Each node's channels in its latest snapshot, with when each was first seen, its last settled
-- forward (either direction) and its last applied fee change.
WITH latest AS (
    SELECT node_id, max(taken_at) AS taken_at FROM channel_snapshots
    WHERE taken_at <= $now GROUP BY node_id
), first AS (
    SELECT node_id, scid, min(taken_at) AS first_seen_at FROM channel_snapshots
    WHERE taken_at <= $now GROUP BY ALL
), fwd AS (
    SELECT node_id, scid, max(resolved_at) AS last_forward_at
    FROM (SELECT node_id, out_channel AS scid, resolved_at FROM forwards
          WHERE status = 'settled' AND resolved_at <= $now
          UNION ALL
          SELECT node_id, in_channel AS scid, resolved_at FROM forwards
          WHERE status = 'settled' AND resolved_at <= $now)
    GROUP BY ALL
), chg AS (
    SELECT node_id, scid, max(changed_at) AS last_fee_change_at FROM fee_changes
    WHERE status = 'applied' AND changed_at <= $now GROUP BY ALL
)
SELECT coalesce(n.name, c.node_id) AS node_name, c.node_id, c.scid, c.peer_id, c.state,
       c.is_fleet, c.capacity_msat, c.local_msat,
       c.local_msat::DOUBLE / c.capacity_msat AS local_share,
       c.fee_base_msat, c.fee_ppm, c.taken_at, f.first_seen_at, w.last_forward_at,
       g.last_fee_change_at
FROM channel_snapshots c
JOIN latest USING (node_id, taken_at)
JOIN first f USING (node_id, scid)
LEFT JOIN fwd w USING (node_id, scid)
LEFT JOIN chg g USING (node_id, scid)
LEFT JOIN nodes n USING (node_id)
ORDER BY node_name, c.scid;

-- name: fleet_member_ids
SELECT node_id, name FROM fleet_members WHERE is_active;

-- name: rebalance_attempts
SELECT coalesce(n.name, a.node_id) AS node_name, a.node_id, a.attempt_id, a.purpose,
       a.amount_msat, a.state, a.proposed_at, a.finished_at, a.fee_msat, a.failure_reason,
       a.dry_run
FROM rebalance_attempts a
LEFT JOIN nodes n USING (node_id)
WHERE a.proposed_at >= $since AND a.proposed_at <= $now
ORDER BY a.proposed_at;

-- name: rebalance_costs
SELECT coalesce(n.name, a.node_id) AS node_name, a.node_id,
       CAST(coalesce(a.finished_at, a.proposed_at) AS DATE) AS day,
       sum(a.fee_msat)::BIGINT AS rebalance_cost_msat
FROM rebalance_attempts a
LEFT JOIN nodes n USING (node_id)
WHERE a.fee_msat IS NOT NULL AND NOT a.dry_run
  AND coalesce(a.finished_at, a.proposed_at) <= $now
GROUP BY ALL;

-- name: advisor_decisions
SELECT decision_id, decided_at, node_id, opportunity_type, target, mode, state, answered_at,
       snapshot_metrics::VARCHAR AS snapshot_metrics, raw_estimate_msat,
       predicted_benefit_msat, benefit_reason, prior_rejections
FROM advisor_decisions
WHERE decided_at >= $since AND decided_at <= $now
ORDER BY decided_at;

-- name: budget_rows
-- The ledger's days beside what settled forwards earned those days (the audit's all-zero table).
SELECT coalesce(n.name, b.node_id) AS node_name, b.node_id, b.day, b.budget_msat,
       b.earned_msat, b.rebalance_spent_msat, b.onchain_spent_msat, b.reserved_msat,
       coalesce(r.fees_msat, 0)::BIGINT AS forwards_earned_msat
FROM budget_ledger b
LEFT JOIN nodes n USING (node_id)
LEFT JOIN daily_revenue r ON r.node_id = b.node_id AND r.day = b.day
WHERE b.day >= CAST($since AS DATE) AND b.day <= CAST($now AS DATE)
ORDER BY b.day, node_name;

-- name: fee_outcomes
SELECT change_id, node_id, scid, measured_at, status, actual_benefit_msat,
       predicted_benefit_msat, detail
FROM fee_outcomes
WHERE measured_at >= $since AND measured_at <= $now;

-- name: member_health
-- Each member's latest score and since when it has been in that tier.
WITH h AS (SELECT * FROM fleet_member_health WHERE measured_at <= $now),
latest AS (
    SELECT * FROM h QUALIFY row_number() OVER (PARTITION BY node_id ORDER BY measured_at DESC) = 1
), left_tier AS (
    SELECT h.node_id, max(h.measured_at) AS left_at
    FROM h JOIN latest l ON l.node_id = h.node_id AND h.tier <> l.tier
    GROUP BY h.node_id
)
SELECT l.node_id, l.name, l.tier, l.health_score, l.needs_help, l.measured_at,
       l.capacity_msat, l.local_msat,
       (SELECT min(x.measured_at) FROM h x
        WHERE x.node_id = l.node_id AND x.tier = l.tier
          AND x.measured_at > coalesce(t.left_at, '-infinity'::TIMESTAMPTZ)) AS tier_since
FROM latest l
LEFT JOIN left_tier t USING (node_id)
ORDER BY l.name;

-- name: assistance
SELECT assistance_id, node_id, member_name, kind, state, result, requested_at, closed_at,
       reason, decision_note
FROM fleet_assistance
WHERE requested_at >= $since AND requested_at <= $now
ORDER BY requested_at;

-- name: contribution
SELECT node_id, name, measured_at, window_start, cycles_expected, cycles_up, uptime_pct,
       forwarded_for_members_msat, forwarded_by_members_msat, assist_given_msat,
       assist_received_msat, contribution_ratio
FROM fleet_contribution
WHERE measured_at <= $now
QUALIFY row_number() OVER (PARTITION BY node_id ORDER BY measured_at DESC) = 1
ORDER BY name;

-- name: pnl_daily
-- Revenue and on-chain costs per node per day from bookkeeper (the ledger) for nodes that have
-- it, from settled forwards and onchain_costs for those that do not; rebalance fees come from
-- rebalance_costs.
WITH booked AS (
    SELECT DISTINCT node_id FROM bkpr_income
), rev AS (
    SELECT node_id, CAST(resolved_at AS DATE) AS day, sum(fee_msat)::BIGINT AS revenue_msat,
           count(*)::BIGINT AS forwards
    FROM forwards WHERE status = 'settled' AND resolved_at <= $now GROUP BY ALL
), chain AS (
    SELECT node_id, CAST(occurred_at AS DATE) AS day, sum(amount_msat)::BIGINT AS onchain_cost_msat
    FROM onchain_costs WHERE occurred_at <= $now
      AND node_id NOT IN (SELECT node_id FROM booked)
    GROUP BY ALL
), ledger AS (
    SELECT node_id, CAST(occurred_at AS DATE) AS day,
           sum(credit_msat - debit_msat) FILTER (WHERE tag = 'routed')::BIGINT AS routed_msat,
           sum(debit_msat - credit_msat) FILTER (WHERE tag = 'onchain_fee')::BIGINT
               AS onchain_cost_msat
    FROM bkpr_income WHERE occurred_at <= $now AND tag IN ('routed', 'onchain_fee')
    GROUP BY ALL
), merged AS (
    SELECT node_id, day,
           CASE WHEN node_id IN (SELECT node_id FROM booked) THEN coalesce(l.routed_msat, 0)
                ELSE coalesce(r.revenue_msat, 0) END AS revenue_msat,
           coalesce(r.forwards, 0) AS forwards,
           coalesce(l.onchain_cost_msat, c.onchain_cost_msat, 0) AS onchain_cost_msat
    FROM rev r
    FULL OUTER JOIN ledger l USING (node_id, day)
    FULL OUTER JOIN chain c USING (node_id, day)
)
SELECT coalesce(n.name, node_id) AS node_name, node_id, day,
       revenue_msat::BIGINT AS revenue_msat, forwards::BIGINT AS forwards,
       onchain_cost_msat::BIGINT AS onchain_cost_msat
FROM merged m
LEFT JOIN nodes n USING (node_id)
ORDER BY day, node_name;

-- name: insert_run
INSERT OR REPLACE INTO report_runs BY NAME SELECT * FROM staged;

-- name: insert_findings
INSERT OR REPLACE INTO report_findings BY NAME SELECT * FROM staged;

-- name: latest_run
-- Where the newest report is (the demo and operators print it).
SELECT run_id, generated_at, report_dir, detectors, fired, not_measurable
FROM report_runs
ORDER BY generated_at DESC
LIMIT 1;

-- name: reconciliation
-- Forwards and sling against bookkeeper per node-day, for the days both sides are complete.
WITH last_collect AS (
    SELECT n.node_id, max(h.started_at) AS at
    FROM heartbeats h JOIN nodes n ON n.name = h.node
    WHERE h.loop = 'collect' AND h.status = 'ok' AND h.started_at <= $now
    GROUP BY ALL
), open_attempts AS (
    SELECT node_id, min(coalesce(started_at, proposed_at)) AS at
    FROM rebalance_attempts WHERE state IN ('reserved', 'running') AND proposed_at <= $now
    GROUP BY ALL
), booked AS (
    SELECT node_id, min(occurred_at) AS first_at FROM bkpr_income GROUP BY ALL
)
SELECT coalesce(n.name, r.node_id) AS node_name, r.*
FROM ledger_reconciliation r
JOIN last_collect c USING (node_id)
JOIN booked b USING (node_id)
LEFT JOIN open_attempts o USING (node_id)
LEFT JOIN nodes n USING (node_id)
WHERE r.day < CAST(c.at AS DATE)
  AND (o.at IS NULL OR r.day < CAST(o.at AS DATE))
ORDER BY r.day, node_name;

-- name: external_changes
SELECT coalesce(n.name, e.node_id) AS node_name, e.*
FROM external_changes e LEFT JOIN nodes n USING (node_id)
WHERE e.detected_at >= $since AND e.detected_at <= $now
ORDER BY e.detected_at;

-- name: channel_returns
-- Per channel over the report's history window: revenue, costs, return on capacity.
WITH w AS (
    SELECT * FROM channel_returns
    WHERE period_start >= CAST(date_trunc('week', CAST($since AS TIMESTAMPTZ)) AS DATE)
      AND period_start <= CAST($now AS DATE)
)
SELECT coalesce(n.name, w.node_id) AS node_name, w.node_id, w.scid,
       sum(w.revenue_msat)::BIGINT AS revenue_msat, sum(w.cost_msat)::BIGINT AS cost_msat,
       sum(w.net_msat)::BIGINT AS net_msat, avg(w.capacity_msat)::BIGINT AS capacity_msat,
       sum(w.days_seen)::BIGINT AS days_seen,
       sum(w.net_msat) / avg(w.capacity_msat) * 365.0 / greatest(sum(w.days_seen), 1) * 100
           AS annualised_pct,
       max(w.bkpr_apy_total_pct) AS bkpr_apy_total_pct, min(w.source) AS source
FROM w LEFT JOIN nodes n USING (node_id)
GROUP BY ALL
ORDER BY annualised_pct DESC;
