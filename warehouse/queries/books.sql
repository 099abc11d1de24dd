-- Named queries of the books (issue #19): bookkeeper ingest, external changes, reconciliation,
-- per-channel returns, action outcomes. Staged frames are registered as `staged`.

-- name: income_high_water
SELECT coalesce(max(epoch(occurred_at)), 0)::BIGINT AS last_timestamp
FROM bkpr_income WHERE node_id = $node_id;

-- name: replace_income_after
-- The read covers start < t: what is stored after `start` is replaced by it.
DELETE FROM bkpr_income WHERE node_id = $node_id AND occurred_at > to_timestamp($start);

-- name: insert_income
INSERT INTO bkpr_income BY NAME SELECT * FROM staged;

-- name: insert_accounts
-- CLN lists a channel without a short_channel_id until it locks in: fill it in when it appears.
INSERT INTO bkpr_accounts BY NAME SELECT * FROM staged
ON CONFLICT (node_id, account) DO UPDATE SET
    scid = coalesce(excluded.scid, bkpr_accounts.scid),
    peer_id = coalesce(excluded.peer_id, bkpr_accounts.peer_id);

-- name: insert_channel_apy
INSERT OR IGNORE INTO bkpr_channel_apy BY NAME SELECT * FROM staged;

-- name: detect_external_changes
-- Each channel's latest snapshot against the one before it: a fee_ppm, base fee or max-HTLC that
-- moved, with no hiveops fee change applied in between that set exactly that fee, is external.
-- Re-running it finds nothing new (the key is the detecting snapshot).
INSERT OR IGNORE INTO external_changes BY NAME
WITH ranked AS (
    SELECT node_id, scid, taken_at, fee_ppm::BIGINT AS fee_ppm, fee_base_msat, htlc_max_msat,
           row_number() OVER (PARTITION BY scid ORDER BY taken_at DESC) AS k
    FROM channel_snapshots WHERE node_id = $node_id
), pairs AS (
    SELECT cur.node_id, cur.scid, cur.taken_at AS detected_at, prev.taken_at AS previous_at,
           prev.fee_ppm AS old_ppm, cur.fee_ppm AS new_ppm,
           prev.fee_base_msat AS old_base, cur.fee_base_msat AS new_base,
           prev.htlc_max_msat AS old_max, cur.htlc_max_msat AS new_max
    FROM ranked cur JOIN ranked prev ON prev.scid = cur.scid AND prev.k = 2
    WHERE cur.k = 1
), ours AS (
    SELECT p.scid, p.detected_at,
           bool_or(c.new_ppm = p.new_ppm) AS set_ppm,
           bool_or(coalesce(c.new_base_fee_msat, p.new_base) = p.new_base) AS set_base
    FROM pairs p
    JOIN fee_changes c ON c.node_id = p.node_id AND c.scid = p.scid
        AND c.status = 'applied' AND c.changed_at >= p.previous_at AND c.changed_at <= p.detected_at
    GROUP BY ALL
), fields AS (
    SELECT node_id, scid, detected_at, previous_at, 'fee_ppm' AS field, old_ppm AS old_value,
           new_ppm AS new_value FROM pairs WHERE old_ppm IS DISTINCT FROM new_ppm
    UNION ALL
    SELECT node_id, scid, detected_at, previous_at, 'fee_base_msat', old_base, new_base
    FROM pairs WHERE old_base IS DISTINCT FROM new_base
    UNION ALL
    SELECT node_id, scid, detected_at, previous_at, 'htlc_max_msat', old_max, new_max
    FROM pairs WHERE old_max IS DISTINCT FROM new_max
)
SELECT f.node_id, f.scid, f.field, f.detected_at, f.previous_at, f.old_value, f.new_value
FROM fields f
LEFT JOIN ours o USING (scid, detected_at)
WHERE f.old_value IS NOT NULL AND f.new_value IS NOT NULL
  AND NOT (f.field = 'fee_ppm' AND coalesce(o.set_ppm, false))
  AND NOT (f.field = 'fee_base_msat' AND coalesce(o.set_base, false));

-- name: external_changes
SELECT e.*, n.name AS node_name
FROM external_changes e LEFT JOIN nodes n USING (node_id)
WHERE e.detected_at <= $now
ORDER BY e.detected_at;

-- name: reconciliation
-- ledger_reconciliation for the days both sides are complete: before the node's last good
-- collect's day, and before the first rebalance attempt still open.
WITH last_collect AS (
    SELECT n.node_id, max(h.started_at) AS at
    FROM heartbeats h JOIN nodes n ON n.name = h.node
    WHERE h.loop = 'collect' AND h.status = 'ok' AND h.started_at <= $now
    GROUP BY ALL
), open_attempts AS (
    SELECT node_id, min(coalesce(started_at, proposed_at)) AS at
    FROM rebalance_attempts WHERE state IN ('reserved', 'running')
    GROUP BY ALL
)
SELECT r.*, n.name AS node_name
FROM ledger_reconciliation r
JOIN last_collect c USING (node_id)
LEFT JOIN open_attempts o USING (node_id)
LEFT JOIN nodes n USING (node_id)
WHERE r.day < CAST(c.at AS DATE)
  AND (o.at IS NULL OR r.day < CAST(o.at AS DATE))
ORDER BY r.day, n.name;

-- name: channel_returns
SELECT r.*, n.name AS node_name
FROM channel_returns r LEFT JOIN nodes n USING (node_id)
WHERE r.period_start <= CAST($now AS DATE)
ORDER BY r.period_start, n.name, r.scid;

-- name: opens_due
-- Channels opened by an executed advisor decision (or a fleet open proposal) with a horizon
-- that has passed and no outcome row for it yet.
WITH opens AS (
    SELECT d.decision_id AS action_id, d.node_id, d.executed_at AS acted_at,
           d.predicted_benefit_msat, json_extract_string(d.action_params, '$.peer_id') AS peer_id
    FROM advisor_decisions d
    WHERE d.opportunity_type IN ('channel_open', 'fleet_assistance') AND d.action = 'fundchannel'
      AND d.state = 'executed' AND d.executed_at IS NOT NULL
), horizons AS (SELECT unnest([7, 30]) AS horizon_days)
SELECT o.*, h.horizon_days
FROM opens o CROSS JOIN horizons h
ANTI JOIN action_outcomes a ON a.action_type = 'channel_open' AND a.action_id = o.action_id
    AND a.horizon_days = h.horizon_days
WHERE o.node_id = $node_id AND o.acted_at + to_days(h.horizon_days) <= $now;

-- name: closes_due
WITH closes AS (
    SELECT d.decision_id AS action_id, d.node_id, d.executed_at AS acted_at,
           d.predicted_benefit_msat, json_extract_string(d.action_params, '$.scid') AS scid
    FROM advisor_decisions d
    WHERE d.opportunity_type = 'channel_close' AND d.action = 'close'
      AND d.state = 'executed' AND d.executed_at IS NOT NULL
), horizons AS (SELECT unnest([7, 30]) AS horizon_days)
SELECT c.*, h.horizon_days,
       (SELECT s.local_msat FROM channel_snapshots s
        WHERE s.node_id = c.node_id AND s.scid = c.scid AND s.taken_at <= c.acted_at
        ORDER BY s.taken_at DESC LIMIT 1) AS freed_capital_msat
FROM closes c CROSS JOIN horizons h
ANTI JOIN action_outcomes a ON a.action_type = 'channel_close' AND a.action_id = c.action_id
    AND a.horizon_days = h.horizon_days
WHERE c.node_id = $node_id AND c.acted_at + to_days(h.horizon_days) <= $now;

-- name: externals_due
SELECT e.node_id || ':' || e.scid || ':' || e.field || ':' || epoch(e.detected_at)::BIGINT
           AS action_id,
       e.node_id, e.scid, e.detected_at AS acted_at, e.field, e.old_value, e.new_value,
       7 AS horizon_days
FROM external_changes e
ANTI JOIN action_outcomes a ON a.action_type = 'external_change'
    AND a.action_id = e.node_id || ':' || e.scid || ':' || e.field || ':' || epoch(e.detected_at)::BIGINT
WHERE e.node_id = $node_id AND e.detected_at + INTERVAL 7 DAY <= $now;

-- name: channel_ledger
-- A node's per-channel bookkeeper P&L by day (ledger_channel_daily), for outcome windows.
SELECT scid, account, day, routed_msat, rebalance_fee_msat, onchain_fee_msat, net_msat
FROM ledger_channel_daily WHERE node_id = $node_id;

-- name: node_capacity
-- The node's capacity and routing income by day (for the return freed capital would earn).
WITH cap AS (
    SELECT CAST(taken_at AS DATE) AS day, avg(capacity_msat)::BIGINT AS capacity_msat
    FROM node_snapshots WHERE node_id = $node_id GROUP BY ALL
)
SELECT c.day, c.capacity_msat, coalesce(l.routed_msat, 0)::BIGINT AS routed_msat
FROM cap c LEFT JOIN ledger_daily l ON l.node_id = $node_id AND l.day = c.day
ORDER BY c.day;

-- name: channel_accounts_seen
SELECT account, scid, peer_id, first_seen_at FROM bkpr_accounts WHERE node_id = $node_id;

-- name: insert_action_outcomes
INSERT OR IGNORE INTO action_outcomes BY NAME SELECT * FROM staged;

-- name: action_outcomes
SELECT action_type, status, count(*) AS outcomes,
       coalesce(sum(actual_benefit_msat), 0)::BIGINT AS net_benefit_msat
FROM action_outcomes GROUP BY ALL ORDER BY action_type, status;

-- name: count_external
SELECT count(*) AS n FROM external_changes WHERE node_id = $node_id;

-- name: demo_ledger
-- The fleet's P&L from bookkeeper over the run, and how the reconciliation went.
SELECT coalesce(sum(routed_msat), 0)::BIGINT AS routed_msat,
       coalesce(sum(rebalance_fee_msat), 0)::BIGINT AS rebalance_fee_msat,
       coalesce(sum(onchain_fee_msat), 0)::BIGINT AS onchain_fee_msat,
       coalesce(sum(invoice_fee_msat + other_msat + lease_fee_msat + pushed_msat), 0)::BIGINT
           AS other_msat,
       coalesce(sum(net_msat), 0)::BIGINT AS net_msat,
       (SELECT count(*) FROM ledger_reconciliation) AS node_days,
       (SELECT count(*) FROM ledger_reconciliation WHERE routed_diff_msat <> 0) AS routed_mismatch,
       (SELECT count(*) FROM ledger_reconciliation
        WHERE abs(rebalance_diff_msat) > rebalance_tolerance_msat) AS rebalance_mismatch,
       (SELECT count(*) FROM external_changes) AS external_changes
FROM ledger_daily;
