-- Named queries of the collect loop. Staged frames are registered as `staged`.

-- name: forwards_high_water
-- The last created_index stored per node, and whether any stored forward is still in flight.
SELECT coalesce(max(created_index), 0) AS last_created_index,
       coalesce(max(updated_index), 0) AS last_updated_index,
       count(*) FILTER (WHERE status = 'offered') AS offered
FROM forwards
WHERE node_id = $node_id;

-- name: forward_at
-- The stored forward at one created_index (the index-reset check compares it with the node's).
SELECT created_index, in_channel, in_msat, received_at
FROM forwards
WHERE node_id = $node_id AND created_index = $created_index;

-- name: upsert_node
INSERT INTO nodes BY NAME SELECT * FROM staged
ON CONFLICT (node_id) DO UPDATE SET
    name = excluded.name, alias = excluded.alias, is_fleet = excluded.is_fleet,
    version = excluded.version, network = excluded.network,
    blockheight = excluded.blockheight, last_seen_at = excluded.last_seen_at;

-- name: insert_node_snapshot
INSERT OR IGNORE INTO node_snapshots BY NAME SELECT * FROM staged;

-- name: insert_channel_snapshots
INSERT OR IGNORE INTO channel_snapshots BY NAME SELECT * FROM staged;

-- name: upsert_forwards
-- A forward is replaced only by a newer version of itself (a higher updated_index).
INSERT INTO forwards BY NAME SELECT * FROM staged
ON CONFLICT (node_id, created_index) DO UPDATE SET
    updated_index = excluded.updated_index, status = excluded.status,
    out_channel = excluded.out_channel, out_htlc_id = excluded.out_htlc_id,
    out_msat = excluded.out_msat, fee_msat = excluded.fee_msat,
    failcode = excluded.failcode, failreason = excluded.failreason,
    resolved_at = excluded.resolved_at
WHERE excluded.updated_index IS NOT NULL
  AND (forwards.updated_index IS NULL OR excluded.updated_index > forwards.updated_index);

-- name: insert_peer_fee_policies
INSERT OR IGNORE INTO peer_fee_policies BY NAME SELECT * FROM staged;

-- name: income_high_water
SELECT coalesce(max(epoch(occurred_at)), 0)::BIGINT AS last_timestamp
FROM onchain_costs WHERE node_id = $node_id;

-- name: insert_onchain_costs
INSERT OR IGNORE INTO onchain_costs BY NAME SELECT * FROM staged;

-- name: count_forwards
SELECT count(*) AS n FROM forwards WHERE node_id = $node_id;

-- name: insert_new_forwards
-- The created-index pass reads rows past the stored high-water mark: plain inserts, and a row a
-- concurrent run stored first is left for the updated-index pass to refresh.
INSERT OR IGNORE INTO forwards BY NAME SELECT * FROM staged;
