-- Named queries of the advisor loop.

-- name: channel_stats
-- The node's channels in its latest snapshot at or before $as_of with their traffic since
-- $since (settled and failed-for-balance outbound, settled inbound), recent activity since
-- $idle_since, age and rebalancing spent on them; and their fee history since $since:
-- `fee_levels`, the hours, forwards, revenue and volume at each fee posted (from applied
-- fee_changes), and the current fee's own period (`fee_changed_at` is NULL if hiveops never
-- changed it). Nothing after $as_of is read, so the backtest sees what the advisor would have.
WITH latest AS (
    SELECT * FROM channel_snapshots
    WHERE node_id = $node_id
      AND taken_at = (SELECT max(taken_at) FROM node_snapshots
                      WHERE node_id = $node_id AND taken_at <= $as_of)
), outbound AS (
    SELECT out_channel AS scid,
           count(*) FILTER (WHERE status = 'settled') AS out_forwards,
           coalesce(sum(out_msat) FILTER (WHERE status = 'settled'), 0)::BIGINT AS out_msat,
           coalesce(sum(fee_msat) FILTER (WHERE status = 'settled'), 0)::BIGINT AS out_fee_msat,
           coalesce(sum(in_msat) FILTER (WHERE status = 'local_failed'), 0)::BIGINT AS failed_out_msat
    FROM forwards
    WHERE node_id = $node_id AND received_at >= $since AND received_at < $as_of
      AND out_channel IS NOT NULL
    GROUP BY 1
), recent AS (
    SELECT scid, count(*) AS recent_forwards FROM (
        SELECT in_channel AS scid FROM forwards
        WHERE node_id = $node_id AND status = 'settled' AND received_at >= $idle_since
          AND received_at < $as_of
        UNION ALL
        SELECT out_channel FROM forwards
        WHERE node_id = $node_id AND status = 'settled' AND received_at >= $idle_since
          AND received_at < $as_of
    ) GROUP BY 1
), seen AS (
    SELECT scid, min(taken_at) AS first_seen_at FROM channel_snapshots
    WHERE node_id = $node_id AND taken_at <= $as_of GROUP BY 1
), rebalanced AS (
    SELECT dest_scid AS scid, coalesce(sum(fee_msat), 0)::BIGINT AS rebalance_fee_msat
    FROM rebalance_attempts
    WHERE node_id = $node_id AND finished_at >= $since AND finished_at < $as_of
      AND fee_msat IS NOT NULL
    GROUP BY 1
), changes AS (
    SELECT c.scid, c.changed_at, c.old_fee_ppm, c.new_fee_ppm,
           lead(c.changed_at) OVER (PARTITION BY c.scid ORDER BY c.changed_at) AS next_at,
           row_number() OVER (PARTITION BY c.scid ORDER BY c.changed_at) AS nth
    FROM fee_changes c JOIN latest l USING (scid)
    WHERE c.node_id = $node_id AND c.status = 'applied' AND c.changed_at < l.taken_at
), periods AS (
    -- each fee the channel posted and when: after every applied change until the next one,
    -- before its first change at that change's old fee, and without any change at the fee it
    -- posts now, from its first snapshot on
    SELECT scid, new_fee_ppm AS fee_ppm, changed_at AS period_start, next_at AS period_end
    FROM changes
    UNION ALL
    SELECT c.scid, c.old_fee_ppm, s.first_seen_at, c.changed_at
    FROM changes c JOIN seen s USING (scid) WHERE c.nth = 1
    UNION ALL
    SELECT l.scid, l.fee_ppm, s.first_seen_at, NULL
    FROM latest l JOIN seen s USING (scid) ANTI JOIN changes c USING (scid)
), clipped AS (
    SELECT p.scid, p.fee_ppm, greatest(p.period_start, $since) AS period_start,
           coalesce(p.period_end, l.taken_at) AS period_end, p.period_end IS NULL AS is_current
    FROM periods p JOIN latest l USING (scid)
    WHERE coalesce(p.period_end, l.taken_at) > greatest(p.period_start, $since)
), traffic AS (
    SELECT p.scid, p.fee_ppm, p.is_current, p.period_start,
           (epoch(p.period_end) - epoch(p.period_start)) / 3600.0 AS hours,
           count(f.fee_msat) AS forwards,
           coalesce(sum(f.fee_msat), 0)::BIGINT AS revenue_msat,
           coalesce(sum(f.out_msat), 0)::BIGINT AS volume_msat
    FROM clipped p
    LEFT JOIN forwards f
      ON f.node_id = $node_id AND f.status = 'settled' AND f.out_channel = p.scid
     AND f.resolved_at >= p.period_start AND f.resolved_at < p.period_end
    GROUP BY ALL
), levels AS (
    SELECT scid,
           list({'fee_ppm': fee_ppm, 'hours': hours, 'forwards': forwards,
                 'revenue_msat': revenue_msat, 'volume_msat': volume_msat} ORDER BY fee_ppm)
               AS fee_levels
    FROM (
        SELECT scid, fee_ppm, sum(hours) AS hours, sum(forwards)::BIGINT AS forwards,
               sum(revenue_msat)::BIGINT AS revenue_msat, sum(volume_msat)::BIGINT AS volume_msat
        FROM traffic GROUP BY ALL
    )
    GROUP BY scid
), current_fee AS (
    SELECT scid, period_start AS fee_since, hours AS fee_hours, forwards AS fee_forwards,
           revenue_msat AS fee_revenue_msat
    FROM traffic WHERE is_current
), last_change AS (
    SELECT scid, max(changed_at) AS fee_changed_at FROM changes GROUP BY 1
)
SELECT l.scid, l.peer_id, l.is_fleet, l.capacity_msat, l.local_msat,
       coalesce(l.fee_ppm, 0)::BIGINT AS fee_ppm,
       coalesce(l.fee_base_msat, 0)::BIGINT AS base_fee_msat,
       l.state = 'CHANNELD_NORMAL' AND l.peer_connected AS usable,
       l.taken_at, s.first_seen_at,
       coalesce(o.out_forwards, 0)::BIGINT AS out_forwards,
       coalesce(o.out_msat, 0)::BIGINT AS out_msat,
       coalesce(o.out_fee_msat, 0)::BIGINT AS out_fee_msat,
       coalesce(o.failed_out_msat, 0)::BIGINT AS failed_out_msat,
       coalesce(r.recent_forwards, 0)::BIGINT AS recent_forwards,
       coalesce(b.rebalance_fee_msat, 0)::BIGINT AS rebalance_fee_msat,
       lv.fee_levels, lc.fee_changed_at,
       coalesce(cf.fee_hours, 0.0) AS fee_hours,
       coalesce(cf.fee_forwards, 0)::BIGINT AS fee_forwards,
       coalesce(cf.fee_revenue_msat, 0)::BIGINT AS fee_revenue_msat
