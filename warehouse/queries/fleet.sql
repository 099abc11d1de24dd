-- Named queries of the fleet loop, and the ones other loops read (member_ids,
-- open_liquidity_requests, open_proposals, decide_proposal, fee_intelligence).

-- name: member_ids
-- The fleet's node ids: the single answer to "is this peer one of ours?". Before the first fleet
-- run it falls back to the nodes collect marked as fleet members.
SELECT node_id, name FROM fleet_members WHERE is_active
UNION
SELECT node_id, name FROM nodes
WHERE is_fleet AND NOT EXISTS (SELECT 1 FROM fleet_members);

-- name: first_seen
SELECT node_id, min(first_seen_at) AS first_seen_at
FROM (SELECT node_id, first_seen_at FROM fleet_members
      UNION ALL SELECT node_id, first_seen_at FROM nodes)
GROUP BY node_id;

-- name: deactivate_members
UPDATE fleet_members SET is_active = false, updated_at = $now WHERE is_active;

-- name: upsert_members
INSERT INTO fleet_members BY NAME SELECT * FROM staged
ON CONFLICT (node_id) DO UPDATE SET name = excluded.name, is_active = true,
    updated_at = excluded.updated_at;

-- name: member_channels
-- Every active member's channels as its latest snapshot saw them, with when each was first seen.
WITH latest AS (
    SELECT node_id, max(taken_at) AS taken_at FROM channel_snapshots
    WHERE node_id IN (SELECT node_id FROM fleet_members WHERE is_active)
    GROUP BY node_id
), seen AS (
    SELECT node_id, scid, min(taken_at) AS first_seen_at FROM channel_snapshots
    WHERE node_id IN (SELECT node_id FROM latest) GROUP BY ALL
)
SELECT c.node_id, c.scid, c.peer_id, c.state = 'CHANNELD_NORMAL' AS active, c.peer_connected,
       c.capacity_msat, c.local_msat, c.spendable_msat, c.receivable_msat, fs.first_seen_at
FROM channel_snapshots c
JOIN latest USING (node_id, taken_at)
JOIN seen fs USING (node_id, scid)
ORDER BY c.node_id, c.scid;

-- name: member_nodes
-- Every active member's latest node snapshot and its settled routing revenue since $since.
WITH latest AS (
    SELECT * FROM node_snapshots
    WHERE node_id IN (SELECT node_id FROM fleet_members WHERE is_active)
    QUALIFY row_number() OVER (PARTITION BY node_id ORDER BY taken_at DESC) = 1
), revenue AS (
    SELECT node_id, sum(fee_msat)::BIGINT AS revenue_msat, count(*) AS forwards_settled
    FROM forwards WHERE status = 'settled' AND resolved_at >= $since GROUP BY node_id
)
SELECT m.node_id, m.name, s.taken_at, coalesce(s.onchain_msat, 0) AS onchain_msat,
       coalesce(r.revenue_msat, 0) AS revenue_msat,
       coalesce(r.forwards_settled, 0) AS forwards_settled
FROM fleet_members m
LEFT JOIN latest s USING (node_id)
LEFT JOIN revenue r USING (node_id)
WHERE m.is_active
ORDER BY m.name;

-- name: insert_health
INSERT OR IGNORE INTO fleet_member_health BY NAME SELECT * FROM staged;

-- name: update_member_tiers
UPDATE fleet_members m
SET tier = s.tier, health_score = s.health_score, last_snapshot_at = s.snapshot_taken_at
FROM staged s WHERE m.node_id = s.node_id;

-- name: assistance_pending
-- Rows still waiting for an outcome, and every row requested since $day_start (daily bounds).
-- rebalance_skip: why the rebalance loop last left the destination alone since the request.
SELECT f.assistance_id, f.node_id, f.member_name, f.helper_node_id, f.kind, f.dest_scid,
       f.source_scid, f.amount_msat, f.max_fee_ppm, f.reason, f.requested_at, f.state,
       f.health_before, f.tier_before, f.decision_note,
       (SELECT s.reason || ': ' || s.detail FROM rebalance_skips s
        WHERE s.node_id = f.node_id AND s.scid = f.dest_scid AND s.decided_at >= f.requested_at
        ORDER BY s.decided_at DESC LIMIT 1) AS rebalance_skip
