-- Named queries of the fee loop.

-- name: channels
SELECT node_id, scid, peer_id, is_fleet, capacity_msat, local_msat,
       coalesce(fee_base_msat, 0) AS base_fee_msat, coalesce(fee_ppm, 0) AS fee_ppm, taken_at
FROM channel_latest
WHERE node_id = $node_id AND state = 'CHANNELD_NORMAL';

-- name: first_seen
SELECT scid, min(taken_at) AS first_seen_at
FROM channel_snapshots WHERE node_id = $node_id GROUP BY scid;

-- name: forwards
SELECT in_channel, out_channel, in_msat, out_msat, fee_msat, status, resolved_at
FROM forwards
WHERE node_id = $node_id AND status = 'settled' AND resolved_at >= $since;

-- name: refill_demand
-- Per channel since $since: forwards CLN failed locally asking to leave through it (demand
-- waiting for liquidity) and its settled net outflow (how fast it sells what it holds).
WITH flows AS (
    SELECT out_channel AS scid, status = 'local_failed' AS missed,
           CASE WHEN status = 'settled' THEN coalesce(out_msat, 0) ELSE 0 END AS out_msat,
           0 AS in_msat, coalesce(out_msat, in_msat, 0) AS asked_msat
    FROM forwards
    WHERE node_id = $node_id AND out_channel IS NOT NULL
      AND status IN ('settled', 'local_failed') AND coalesce(resolved_at, received_at) >= $since
    UNION ALL
    SELECT in_channel, false, 0, coalesce(in_msat, 0), 0
    FROM forwards
    WHERE node_id = $node_id AND in_channel IS NOT NULL AND status = 'settled'
      AND resolved_at >= $since
)
SELECT scid, count(*) FILTER (WHERE missed) AS missed_forwards,
       coalesce(sum(asked_msat) FILTER (WHERE missed), 0)::BIGINT AS missed_msat,
       (sum(out_msat) - sum(in_msat))::BIGINT AS net_outflow_msat
FROM flows
GROUP BY scid;

-- name: refill_quotes
-- The rebalance loop's latest gossip quote for the cheapest circular route back into each
-- channel (its skips and its attempts both carry one): what refilling the channel costs.
WITH quotes AS (
    SELECT scid, decided_at AS quoted_at,
           try_cast(json_extract_string(inputs, '$.route_ppm') AS BIGINT) AS route_ppm
    FROM rebalance_skips
    WHERE node_id = $node_id AND decided_at >= $since
    UNION ALL
    SELECT dest_scid, proposed_at,
           try_cast(json_extract_string(inputs, '$.evaluation.route_ppm') AS BIGINT)
    FROM rebalance_attempts
    WHERE node_id = $node_id AND proposed_at >= $since
)
SELECT scid, arg_max(route_ppm, quoted_at) AS route_ppm, max(quoted_at) AS quoted_at
FROM quotes
WHERE route_ppm IS NOT NULL
GROUP BY scid;

-- name: changes
-- hiveops' applied changes and, as the level in force from the snapshot that saw them, fee_ppm
-- changes made outside hiveops (external_changes, reason 'external'): otherwise the traffic
-- after an operator's setchannel is credited to hiveops' last fee.
SELECT scid, changed_at, new_ppm, reason, change_id, predicted_benefit_msat
FROM fee_changes
WHERE node_id = $node_id AND status = 'applied'
UNION ALL
SELECT scid, detected_at AS changed_at, new_value::INTEGER AS new_ppm, 'external' AS reason,
       'external:' || scid || ':' || epoch(detected_at)::BIGINT AS change_id,
       0::BIGINT AS predicted_benefit_msat
FROM external_changes
WHERE node_id = $node_id AND field = 'fee_ppm';

-- name: peer_policies
SELECT scid, direction, last_update, source_id, peer_id, is_ours, base_fee_msat,
       fee_ppm::BIGINT AS fee_ppm, active
FROM peer_fee_policies
WHERE observer_id = $node_id
QUALIFY row_number() OVER (PARTITION BY scid, direction ORDER BY last_update DESC) = 1;

-- name: policies
SELECT policy_id, kind, peer_id, scid, base_fee_msat, fee_ppm, min_fee_ppm, max_fee_ppm, expires_at,
       created_at, note
FROM fee_policies;

-- name: insert_decisions
INSERT INTO fee_decisions BY NAME SELECT * FROM staged;

-- name: insert_changes
INSERT INTO fee_changes BY NAME SELECT * FROM staged;

-- name: finish_change
UPDATE fee_changes SET status = $status, error = $error WHERE change_id = $change_id;

-- name: pending_changes
-- Changes whose setchannel outcome no run recorded (the run died, or the answer was lost).
SELECT change_id, scid, old_base_fee_msat, old_fee_ppm, new_base_fee_msat, new_fee_ppm
FROM fee_changes WHERE node_id = $node_id AND status = 'pending' ORDER BY changed_at;

-- name: settle_change
UPDATE fee_changes SET status = $status, error = $error
WHERE change_id = $change_id AND status = 'pending';

-- name: upsert_policy
INSERT OR REPLACE INTO fee_policies BY NAME SELECT * FROM staged;

-- name: delete_policy
DELETE FROM fee_policies WHERE policy_id = $policy_id;

-- name: list_policies
SELECT policy_id, kind, peer_id, scid, base_fee_msat, fee_ppm, min_fee_ppm, max_fee_ppm,
       expires_at, created_at, note
FROM fee_policies
ORDER BY policy_id;

-- name: unmeasured_changes
-- Applied changes whose evaluation window has closed and that have no outcome yet.
SELECT c.scid, c.changed_at, c.new_ppm, c.reason, c.change_id, c.predicted_benefit_msat,
       c.evaluation_window_s
FROM fee_changes c
ANTI JOIN fee_outcomes o USING (change_id)
WHERE c.node_id = $node_id AND c.status = 'applied'
  AND c.changed_at + to_seconds(c.evaluation_window_s) <= $now;

-- name: all_changes
-- External fee changes cut the outcome windows of hiveops' changes like any other change.
SELECT scid, changed_at, new_ppm, reason, change_id, predicted_benefit_msat
FROM fee_changes WHERE node_id = $node_id AND status = 'applied'
UNION ALL
SELECT scid, detected_at AS changed_at, new_value::INTEGER AS new_ppm, 'external' AS reason,
       'external:' || scid || ':' || epoch(detected_at)::BIGINT AS change_id,
       0::BIGINT AS predicted_benefit_msat
FROM external_changes
WHERE node_id = $node_id AND field = 'fee_ppm';

-- name: node_scids
SELECT DISTINCT scid FROM channel_snapshots WHERE node_id = $node_id;

-- name: insert_outcomes
INSERT OR IGNORE INTO fee_outcomes BY NAME SELECT * FROM staged;

-- name: outcome_methods
-- Fee outcomes by status and measuring method (demo and operators): a wall of
-- insufficient_data, or measured values that are all 0, means nothing is being learned.
SELECT status, coalesce(method, '-') AS method, count(*) AS outcomes,
       count(*) FILTER (WHERE actual_benefit_msat = 0) AS zero,
       count(*) FILTER (WHERE actual_benefit_msat > 0) AS helped,
       coalesce(sum(actual_benefit_msat), 0)::BIGINT AS net_benefit_msat
FROM fee_outcomes
GROUP BY ALL
ORDER BY status, method;
