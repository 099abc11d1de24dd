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

-- name: changes
SELECT scid, changed_at, new_ppm, reason, change_id, predicted_benefit_msat
FROM fee_changes
WHERE node_id = $node_id AND status = 'applied';

-- name: peer_policies
SELECT scid, direction, last_update, source_id, peer_id, is_ours, base_fee_msat,
       fee_ppm::BIGINT AS fee_ppm, active
FROM peer_fee_policies
WHERE observer_id = $node_id
QUALIFY row_number() OVER (PARTITION BY scid, direction ORDER BY last_update DESC) = 1;

-- name: policies
SELECT kind, peer_id, scid, base_fee_msat, fee_ppm, min_fee_ppm, max_fee_ppm, expires_at,
       created_at, note
FROM fee_policies;

-- name: insert_decisions
INSERT INTO fee_decisions BY NAME SELECT * FROM staged;

-- name: insert_changes
INSERT INTO fee_changes BY NAME SELECT * FROM staged;

-- name: finish_change
UPDATE fee_changes SET status = $status, error = $error WHERE change_id = $change_id;

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
SELECT scid, changed_at, new_ppm, reason, change_id, predicted_benefit_msat
FROM fee_changes WHERE node_id = $node_id AND status = 'applied';

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
