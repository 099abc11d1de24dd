-- Named queries shared by every loop: heartbeats and alerts.

-- name: heartbeat_start
INSERT INTO heartbeats (run_id, loop, node, started_at, status)
VALUES ($run_id, $loop, $node, $started_at, 'running')
ON CONFLICT (run_id, loop, node) DO UPDATE SET started_at = excluded.started_at,
    status = 'running', finished_at = NULL;

-- name: heartbeat_finish
UPDATE heartbeats
SET finished_at = $finished_at, status = $status, rows_written = $rows_written,
    decisions = $decisions, detail = $detail
WHERE run_id = $run_id AND loop = $loop AND node = $node;

-- name: insert_alert
INSERT INTO alerts (alert_id, raised_at, loop, node, kind, severity, message, details)
VALUES ($alert_id, $raised_at, $loop, $node, $kind, $severity, $message, $details);

-- name: external_channel_capacities
SELECT capacity_msat // 1000 AS capacity_sat FROM channel_latest WHERE NOT is_fleet;

-- name: node_ids
SELECT name, node_id FROM nodes;