FROM latest l
LEFT JOIN outbound o USING (scid)
LEFT JOIN recent r USING (scid)
LEFT JOIN seen s USING (scid)
LEFT JOIN rebalanced b USING (scid)
LEFT JOIN levels lv USING (scid)
LEFT JOIN last_change lc USING (scid)
LEFT JOIN current_fee cf USING (scid)
ORDER BY l.scid;

-- name: peer_policies
-- Each channel direction's latest gossip as of $as_of.
SELECT scid, direction, last_update, source_id, peer_id, is_ours, base_fee_msat,
       fee_ppm::BIGINT AS fee_ppm, active
FROM peer_fee_policies
WHERE observer_id = $node_id AND last_update <= epoch($as_of)
QUALIFY row_number() OVER (PARTITION BY scid, direction ORDER BY last_update DESC) = 1;

-- name: fee_policies
SELECT kind, peer_id, scid, base_fee_msat, fee_ppm, min_fee_ppm, max_fee_ppm, expires_at,
       created_at, note
FROM fee_policies;

-- name: node_economics
-- Latest snapshot's capacity and on-chain funds, 30 days of routing revenue, current peers.
SELECT s.node_id, s.capacity_msat, s.onchain_msat, s.taken_at,
       (SELECT coalesce(sum(fee_msat), 0)::BIGINT FROM forwards
        WHERE node_id = $node_id AND status = 'settled' AND resolved_at >= $since) AS revenue_30d_msat,
       (SELECT coalesce(list(DISTINCT peer_id), []) FROM channel_latest
        WHERE node_id = $node_id AND state NOT IN ('ONCHAIN', 'CLOSED')) AS peers
