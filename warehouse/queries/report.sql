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

-- name: demo_pnl
-- Fleet-wide P&L over the run: routing fees earned minus rebalance fees and on-chain costs.
SELECT (SELECT coalesce(sum(fee_msat), 0) FROM forwards WHERE status = 'settled')::BIGINT
           AS revenue_msat,
       (SELECT coalesce(sum(fee_msat), 0) FROM rebalance_attempts)::BIGINT AS rebalance_fees_msat,
       (SELECT coalesce(sum(amount_msat), 0) FROM onchain_costs)::BIGINT AS onchain_msat;

-- name: rebalance_summary
SELECT purpose, state, count(*) AS attempts,
       coalesce(sum(moved_msat), 0)::BIGINT AS moved_msat,
       coalesce(sum(fee_msat), 0)::BIGINT AS fee_msat
FROM rebalance_attempts
GROUP BY ALL
ORDER BY purpose, state;

-- name: budget_summary
SELECT count(*) AS rows,
       count(*) FILTER (WHERE earned_msat > 0) AS rows_earning,
       count(*) FILTER (WHERE rebalance_spent_msat + onchain_spent_msat > 0) AS rows_spending,
       count(*) FILTER (WHERE rebalance_spent_msat > budget_msat) AS rows_over_budget,
       coalesce(sum(budget_msat), 0)::BIGINT AS budget_msat,
       coalesce(sum(rebalance_spent_msat), 0)::BIGINT AS spent_msat
FROM budget_ledger;

-- name: outcome_counts
SELECT 'fee change' AS kind, status, count(*) AS n FROM fee_outcomes GROUP BY ALL
UNION ALL
SELECT 'rebalance', status, count(*) FROM rebalance_outcomes GROUP BY ALL
UNION ALL
SELECT 'fleet assist', result, count(*) FROM fleet_assistance_outcomes GROUP BY ALL
UNION ALL
SELECT replace(action_type, '_', ' ') || ' ' || horizon_days || 'd', status, count(*)
FROM action_outcomes GROUP BY ALL
ORDER BY kind, status;
