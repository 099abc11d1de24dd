-- Named queries for reports and the demo's summary.

-- name: demo_revenue
SELECT n.name AS node_name,
       count(f.created_index) FILTER (WHERE f.status = 'settled') AS forwards,
       coalesce(sum(f.fee_msat) FILTER (WHERE f.status = 'settled'), 0)::BIGINT AS fees_msat
FROM nodes n
LEFT JOIN forwards f USING (node_id)
GROUP BY n.name
ORDER BY n.name;

-- name: loop_freshness
SELECT loop, node, last_ok_at, runs, failed_runs
FROM loop_freshness
ORDER BY loop, node;

-- name: fee_change_summary
SELECT reason, status, count(*) AS changes
FROM fee_changes
GROUP BY ALL
ORDER BY changes DESC;

-- name: fee_outcome_summary
SELECT status, count(*) AS outcomes,
       count(*) FILTER (WHERE actual_benefit_msat > 0) AS helped,
       coalesce(sum(actual_benefit_msat), 0)::BIGINT AS net_benefit_msat
FROM fee_outcomes
GROUP BY status
ORDER BY status;
