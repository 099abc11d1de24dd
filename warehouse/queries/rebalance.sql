-- Named queries of the rebalance loop.

-- name: channels
-- Channels in the node's latest snapshot only (a closed channel's last row stays in channel_latest).
-- fee_changed_at / fee_before_change_ppm: the fees loop's last applied change of the posted fee
-- (demand is priced, and after a rise measured, only since then).
WITH last_change AS (
    SELECT scid, max(changed_at) AS fee_changed_at,
           arg_max(old_fee_ppm, changed_at)::BIGINT AS fee_before_change_ppm
    FROM fee_changes
    WHERE node_id = $node_id AND status = 'applied'
    GROUP BY scid
)
SELECT c.scid, c.peer_id, c.is_fleet, c.capacity_msat, c.local_msat,
       coalesce(c.fee_ppm, 0)::BIGINT AS fee_ppm, coalesce(c.fee_base_msat, 0) AS base_fee_msat,
       c.state = 'CHANNELD_NORMAL' AND c.peer_connected AS usable, c.taken_at,
       l.fee_changed_at, l.fee_before_change_ppm
FROM channel_latest c
LEFT JOIN last_change l USING (scid)
WHERE c.node_id = $node_id
  AND c.taken_at = (SELECT max(taken_at) FROM node_snapshots WHERE node_id = $node_id);

-- name: forwards
-- Settled forwards, and local failures with the channel they asked for (unserved demand).
SELECT in_channel, out_channel, in_msat, out_msat, fee_msat, status,
       coalesce(resolved_at, received_at) AS resolved_at
FROM forwards
WHERE node_id = $node_id AND coalesce(resolved_at, received_at) >= $since
  AND (status = 'settled' OR (status = 'local_failed' AND out_channel IS NOT NULL));

-- name: onchain_costs
SELECT occurred_at, amount_msat FROM onchain_costs
WHERE node_id = $node_id AND occurred_at >= $since;

-- name: fees_paid
-- Rebalance fees by when they were paid (the attempt's end), for the ledger's spent column.
SELECT finished_at AS paid_at, fee_msat FROM rebalance_attempts
WHERE node_id = $node_id AND fee_msat IS NOT NULL AND finished_at >= $since;

-- name: finished_attempts
SELECT attempt_id, dest_scid, finished_at, state = 'succeeded' AS succeeded, source_scid,
       moved_msat, coalesce(fee_msat, 0) AS fee_msat, failure_reason, maxppm, amount_msat,
       chunk_msat
FROM rebalance_attempts
WHERE node_id = $node_id AND state IN ('succeeded', 'failed') AND finished_at >= $since;

-- name: open_reservations
SELECT r.attempt_id, r.node_id, r.max_fee_msat, r.reserved_at, r.scid,
       a.state, a.sling_before, a.dest_scid
FROM rebalance_reservations r
JOIN rebalance_attempts a USING (attempt_id)
WHERE r.node_id = $node_id AND r.closed_at IS NULL;

-- name: owned_scids
-- Channels we ever ran sling-once on: a leftover once-job there is ours to clean.
SELECT DISTINCT dest_scid AS scid FROM rebalance_attempts
WHERE node_id = $node_id AND dry_run = false;

-- name: insert_attempts
INSERT OR IGNORE INTO rebalance_attempts BY NAME SELECT * FROM staged;

-- name: insert_reservations
INSERT OR IGNORE INTO rebalance_reservations BY NAME SELECT * FROM staged;

-- name: insert_skips
INSERT INTO rebalance_skips BY NAME SELECT * FROM staged;

-- name: mark_started
UPDATE rebalance_attempts
SET sling_before = $sling_before, state = $state, started_at = $started_at
WHERE attempt_id = $attempt_id AND state = 'reserved';

-- name: finish_attempt
-- Idempotent: only an attempt still open is finished (two reconciling runs cannot book twice).
UPDATE rebalance_attempts
SET state = $state, finished_at = $finished_at, fee_msat = $fee_msat,
    fee_is_estimate = $fee_is_estimate, moved_msat = $moved_msat, source_scid = $source_scid,
    failure_reason = $failure_reason
WHERE attempt_id = $attempt_id AND state IN ('reserved', 'running');

-- name: close_reservation
UPDATE rebalance_reservations
SET closed_at = $closed_at, closed_as = $closed_as, fee_msat = $fee_msat,
    fee_is_estimate = $fee_is_estimate, close_reason = $close_reason
WHERE attempt_id = $attempt_id AND closed_at IS NULL;

-- name: upsert_ledger
INSERT OR REPLACE INTO budget_ledger BY NAME SELECT * FROM staged;

-- name: unmeasured_attempts
-- Finished attempts without an outcome: successes once their horizon has passed, failures
-- at once (they moved nothing; the row says so).
SELECT a.attempt_id, a.dest_scid, a.finished_at, a.moved_msat, coalesce(a.fee_msat, 0) AS fee_msat,
       a.predicted_benefit_msat, a.horizon_s, a.state, a.started_at
FROM rebalance_attempts a
ANTI JOIN rebalance_outcomes o USING (attempt_id)
WHERE a.node_id = $node_id
  AND (a.state = 'failed'
       OR (a.state = 'succeeded' AND a.finished_at + to_seconds(a.horizon_s) <= $now));

-- name: local_before
-- The destination's local balance in the last snapshot before the attempt started.
SELECT local_msat FROM channel_snapshots
WHERE node_id = $node_id AND scid = $scid AND taken_at <= $at
ORDER BY taken_at DESC LIMIT 1;

-- name: outcome_forwards
SELECT in_channel, out_channel, in_msat, out_msat, fee_msat, status, resolved_at
FROM forwards
WHERE node_id = $node_id AND out_channel = $scid AND status = 'settled'
  AND resolved_at >= $since AND resolved_at < $until;

-- name: insert_outcomes
INSERT OR IGNORE INTO rebalance_outcomes BY NAME SELECT * FROM staged;

-- name: list_policies
SELECT policy_id, mode, peer_id, scid, created_at, note
FROM rebalance_policies
ORDER BY policy_id;

-- name: upsert_policy
INSERT OR REPLACE INTO rebalance_policies BY NAME SELECT * FROM staged;

-- name: delete_policy
DELETE FROM rebalance_policies WHERE policy_id = $policy_id;

-- name: insert_resume
INSERT OR IGNORE INTO rebalance_resumes BY NAME SELECT * FROM staged;

-- name: latest_resumes
SELECT scid, max(resumed_at) AS resumed_at
FROM rebalance_resumes
GROUP BY scid;

-- name: channel_peers
-- scid -> peer of every channel ever snapshotted (config check resolves peer policies with it).
SELECT scid, any_value(peer_id) AS peer_id FROM channel_latest GROUP BY scid;