FROM fleet_assistance f
WHERE f.state IN ('open', 'accepted', 'rejected') OR f.requested_at >= $day_start;

-- name: assistance_attempts
SELECT a.assistance_id, a.state, a.moved_msat, a.fee_msat, a.failure_reason
FROM rebalance_attempts a
JOIN fleet_assistance f USING (assistance_id)
WHERE f.state IN ('open', 'accepted', 'rejected');

-- name: insert_assistance
INSERT OR IGNORE INTO fleet_assistance BY NAME SELECT * FROM staged;

-- name: insert_outcomes
INSERT OR IGNORE INTO fleet_assistance_outcomes BY NAME SELECT * FROM staged;

-- name: close_assistance
-- A refused pull (not_possible, no channel) keeps its state: it is closed, never 'closed'.
UPDATE fleet_assistance f
SET state = CASE WHEN f.state = 'not_possible' THEN f.state ELSE 'closed' END,
    closed_at = s.closed_at, result = s.result
FROM staged s WHERE f.assistance_id = s.assistance_id;

-- name: collect_cycles
-- The collect loop's cycles since $since: the cadence uptime is measured against.
SELECT DISTINCT started_at FROM heartbeats
WHERE loop = 'collect' AND started_at >= $since AND started_at <= $now
ORDER BY started_at;

-- name: member_snapshots
SELECT node_id, taken_at FROM node_snapshots
WHERE taken_at >= $since AND node_id IN (SELECT node_id FROM fleet_members WHERE is_active);

-- name: member_sightings
-- A member seen connected by another member's channel snapshot: up in that cycle.
SELECT DISTINCT peer_id, taken_at FROM channel_snapshots
WHERE taken_at >= $since AND peer_connected
  AND peer_id IN (SELECT node_id FROM fleet_members WHERE is_active)
  AND node_id IN (SELECT node_id FROM fleet_members WHERE is_active);

-- name: fleet_forwards
-- Settled forwards since $since whose incoming or outgoing peer is a member.
WITH chan AS (
    SELECT DISTINCT node_id, scid, peer_id FROM channel_snapshots
    WHERE peer_id IN (SELECT node_id FROM fleet_members WHERE is_active)
)
SELECT f.node_id, ci.peer_id AS in_peer, co.peer_id AS out_peer,
       coalesce(f.out_msat, 0) AS out_msat
FROM forwards f
LEFT JOIN chan ci ON ci.node_id = f.node_id AND ci.scid = f.in_channel
LEFT JOIN chan co ON co.node_id = f.node_id AND co.scid = f.out_channel
WHERE f.status = 'settled' AND f.resolved_at >= $since
  AND (ci.peer_id IS NOT NULL OR co.peer_id IS NOT NULL);

-- name: assist_moved
-- Liquidity moved by assistance attempts that finished since $since, per action.
SELECT f.assistance_id, f.node_id, f.helper_node_id, sum(a.moved_msat)::BIGINT AS moved_msat
FROM fleet_assistance f
JOIN rebalance_attempts a USING (assistance_id)
WHERE a.finished_at >= $since
GROUP BY ALL;

-- name: insert_contribution
INSERT OR IGNORE INTO fleet_contribution BY NAME SELECT * FROM staged;

-- name: peer_policies
SELECT scid, direction, last_update, source_id, peer_id, observer_id, is_ours,
       fee_ppm::BIGINT AS fee_ppm, active
FROM peer_fee_policies;

-- name: insert_fee_intel
INSERT OR IGNORE INTO fleet_fee_intel BY NAME SELECT * FROM staged;

