-- The advisor's fee estimate scored on every fee change the fees loop applied, not only on the
-- few its own decisions were linked to: on thin traffic (the audit scenario) that is 44 measured
-- outcomes in three weeks instead of 12, so the calibration learns from what the warehouse
-- already knows. Each row is the estimate as the advisor would have made it from the warehouse
-- as it stood at the change (advisor.channel_stats with $as_of = changed_at).
CREATE TABLE advisor_fee_backtests (
    change_id          VARCHAR PRIMARY KEY,
    node_id            VARCHAR NOT NULL,
    scid               VARCHAR NOT NULL,
    changed_at         TIMESTAMPTZ NOT NULL,
    old_fee_ppm        INTEGER NOT NULL,
    new_fee_ppm        INTEGER NOT NULL,
    raw_estimate_msat  BIGINT NOT NULL,
    estimate_reason    VARCHAR NOT NULL CHECK (length(estimate_reason) > 0),
    computed_at        TIMESTAMPTZ NOT NULL
);
