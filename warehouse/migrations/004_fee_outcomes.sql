-- What each fee change really did, against control channels of the same node (DiD).
CREATE TABLE fee_outcomes (
    change_id              VARCHAR NOT NULL,
    window_s               INTEGER NOT NULL CHECK (window_s > 0),
    node_id                VARCHAR NOT NULL,
    scid                   VARCHAR NOT NULL,
    changed_at             TIMESTAMPTZ NOT NULL,
    measured_at            TIMESTAMPTZ NOT NULL,
    status                 VARCHAR NOT NULL CHECK (status IN ('measured', 'insufficient_data')),
    detail                 VARCHAR NOT NULL,
    control_scids          VARCHAR NOT NULL,
    did_revenue_msat_per_h DOUBLE,
    did_volume_msat_per_h  DOUBLE,
    did_forwards_per_h     DOUBLE,
    actual_benefit_msat    BIGINT,
    predicted_benefit_msat BIGINT,
    prediction_error_msat  BIGINT,
    PRIMARY KEY (change_id, window_s),
    -- never a silent 0: a number exactly when it was measured
    CHECK ((status = 'measured') = (actual_benefit_msat IS NOT NULL))
);

-- "Which fee changes helped?": measured outcomes with their change, best first.
CREATE VIEW fee_change_outcomes AS
SELECT c.node_id, c.scid, c.changed_at, c.reason, c.old_fee_ppm, c.new_fee_ppm,
       o.status, o.actual_benefit_msat, o.predicted_benefit_msat, o.prediction_error_msat,
       o.actual_benefit_msat > 0 AS helped, o.detail
FROM fee_changes c
JOIN fee_outcomes o USING (change_id)
ORDER BY o.actual_benefit_msat DESC NULLS LAST;
