-- max-HTLC as a liquidity lever (issue #16): every change recorded like a fee change, the row
-- written before setchannel is called ('pending', or 'dry_run' when nothing is called) and
-- completed after it answered.
CREATE TABLE htlcmax_changes (
    change_id        VARCHAR PRIMARY KEY,
    run_id           VARCHAR NOT NULL,
    node_id          VARCHAR NOT NULL,
    scid             VARCHAR NOT NULL,
    peer_id          VARCHAR NOT NULL,
    decided_at       TIMESTAMPTZ NOT NULL,
    old_htlcmax_msat BIGINT,
    new_htlcmax_msat BIGINT NOT NULL CHECK (new_htlcmax_msat > 0),
    spendable_msat   BIGINT NOT NULL,
    capacity_msat    BIGINT NOT NULL,
    reason           VARCHAR NOT NULL,
    detail           VARCHAR NOT NULL,
    status           VARCHAR NOT NULL CHECK (status IN ('pending', 'applied', 'failed', 'dry_run')),
    error            VARCHAR,
    CHECK (status <> 'failed' OR error IS NOT NULL)
);
CREATE INDEX htlcmax_changes_node ON htlcmax_changes (node_id, scid, decided_at);
