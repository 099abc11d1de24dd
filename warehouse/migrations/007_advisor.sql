-- The advisor (issue #5): every decision with the inputs it saw, its prediction and who acts;
-- operators' answers and the cooldowns they start; calibration of predictions against outcomes.

CREATE TABLE advisor_decisions (
    decision_id            VARCHAR PRIMARY KEY,
    run_id                 VARCHAR NOT NULL,
    decided_at             TIMESTAMPTZ NOT NULL,
    node_id                VARCHAR NOT NULL,
    opportunity_type       VARCHAR NOT NULL CHECK (opportunity_type IN
        ('fee', 'rebalance', 'channel_open', 'channel_close', 'fleet_assistance')),
    target                 VARCHAR NOT NULL CHECK (length(target) > 0),
    action                 VARCHAR NOT NULL,
    action_params          JSON NOT NULL,
    owner_loop             VARCHAR NOT NULL CHECK (owner_loop IN ('fees', 'rebalance', 'advisor')),
    snapshot_metrics       JSON NOT NULL,
    raw_estimate_msat      BIGINT NOT NULL,
    predicted_benefit_msat BIGINT NOT NULL,
    confidence             DOUBLE NOT NULL CHECK (confidence BETWEEN 0 AND 1),
    calibration_factor     DOUBLE NOT NULL,
    -- why the prediction is what it is (and, when it is 0, why 0)
    benefit_reason         VARCHAR NOT NULL CHECK (length(benefit_reason) > 0),
    mode                   VARCHAR NOT NULL CHECK (mode IN ('auto', 'approval')),
    state                  VARCHAR NOT NULL CHECK (state IN ('proposed', 'auto_applied',
        'pending_approval', 'approved', 'rejected', 'expired', 'executed')),
    expires_at             TIMESTAMPTZ,
    prior_rejections       INTEGER NOT NULL DEFAULT 0,
    -- the operator's answer (hiveops approve/reject or the Prefect UI)
    answered_at            TIMESTAMPTZ,
    answered_by            VARCHAR,
    answer_reason          VARCHAR,
    -- set on rejection: this (type, target) is not proposed again before it
    cooldown_until         TIMESTAMPTZ,
    -- the advisor-execute flow run paused waiting for the answer, if any
    approval_run_id        VARCHAR,
    -- the owning loop's action (fee_changes.change_id, rebalance_attempts.attempt_id)
    linked_action_id       VARCHAR,
    execution_started_at   TIMESTAMPTZ,
    executed_at            TIMESTAMPTZ,
    execution_result       VARCHAR,
    CHECK (mode = 'approval' OR state NOT IN ('pending_approval', 'approved', 'rejected')),
    CHECK (state <> 'rejected' OR (answer_reason IS NOT NULL AND cooldown_until IS NOT NULL))
);

-- Predicted vs measured benefit of every advisor decision whose action has a measured outcome.
CREATE VIEW advisor_calibration AS
WITH linked AS (
    SELECT d.decision_id, o.actual_benefit_msat, o.measured_at
    FROM advisor_decisions d
    JOIN fee_outcomes o ON o.change_id = d.linked_action_id
    WHERE d.opportunity_type = 'fee' AND o.status = 'measured'
    UNION ALL
    SELECT d.decision_id, o.actual_benefit_msat, o.measured_at
    FROM advisor_decisions d
    JOIN rebalance_outcomes o ON o.attempt_id = d.linked_action_id
    WHERE d.opportunity_type = 'rebalance' AND o.status = 'measured'
)
SELECT d.decision_id, d.opportunity_type, d.node_id, d.target, d.decided_at, l.measured_at,
       d.raw_estimate_msat, d.predicted_benefit_msat, d.confidence, d.calibration_factor,
       l.actual_benefit_msat,
       d.predicted_benefit_msat - l.actual_benefit_msat AS prediction_error_msat,
       abs(d.predicted_benefit_msat - l.actual_benefit_msat) AS abs_error_msat
FROM advisor_decisions d
JOIN linked l USING (decision_id)
QUALIFY row_number() OVER (PARTITION BY d.decision_id ORDER BY l.measured_at) = 1;
