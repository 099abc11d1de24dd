-- Named queries of the max-HTLC step (engine.htlcmax), run by the rebalance flow.

-- name: channels
-- The node's channels in its latest snapshot, the posted htlc max, whether the fee policy is
-- passive (channel policy over peer policy, expired ones ignored) and the last applied change.
WITH last_change AS (
    SELECT scid, max(decided_at) AS last_change_at
    FROM htlcmax_changes
    WHERE node_id = $node_id AND status = 'applied'
    GROUP BY scid
), passive AS (
    SELECT c.scid,
           coalesce(
               (SELECT arg_max(p.kind, p.created_at) FROM fee_policies p
                WHERE p.scid = c.scid AND (p.expires_at IS NULL OR p.expires_at > $now)),
               (SELECT arg_max(p.kind, p.created_at) FROM fee_policies p
                WHERE p.scid IS NULL AND p.peer_id = c.peer_id
                  AND (p.expires_at IS NULL OR p.expires_at > $now))
           ) = 'passive' AS passive
    FROM channel_latest c
    WHERE c.node_id = $node_id
)
SELECT c.scid, c.peer_id, c.is_fleet, c.state = 'CHANNELD_NORMAL' AND c.peer_connected AS usable,
       c.capacity_msat, c.local_msat, c.spendable_msat, c.htlc_max_msat AS posted_htlcmax_msat,
       coalesce(p.passive, false) AS passive, l.last_change_at, c.taken_at
FROM channel_latest c
LEFT JOIN last_change l USING (scid)
LEFT JOIN passive p USING (scid)
WHERE c.node_id = $node_id
  AND c.taken_at = (SELECT max(taken_at) FROM node_snapshots WHERE node_id = $node_id);

-- name: insert_changes
INSERT OR IGNORE INTO htlcmax_changes BY NAME SELECT * FROM staged;

-- name: finish_change
UPDATE htlcmax_changes SET status = $status, error = $error WHERE change_id = $change_id;

-- name: stale_pending
-- Changes a crashed run left pending: the snapshot says whether setchannel took effect.
SELECT h.change_id, h.new_htlcmax_msat, c.htlc_max_msat AS posted_htlcmax_msat
FROM htlcmax_changes h
LEFT JOIN channel_latest c ON c.node_id = h.node_id AND c.scid = h.scid
WHERE h.node_id = $node_id AND h.status = 'pending' AND h.decided_at < $now;
