-- Foundation: the collect loop's facts, heartbeats and alerts.
-- Every timestamp is TIMESTAMPTZ in UTC; every amount is BIGINT msat.

CREATE TABLE nodes (
    node_id        VARCHAR PRIMARY KEY CHECK (regexp_matches(node_id, '^0[23][0-9a-f]{64}$')),
    name           VARCHAR NOT NULL,
    alias          VARCHAR,
    is_fleet       BOOLEAN NOT NULL,
    version        VARCHAR,
    network        VARCHAR,
    blockheight    INTEGER,
    first_seen_at  TIMESTAMPTZ NOT NULL,
    last_seen_at   TIMESTAMPTZ NOT NULL
);

-- One row per node per collect cycle: the financial snapshot the audit found all-zero.
CREATE TABLE node_snapshots (
    node_id              VARCHAR NOT NULL,
    taken_at             TIMESTAMPTZ NOT NULL,
    num_channels         INTEGER NOT NULL CHECK (num_channels >= 0),
    capacity_msat        BIGINT NOT NULL CHECK (capacity_msat >= 0),
    local_msat           BIGINT NOT NULL CHECK (local_msat >= 0),
    remote_msat          BIGINT NOT NULL CHECK (remote_msat >= 0),
    onchain_msat         BIGINT NOT NULL CHECK (onchain_msat >= 0),
    fees_collected_msat  BIGINT NOT NULL CHECK (fees_collected_msat >= 0),
    blockheight          INTEGER,
    PRIMARY KEY (node_id, taken_at)
);

CREATE TABLE channel_snapshots (
    node_id                  VARCHAR NOT NULL,
    taken_at                 TIMESTAMPTZ NOT NULL,
    scid                     VARCHAR NOT NULL,
    peer_id                  VARCHAR NOT NULL,
    state                    VARCHAR NOT NULL,
    peer_connected           BOOLEAN NOT NULL,
    is_fleet                 BOOLEAN NOT NULL,
    capacity_msat            BIGINT NOT NULL CHECK (capacity_msat > 0),
    local_msat               BIGINT NOT NULL CHECK (local_msat >= 0),
    spendable_msat           BIGINT,
    receivable_msat          BIGINT,
    fee_base_msat            BIGINT,
    fee_ppm                  INTEGER,
    htlc_max_msat            BIGINT,
    in_payments_fulfilled    BIGINT,
    in_fulfilled_msat        BIGINT,
    out_payments_fulfilled   BIGINT,
    out_fulfilled_msat       BIGINT,
    PRIMARY KEY (node_id, taken_at, scid),
    CHECK (local_msat <= capacity_msat)
);

CREATE TABLE forwards (
    node_id        VARCHAR NOT NULL,
    created_index  BIGINT NOT NULL CHECK (created_index > 0),
    updated_index  BIGINT,
    in_channel     VARCHAR NOT NULL,
    out_channel    VARCHAR,
    in_htlc_id     BIGINT,
    out_htlc_id    BIGINT,
    in_msat        BIGINT NOT NULL CHECK (in_msat >= 0),
    out_msat       BIGINT,
    fee_msat       BIGINT,
    status         VARCHAR NOT NULL CHECK (status IN ('offered', 'settled', 'local_failed', 'failed')),
    failcode       INTEGER,
    failreason     VARCHAR,
    received_at    TIMESTAMPTZ NOT NULL,
    resolved_at    TIMESTAMPTZ,
    style          VARCHAR,
    PRIMARY KEY (node_id, created_index)
);

-- Gossip channel_updates toward our peers: one row per (scid, direction, last_update), so a
-- policy is stored once however often collect sees it.
CREATE TABLE peer_fee_policies (
    scid            VARCHAR NOT NULL,
    direction       INTEGER NOT NULL CHECK (direction IN (0, 1)),
    last_update     BIGINT NOT NULL,
    source_id       VARCHAR NOT NULL,
    peer_id         VARCHAR NOT NULL,
    observer_id     VARCHAR NOT NULL,
    is_ours         BOOLEAN NOT NULL,
    capacity_msat   BIGINT NOT NULL,
    base_fee_msat   BIGINT NOT NULL,
    fee_ppm         INTEGER NOT NULL,
    active          BOOLEAN NOT NULL,
    htlc_max_msat   BIGINT,
    first_seen_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (scid, direction, last_update)
);

CREATE TABLE onchain_costs (
    node_id       VARCHAR NOT NULL,
    cost_key      VARCHAR NOT NULL,
    occurred_at   TIMESTAMPTZ NOT NULL,
    account       VARCHAR NOT NULL,
    tag           VARCHAR NOT NULL,
    amount_msat   BIGINT NOT NULL CHECK (amount_msat >= 0),
    txid          VARCHAR,
    outpoint      VARCHAR,
    description   VARCHAR,
    PRIMARY KEY (node_id, cost_key)
);

-- Every loop run, per configured node name ('*' for fleet-wide work): proof that it ran and what it did.
CREATE TABLE heartbeats (
    run_id        VARCHAR NOT NULL,
    loop          VARCHAR NOT NULL,
    node          VARCHAR NOT NULL,
    started_at    TIMESTAMPTZ NOT NULL,
    finished_at   TIMESTAMPTZ,
    status        VARCHAR NOT NULL CHECK (status IN ('running', 'ok', 'failed')),
    rows_written  BIGINT NOT NULL DEFAULT 0,
    decisions     INTEGER NOT NULL DEFAULT 0,
    detail        VARCHAR,
    PRIMARY KEY (run_id, loop, node)
);

CREATE TABLE alerts (
    alert_id     VARCHAR PRIMARY KEY,
    raised_at    TIMESTAMPTZ NOT NULL,
    loop         VARCHAR NOT NULL,
    node         VARCHAR,
    kind         VARCHAR NOT NULL,
    severity     VARCHAR NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    message      VARCHAR NOT NULL CHECK (length(message) > 0),
    details      JSON,
    resolved_at  TIMESTAMPTZ
);

CREATE VIEW channel_latest AS
SELECT s.*, n.name AS node_name,
       s.local_msat::DOUBLE / s.capacity_msat AS local_share
FROM channel_snapshots s
LEFT JOIN nodes n USING (node_id)
QUALIFY row_number() OVER (PARTITION BY s.node_id, s.scid ORDER BY s.taken_at DESC) = 1;

CREATE VIEW daily_revenue AS
SELECT f.node_id,
       n.name AS node_name,
       CAST(date_trunc('day', f.resolved_at) AS DATE) AS day,
       count(*) AS forwards_settled,
       sum(f.fee_msat) AS fees_msat,
       sum(f.out_msat) AS volume_msat
FROM forwards f
LEFT JOIN nodes n USING (node_id)
WHERE f.status = 'settled'
GROUP BY ALL;

CREATE VIEW loop_freshness AS
SELECT loop,
       node,
       max(finished_at) FILTER (WHERE status = 'ok') AS last_ok_at,
       max(started_at) AS last_started_at,
       count(*) FILTER (WHERE status = 'failed') AS failed_runs,
       count(*) AS runs
FROM heartbeats
GROUP BY ALL;
