-- Operators in control of rebalancing (issue #16): a policy per channel or peer (CLBOSS's
-- per-channel opt-out, LNDg's per-channel auto-rebalance switches), and an operator's reset of
-- a suspended channel. The breaker is rebuilt from finished attempts every run, so a reset has
-- to be a fact too: attempts finished before it no longer count against the channel.
CREATE TABLE rebalance_policies (
    policy_id  VARCHAR PRIMARY KEY,
    mode       VARCHAR NOT NULL CHECK (mode IN ('auto', 'never', 'source-only', 'sink-only')),
    peer_id    VARCHAR,
    scid       VARCHAR,
    created_at TIMESTAMPTZ NOT NULL,
    note       VARCHAR NOT NULL DEFAULT '',
    CHECK (peer_id IS NOT NULL OR scid IS NOT NULL)
);

CREATE TABLE rebalance_resumes (
    scid       VARCHAR NOT NULL,
    resumed_at TIMESTAMPTZ NOT NULL,
    note       VARCHAR NOT NULL DEFAULT '',
    PRIMARY KEY (scid, resumed_at)
);
