-- The self-audit (issue #7): every report run and every detector's verdict, so "what did the
-- audit say on day N?" is a query, not a search through Prefect artifacts.

CREATE TABLE report_runs (
    run_id          VARCHAR PRIMARY KEY,
    generated_at    TIMESTAMPTZ NOT NULL,
    report_dir      VARCHAR NOT NULL,
    detectors       INTEGER NOT NULL CHECK (detectors >= 0),
    fired           INTEGER NOT NULL CHECK (fired >= 0),
    not_measurable  INTEGER NOT NULL CHECK (not_measurable >= 0),
    -- JSON list of the PNG files written, or the reason none were
    charts          JSON NOT NULL,
    artifact_key    VARCHAR,
    markdown        VARCHAR NOT NULL CHECK (length(markdown) > 0)
);

-- One row per detector per report run: fired, ok, or not measurable (never silently absent).
CREATE TABLE report_findings (
    run_id        VARCHAR NOT NULL,
    generated_at  TIMESTAMPTZ NOT NULL,
    detector      VARCHAR NOT NULL,
    status        VARCHAR NOT NULL CHECK (status IN ('ok', 'fired', 'not_measurable')),
    severity      VARCHAR NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    summary       VARCHAR NOT NULL CHECK (length(summary) > 0),
    action        VARCHAR NOT NULL,
    evidence      JSON NOT NULL,
    -- the alert row raised for a fired detector
    alert_id      VARCHAR,
    PRIMARY KEY (run_id, detector),
    CHECK (status <> 'fired' OR (alert_id IS NOT NULL AND length(action) > 0))
);

-- The newest report's verdicts: `hiveops sql "select * from report_latest"`.
CREATE VIEW report_latest AS
SELECT f.detector, f.status, f.severity, f.summary, f.action, f.generated_at, f.alert_id
FROM report_findings f
WHERE f.run_id = (SELECT run_id FROM report_runs ORDER BY generated_at DESC LIMIT 1)
ORDER BY CASE f.status WHEN 'fired' THEN 0 WHEN 'not_measurable' THEN 2 ELSE 1 END,
         CASE f.severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END, f.detector;
