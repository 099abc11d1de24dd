-- Named queries for notices: what the previous check found, to announce only what changed.

-- name: previous_findings
SELECT detector, status, severity, summary, action, evidence::VARCHAR AS evidence
FROM report_findings
WHERE run_id = (
    SELECT run_id FROM report_runs WHERE generated_at < $before
    ORDER BY generated_at DESC LIMIT 1
)
ORDER BY detector;

