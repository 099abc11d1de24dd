-- Rebalance loop (issue #4): attempts, reservations, skips, the daily budget ledger, outcomes.

-- One row per sling attempt, written (state 'reserved') in the same transaction as its
-- reservation, before sling is called; updated as the job runs and ends.
CREATE TABLE rebalance_attempts (
    attempt_id             VARCHAR PRIMARY KEY,
    run_id                 VARCHAR NOT NULL,
    node_id                VARCHAR NOT NULL,
    dest_scid              VARCHAR NOT NULL,
    purpose                VARCHAR NOT NULL CHECK (purpose IN ('ev', 'fleet_assist')),
    assistance_id          VARCHAR,
    amount_msat            BIGINT NOT NULL CHECK (amount_msat > 0),
    maxppm                 INTEGER NOT NULL CHECK (maxppm >= 0),
    max_cost_msat          BIGINT NOT NULL CHECK (max_cost_msat >= 0),
    candidates             VARCHAR NOT NULL,
    outppm                 INTEGER NOT NULL,
    expected_revenue_msat  BIGINT NOT NULL,
    opportunity_cost_msat  BIGINT NOT NULL,
    predicted_benefit_msat BIGINT NOT NULL,
    exempt_from_ev         BOOLEAN NOT NULL,
    horizon_s              INTEGER NOT NULL,
    dry_run                BOOLEAN NOT NULL,
    proposed_at            TIMESTAMPTZ NOT NULL,
    started_at             TIMESTAMPTZ,
    finished_at            TIMESTAMPTZ,
    state                  VARCHAR NOT NULL CHECK (state IN
        ('reserved', 'running', 'succeeded', 'failed', 'released', 'dry_run')),
    fee_msat               BIGINT CHECK (fee_msat >= 0),
    fee_is_estimate        BOOLEAN NOT NULL DEFAULT false,
    moved_msat             BIGINT NOT NULL DEFAULT 0 CHECK (moved_msat >= 0),
    source_scid            VARCHAR,
    failure_reason         VARCHAR,
    -- sling-stats totals for dest_scid just before sling-once: the fee and amount of this
    -- attempt are the difference at reconcile time (sling keeps only cumulative stats)
    sling_before           VARCHAR,
    inputs                 VARCHAR NOT NULL
);
CREATE INDEX rebalance_attempts_node ON rebalance_attempts (node_id, proposed_at);

-- Budget held for an attempt's worst-case fee: open until settled (fee paid) or released.
CREATE TABLE rebalance_reservations (
    attempt_id     VARCHAR PRIMARY KEY,
    node_id        VARCHAR NOT NULL,
    scid           VARCHAR,
    max_fee_msat   BIGINT NOT NULL CHECK (max_fee_msat >= 0),
    reserved_at    TIMESTAMPTZ NOT NULL,
    closed_at      TIMESTAMPTZ,
    closed_as      VARCHAR CHECK (closed_as IN ('settled', 'released')),
    fee_msat       BIGINT,
    fee_is_estimate BOOLEAN NOT NULL DEFAULT false,
    close_reason   VARCHAR,
    CHECK ((closed_at IS NULL) = (closed_as IS NULL))
);

-- Every channel the planner looked at and left alone, with the closed-enum reason.
CREATE TABLE rebalance_skips (
    run_id     VARCHAR NOT NULL,
    node_id    VARCHAR NOT NULL,
    scid       VARCHAR NOT NULL,
    decided_at TIMESTAMPTZ NOT NULL,
    reason     VARCHAR NOT NULL,
    detail     VARCHAR NOT NULL,
    inputs     VARCHAR NOT NULL
);
CREATE INDEX rebalance_skips_node ON rebalance_skips (node_id, decided_at);

-- The daily budget per node, rewritten from facts on every rebalance run (never all zero:
-- earned and spent come from forwards, attempts and on-chain costs).
CREATE TABLE budget_ledger (
    node_id              VARCHAR NOT NULL,
    day                  DATE NOT NULL,
    budget_msat          BIGINT NOT NULL,
    fixed_budget_msat    BIGINT NOT NULL,
    earnings_budget_msat BIGINT NOT NULL,
    earned_msat          BIGINT NOT NULL,
    trailing_earned_msat BIGINT NOT NULL,
    rebalance_spent_msat BIGINT NOT NULL,
    onchain_spent_msat   BIGINT NOT NULL,
    reserved_msat        BIGINT NOT NULL,
    updated_at           TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (node_id, day)
);

-- What each finished rebalance earned back against its prediction.
CREATE TABLE rebalance_outcomes (
    attempt_id             VARCHAR NOT NULL,
    window_s               INTEGER NOT NULL CHECK (window_s > 0),
    node_id                VARCHAR NOT NULL,
    dest_scid              VARCHAR NOT NULL,
    finished_at            TIMESTAMPTZ NOT NULL,
    measured_at            TIMESTAMPTZ NOT NULL,
    status                 VARCHAR NOT NULL CHECK (status IN ('measured', 'insufficient_data')),
    detail                 VARCHAR NOT NULL,
    moved_msat             BIGINT NOT NULL,
    fee_paid_msat          BIGINT NOT NULL,
    revenue_msat           BIGINT,
    routed_msat            BIGINT,
    actual_benefit_msat    BIGINT,
    predicted_benefit_msat BIGINT,
    prediction_error_msat  BIGINT,
    PRIMARY KEY (attempt_id, window_s),
    CHECK ((status = 'measured') = (actual_benefit_msat IS NOT NULL))
);
