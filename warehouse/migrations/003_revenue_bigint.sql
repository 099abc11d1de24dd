-- daily_revenue sums as BIGINT msat (DuckDB widens sum(BIGINT) to HUGEINT, which shows up as
-- decimal[38,0] in polars and in `hiveops sql`).
CREATE OR REPLACE VIEW daily_revenue AS
SELECT f.node_id,
       n.name AS node_name,
       CAST(date_trunc('day', f.resolved_at) AS DATE) AS day,
       count(*) AS forwards_settled,
       sum(f.fee_msat)::BIGINT AS fees_msat,
       sum(f.out_msat)::BIGINT AS volume_msat
FROM forwards f
LEFT JOIN nodes n USING (node_id)
WHERE f.status = 'settled'
GROUP BY ALL;
