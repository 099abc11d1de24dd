-- The fee loop: operator policies, every decision (holds included), and every change applied.

CREATE TABLE fee_policies (
    policy_id     VARCHAR PRIMARY KEY,
    kind          VARCHAR NOT NULL CHECK (kind IN ('fleet', 'static', 'passive', 'dynamic')),
    peer_id       VARCHAR,
    scid          VARCHAR,
    base_fee_msat BIGINT CHECK (base_fee_msat >= 0),
    fee_ppm       INTEGER CHECK (fee_ppm >= 0),
    min_fee_ppm   INTEGER CHECK (min_fee_ppm >= 0),
    max_fee_ppm   INTEGER CHECK (max_fee_ppm >= 1),
    expires_at    TIMESTAMPTZ,
    created_at    TIMESTAMPTZ NOT NULL,
    note          VARCHAR NOT NULL DEFAULT '',
    CHECK (peer_id IS NOT NULL OR scid IS NOT NULL),
    CHECK (kind = 'dynamic' OR (min_fee_ppm IS NULL AND max_fee_ppm IS NULL))
);

CREATE TABLE fee_decisions (
    decision_id      VARCHAR PRIMARY KEY,
    run_id           VARCHAR NOT NULL,
    node_id          VARCHAR NOT NULL,
    scid             VARCHAR NOT NULL,
    peer_id          VARCHAR NOT NULL,
    decided_at       TIMESTAMPTZ NOT NULL,
    policy_kind      VARCHAR NOT NULL,
    reason           VARCHAR NOT NULL,
    old_base_fee_msat BIGINT NOT NULL,
    old_fee_ppm      INTEGER NOT NULL,
    new_base_fee_msat BIGINT NOT NULL,
    new_fee_ppm      INTEGER NOT NULL,
    apply            BOOLEAN NOT NULL,
    dry_run          BOOLEAN NOT NULL,
    predicted_revenue_msat_per_day_before BIGINT NOT NULL,
    predicted_revenue_msat_per_day_after  BIGINT NOT NULL,
    predicted_benefit_msat BIGINT NOT NULL,
    evaluation_window_s INTEGER NOT NULL CHECK (evaluation_window_s > 0),
    inputs           JSON NOT NULL
);

-- Written before setchannel is called (status 'pending'), completed after it answered.
CREATE TABLE fee_changes (
    change_id        VARCHAR PRIMARY KEY,
    node_id          VARCHAR NOT NULL,
    scid             VARCHAR NOT NULL,
    peer_id          VARCHAR NOT NULL,
    changed_at       TIMESTAMPTZ NOT NULL,
    old_base_fee_msat BIGINT NOT NULL,
    old_fee_ppm      INTEGER NOT NULL,
    new_base_fee_msat BIGINT NOT NULL,
    new_fee_ppm      INTEGER NOT NULL,
    new_ppm          INTEGER NOT NULL,
    reason           VARCHAR NOT NULL,
    predicted_benefit_msat BIGINT NOT NULL,
    evaluation_window_s INTEGER NOT NULL,
    status           VARCHAR NOT NULL CHECK (status IN ('pending', 'applied', 'failed')),
    error            VARCHAR,
    CHECK (status <> 'failed' OR error IS NOT NULL)
);