-- name: fee_intelligence
-- Competitors' fees toward each destination peer, merged over every member (latest run).
SELECT peer_id, channels, sources, observers, median_ppm, p25_ppm, p75_ppm, min_ppm, max_ppm,
       latest_update, computed_at
FROM fleet_fee_intel
QUALIFY row_number() OVER (PARTITION BY peer_id ORDER BY computed_at DESC) = 1
ORDER BY peer_id;

-- name: open_liquidity_requests
-- For the rebalance loop: pulls to run on `node_id` (the member itself) into dest_scid, at most
-- amount_msat (what is still to move) and max_fee_ppm; source_scid is the fleet channel to pull
-- through. Rows with an attempt still reserved or running are left out (no double run).
SELECT f.assistance_id, f.node_id, f.dest_scid, f.source_scid, f.helper_node_id,
       (f.amount_msat - coalesce(sum(a.moved_msat), 0))::BIGINT AS amount_msat,
       f.max_fee_ppm, f.requested_at
FROM fleet_assistance f
LEFT JOIN rebalance_attempts a USING (assistance_id)
WHERE f.kind = 'liquidity_pull' AND f.state = 'open'
GROUP BY f.assistance_id, f.node_id, f.dest_scid, f.source_scid, f.helper_node_id,
         f.amount_msat, f.max_fee_ppm, f.requested_at
HAVING count(*) FILTER (WHERE a.state IN ('reserved', 'running')) = 0
   AND f.amount_msat - coalesce(sum(a.moved_msat), 0) > 0
ORDER BY f.requested_at;

-- name: open_proposals
-- For the advisor: channel opens the fleet proposes toward a critical member, shaped as the
-- action: `node_id` (the helper) runs fundchannel to `peer_id` (the member) for amount_sat.
-- Decide with fleet.decide_proposal(assistance_id, ...); the fleet loop sees the channel appear.
SELECT f.assistance_id, f.helper_node_id AS node_id, h.name AS helper_name,
       f.node_id AS peer_id, f.member_name, (f.amount_msat // 1000)::BIGINT AS amount_sat,
       f.reason, f.requested_at, f.health_before, f.tier_before
FROM fleet_assistance f
LEFT JOIN fleet_members h ON h.node_id = f.helper_node_id
WHERE f.kind = 'channel_open_proposal' AND f.state = 'open'
ORDER BY f.requested_at;

-- name: decide_proposal
-- $state: 'accepted' or 'rejected'; the fleet loop closes it with an outcome on its next run.
UPDATE fleet_assistance
SET state = $state, decided_at = $decided_at, decision_note = $note
WHERE assistance_id = $assistance_id AND kind = 'channel_open_proposal'
  AND state IN ('open', 'accepted') AND $state IN ('accepted', 'rejected');

-- name: report_members
-- One line per member: tier now, its health and contribution at the last fleet run.
WITH c AS (
    SELECT * FROM fleet_contribution
    QUALIFY row_number() OVER (PARTITION BY node_id ORDER BY measured_at DESC) = 1
), first_tier AS (
    SELECT node_id, arg_min(tier, measured_at) AS first_tier FROM fleet_member_health GROUP BY ALL
)
SELECT m.name, f.first_tier, m.tier, m.health_score, c.uptime_pct, c.contribution_ratio,
       c.forwarded_for_members_msat, c.assist_given_msat, c.assist_received_msat
FROM fleet_members m
LEFT JOIN c USING (node_id)
LEFT JOIN first_tier f USING (node_id)
WHERE m.is_active
ORDER BY m.name;

-- name: report_assistance
-- Every assistance action by member, kind and result, with the latest reason given.
SELECT member_name, kind, coalesce(result, state) AS result, count(*) AS actions,
       sum(coalesce(moved_msat, 0))::BIGINT AS moved_msat,
       arg_max(coalesce(detail, reason), requested_at) AS last_detail
FROM fleet_assistance_report
GROUP BY ALL
ORDER BY member_name, kind, result;
