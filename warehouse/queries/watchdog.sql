-- Named queries for the watchdog: loop freshness from heartbeats, and its own alert episodes.

-- name: freshness
SELECT loop, node, last_ok_at, last_started_at, failed_runs::BIGINT AS failed_runs,
       runs::BIGINT AS runs
FROM loop_freshness
ORDER BY loop, node;

-- name: first_heartbeat
SELECT min(started_at) AS first_at FROM heartbeats;

-- name: open_stale_alerts
SELECT alert_id, loop, coalesce(node, '') AS node
FROM alerts
WHERE kind = 'loop_stale' AND resolved_at IS NULL;

-- name: resolve_alert
UPDATE alerts SET resolved_at = $resolved_at WHERE alert_id = $alert_id;