FROM node_snapshots s
WHERE s.node_id = $node_id
ORDER BY s.taken_at DESC
LIMIT 1;

-- name: fleet_node_ids
SELECT node_id FROM nodes WHERE is_fleet;

-- name: calibration_samples
SELECT opportunity_type, decided_at, measured_at, method, raw_estimate_msat,
       predicted_benefit_msat, actual_benefit_msat
FROM advisor_calibration
WHERE decided_at < $until AND measured_at <= $until;

-- name: unscored_fee_changes
-- Applied fee changes of the node since $since that the advisor has not scored yet.
SELECT c.change_id, c.scid, c.changed_at, c.old_fee_ppm, c.new_fee_ppm
FROM fee_changes c
ANTI JOIN advisor_fee_backtests b USING (change_id)
WHERE c.node_id = $node_id AND c.status = 'applied' AND c.changed_at >= $since
  AND c.changed_at <= $until
ORDER BY c.changed_at, c.scid;

-- name: insert_backtests
INSERT OR IGNORE INTO advisor_fee_backtests BY NAME SELECT * FROM staged;

-- name: backtest_samples
-- The scored fee changes whose outcome is measured, as calibration samples; a change an
-- advisor decision was linked to is that decision's sample already (advisor_calibration).
SELECT 'fee' AS opportunity_type, b.changed_at AS decided_at, o.measured_at, o.method,
       b.raw_estimate_msat, o.actual_benefit_msat
FROM advisor_fee_backtests b
JOIN fee_outcomes o USING (change_id)
WHERE o.status = 'measured' AND b.changed_at < $until AND o.measured_at <= $until
  AND b.change_id NOT IN (
      SELECT linked_action_id FROM advisor_decisions
      WHERE opportunity_type = 'fee' AND linked_action_id IS NOT NULL);

-- name: rejections
SELECT opportunity_type, target, answered_at, answer_reason
FROM advisor_decisions
WHERE state = 'rejected';

-- name: answers
-- Decisions an operator answered since $since (for the rejection rate).
SELECT opportunity_type, state
FROM advisor_decisions
WHERE answered_at IS NOT NULL AND answered_at >= $since;

-- name: open_keys
-- (type, target) pairs that already have a live decision: nothing is proposed twice.
SELECT DISTINCT opportunity_type, target
FROM advisor_decisions
WHERE (state IN ('proposed', 'auto_applied', 'pending_approval') AND expires_at > $now)
   OR (state = 'approved' AND execution_result IS NULL);

-- name: alerted_keys
SELECT DISTINCT json_extract_string(details, '$.key') AS key
FROM alerts
WHERE loop = 'advisor' AND json_extract_string(details, '$.key') IS NOT NULL;

-- name: insert_decisions
INSERT OR IGNORE INTO advisor_decisions BY NAME SELECT * FROM staged;

-- name: expire_decisions
-- Open decisions past their expiry: approvals nobody answered, auto moves no loop carried out.
UPDATE advisor_decisions SET state = 'expired'
WHERE state IN ('proposed', 'auto_applied', 'pending_approval') AND expires_at <= $now
RETURNING decision_id, opportunity_type, mode;

-- name: link_fee_changes
-- Fee moves are carried out by the fees loop: link the first applied change on the same
-- channel, in the same direction, within the decision's life. An auto decision becomes
-- executed; a proposed one (below the bar) keeps its state but is still a calibration sample:
-- its prediction was about exactly that move. Run before expire_decisions.
UPDATE advisor_decisions d
SET state = CASE WHEN d.state = 'auto_applied' THEN 'executed' ELSE d.state END,
    linked_action_id = m.change_id,
    executed_at = CASE WHEN d.state = 'auto_applied' THEN m.changed_at END,
    execution_result = 'fees loop applied ' || m.old_fee_ppm || '->' || m.new_fee_ppm || ' ppm'
