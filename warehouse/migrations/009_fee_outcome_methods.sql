-- Fee outcomes name how they were measured (issue #5): a fees loop that reprices every channel
-- daily leaves no unchanged control channel, so every outcome was insufficient_data and the
-- advisor learned nothing. An outcome now records its method (engine/fees/outcomes.py:
-- did_unchanged > did_node_trend > before_after), the trend it applied and the traffic it
-- compared, so a measured number can always be traced to its windows. Rebuilt rather than
-- altered: DuckDB cannot add the CHECKs below to an existing table.

CREATE TABLE fee_outcomes_v2 (
    change_id                   VARCHAR NOT NULL,
    window_s                    INTEGER NOT NULL CHECK (window_s > 0),
    node_id                     VARCHAR NOT NULL,
    scid                        VARCHAR NOT NULL,
    changed_at                  TIMESTAMPTZ NOT NULL,
    measured_at                 TIMESTAMPTZ NOT NULL,
    status                      VARCHAR NOT NULL CHECK (status IN ('measured', 'insufficient_data')),
    detail                      VARCHAR NOT NULL,
    method                      VARCHAR CHECK (method IN ('did_unchanged', 'did_node_trend', 'before_after')),
    -- the counterfactual: own before-rate × trend (1 for before_after); NULL only on rows
    -- measured before this migration, which did not store it
    trend                       DOUBLE,
    -- the compared traffic: [window_start, changed_at) against [changed_at, window_end)
    window_start                TIMESTAMPTZ,
    window_end                  TIMESTAMPTZ,
    treated_before_forwards     BIGINT,
    treated_after_forwards      BIGINT,
    treated_before_revenue_msat BIGINT,
    treated_after_revenue_msat  BIGINT,
    control_scids               VARCHAR NOT NULL,
    control_before_revenue_msat BIGINT,
    control_after_revenue_msat  BIGINT,
    did_revenue_msat_per_h      DOUBLE,
    did_volume_msat_per_h       DOUBLE,
    did_forwards_per_h          DOUBLE,
    actual_benefit_msat         BIGINT,
    predicted_benefit_msat      BIGINT,
    prediction_error_msat       BIGINT,
    PRIMARY KEY (change_id, window_s),
    -- never a silent 0: a number exactly when it was measured, and then with its method
    CHECK ((status = 'measured') = (actual_benefit_msat IS NOT NULL)),
    CHECK ((status = 'measured') = (method IS NOT NULL)),
    CHECK (status <> 'measured' OR (window_start < changed_at AND changed_at < window_end))
);

-- Outcomes measured before this migration were all difference in differences against unchanged
-- channels (the only method there was); their trend and windows were not stored.
INSERT INTO fee_outcomes_v2 BY NAME
SELECT change_id, window_s, node_id, scid, changed_at, measured_at, status, detail,
       CASE WHEN status = 'measured' THEN 'did_unchanged' END AS method,
       control_scids, did_revenue_msat_per_h, did_volume_msat_per_h, did_forwards_per_h,
       actual_benefit_msat, predicted_benefit_msat, prediction_error_msat
FROM fee_outcomes;

DROP VIEW advisor_calibration;
DROP VIEW fee_change_outcomes;
DROP TABLE fee_outcomes;
ALTER TABLE fee_outcomes_v2 RENAME TO fee_outcomes;

-- "Which fee changes helped?": measured outcomes with their change and method, best first.
CREATE VIEW fee_change_outcomes AS
SELECT c.node_id, c.scid, c.changed_at, c.reason, c.old_fee_ppm, c.new_fee_ppm,
       o.status, o.method, o.actual_benefit_msat, o.predicted_benefit_msat,
       o.prediction_error_msat, o.actual_benefit_msat > 0 AS helped, o.detail
FROM fee_changes c
JOIN fee_outcomes o USING (change_id)
ORDER BY o.actual_benefit_msat DESC NULLS LAST;

-- Predicted vs measured benefit of every advisor decision whose action has a measured outcome;
-- `method` says how the fee outcome was measured ('measured' for rebalances).
CREATE VIEW advisor_calibration AS
WITH linked AS (
    SELECT d.decision_id, o.actual_benefit_msat, o.measured_at, o.method
    FROM advisor_decisions d
    JOIN fee_outcomes o ON o.change_id = d.linked_action_id
    WHERE d.opportunity_type = 'fee' AND o.status = 'measured'
    UNION ALL
    SELECT d.decision_id, o.actual_benefit_msat, o.measured_at, 'measured' AS method
    FROM advisor_decisions d
    JOIN rebalance_outcomes o ON o.attempt_id = d.linked_action_id
    WHERE d.opportunity_type = 'rebalance' AND o.status = 'measured'
)
SELECT d.decision_id, d.opportunity_type, d.node_id, d.target, d.decided_at, l.measured_at,
       l.method, d.raw_estimate_msat, d.predicted_benefit_msat, d.confidence,
       d.calibration_factor, l.actual_benefit_msat,
       d.predicted_benefit_msat - l.actual_benefit_msat AS prediction_error_msat,
       abs(d.predicted_benefit_msat - l.actual_benefit_msat) AS abs_error_msat
FROM advisor_decisions d
JOIN linked l USING (decision_id)
QUALIFY row_number() OVER (PARTITION BY d.decision_id ORDER BY l.measured_at) = 1;