FROM (
    SELECT d.decision_id, c.change_id, c.changed_at, c.old_fee_ppm, c.new_fee_ppm
    FROM advisor_decisions d
    JOIN fee_changes c
      ON c.node_id = d.node_id AND c.scid = d.target AND c.status = 'applied'
     AND c.changed_at >= d.decided_at AND c.changed_at < d.expires_at
     AND sign(c.new_fee_ppm - c.old_fee_ppm) = sign(
         json_extract(d.action_params, '$.new_fee_ppm')::BIGINT
         - json_extract(d.action_params, '$.old_fee_ppm')::BIGINT)
    WHERE d.opportunity_type = 'fee' AND d.state IN ('auto_applied', 'proposed')
      AND d.linked_action_id IS NULL
    QUALIFY row_number() OVER (PARTITION BY d.decision_id ORDER BY c.changed_at) = 1
) m
WHERE d.decision_id = m.decision_id
RETURNING d.decision_id;

-- name: link_rebalance_attempts
UPDATE advisor_decisions d
SET state = CASE WHEN d.state = 'auto_applied' THEN 'executed' ELSE d.state END,
    linked_action_id = m.attempt_id,
    executed_at = CASE WHEN d.state = 'auto_applied' THEN m.proposed_at END,
    execution_result = 'rebalance loop attempt ' || m.state
FROM (
    SELECT d.decision_id, a.attempt_id, a.proposed_at, a.state
    FROM advisor_decisions d
    JOIN rebalance_attempts a
      ON a.node_id = d.node_id AND a.dest_scid = d.target AND a.state <> 'dry_run'
     AND a.proposed_at >= d.decided_at AND a.proposed_at < d.expires_at
    WHERE d.opportunity_type = 'rebalance' AND d.state IN ('auto_applied', 'proposed')
      AND d.linked_action_id IS NULL
    QUALIFY row_number() OVER (PARTITION BY d.decision_id ORDER BY a.proposed_at) = 1
) m
WHERE d.decision_id = m.decision_id
RETURNING d.decision_id;

-- name: decision
SELECT * FROM advisor_decisions WHERE decision_id = $decision_id;

-- name: find_decision
-- A decision by its id or a unique prefix of it (operators type the first characters).
SELECT * FROM advisor_decisions WHERE starts_with(decision_id, $prefix) LIMIT 2;

-- name: mark_awaiting
UPDATE advisor_decisions SET approval_run_id = $run_id
WHERE decision_id = $decision_id AND state = 'pending_approval';

-- name: prior_rejections
SELECT count(*) AS n FROM advisor_decisions
WHERE opportunity_type = $opportunity_type AND target = $target AND state = 'rejected';

-- name: answer
-- Only a pending decision takes an answer: a second answer (CLI and UI both) changes nothing.
UPDATE advisor_decisions
SET state = $state, answered_at = $answered_at, answered_by = $answered_by,
    answer_reason = $answer_reason, cooldown_until = $cooldown_until
WHERE decision_id = $decision_id AND state = 'pending_approval'
RETURNING decision_id;

-- name: start_execution
-- Written before the node is called: a decision is acted on at most once.
UPDATE advisor_decisions SET execution_started_at = $at, execution_result = 'started'
WHERE decision_id = $decision_id AND state = 'approved' AND execution_started_at IS NULL
RETURNING decision_id;

-- name: finish_execution
UPDATE advisor_decisions
SET state = $state, executed_at = $executed_at, execution_result = $result
WHERE decision_id = $decision_id;

-- name: approved_unexecuted
SELECT decision_id FROM advisor_decisions
WHERE state = 'approved' AND execution_started_at IS NULL
ORDER BY answered_at;

-- name: pending
SELECT decision_id, decided_at, opportunity_type, node_id, target, action,
       predicted_benefit_msat, confidence, expires_at, approval_run_id, benefit_reason
FROM advisor_decisions
WHERE state = 'pending_approval'
ORDER BY decided_at, decision_id;

-- name: recent
SELECT decision_id, decided_at, opportunity_type, target, mode, state,
       predicted_benefit_msat, answer_reason, execution_result
FROM advisor_decisions
ORDER BY decided_at DESC, decision_id
LIMIT $limit;

-- name: summary
-- The advisor's record per type and state (demo and reports).
SELECT opportunity_type, mode, state, count(*) AS decisions,
       count(*) FILTER (WHERE predicted_benefit_msat = 0) AS zero_benefit,
       sum(predicted_benefit_msat)::BIGINT AS predicted_msat
FROM advisor_decisions
GROUP BY ALL
ORDER BY ALL;
