-- Fleet loop (issue #6): membership, member health, assistance and its outcomes, contribution,
-- merged fee intelligence.

-- The fleet as of the last fleet run: configured members resolved to node ids. Every loop that
-- asks "is this peer one of ours?" reads it (named query fleet.member_ids).
CREATE TABLE fleet_members (
    node_id           VARCHAR PRIMARY KEY CHECK (regexp_matches(node_id, '^0[23][0-9a-f]{64}$')),
    name              VARCHAR NOT NULL,
    is_active         BOOLEAN NOT NULL,
    tier              VARCHAR CHECK (tier IN ('critical', 'struggling', 'healthy', 'thriving')),
    health_score      DOUBLE,
    first_seen_at     TIMESTAMPTZ NOT NULL,
    last_snapshot_at  TIMESTAMPTZ,
    updated_at        TIMESTAMPTZ NOT NULL
);

-- One row per member per fleet run: the scores, the tier and the numbers they came from.
CREATE TABLE fleet_member_health (
    node_id                 VARCHAR NOT NULL,
    measured_at             TIMESTAMPTZ NOT NULL,
    run_id                  VARCHAR NOT NULL,
    name                    VARCHAR NOT NULL,
    tier                    VARCHAR NOT NULL CHECK (tier IN ('critical', 'struggling', 'healthy', 'thriving')),
    needs_help              BOOLEAN NOT NULL,
    health_score            DOUBLE NOT NULL CHECK (health_score BETWEEN 0 AND 100),
    capacity_score          DOUBLE NOT NULL,
    liquidity_out_score     DOUBLE NOT NULL,
    liquidity_in_score      DOUBLE NOT NULL,
    liquidity_score         DOUBLE NOT NULL,
    revenue_score           DOUBLE NOT NULL,
    connectivity_score      DOUBLE NOT NULL,
    capacity_msat           BIGINT NOT NULL,
    local_msat              BIGINT NOT NULL,
    external_capacity_msat  BIGINT NOT NULL,
    external_outbound_msat  BIGINT NOT NULL,
    external_inbound_msat   BIGINT NOT NULL,
    external_peers          INTEGER NOT NULL,
    fleet_channels          INTEGER NOT NULL,
    revenue_msat            BIGINT NOT NULL,
    onchain_msat            BIGINT NOT NULL,
    snapshot_taken_at       TIMESTAMPTZ NOT NULL,
    inputs                  VARCHAR NOT NULL,
    PRIMARY KEY (node_id, measured_at)
);

-- Every assistance action toward a member. liquidity_pull rows are executed by the rebalance
-- loop (rebalance_attempts.assistance_id, purpose 'fleet_assist'); channel_open_proposal rows
-- are decided by the advisor (state accepted/rejected). not_possible rows say why nothing could
-- be done and get their outcome in the same run; every row ends with an outcome.
CREATE TABLE fleet_assistance (
    assistance_id   VARCHAR PRIMARY KEY,
    run_id          VARCHAR NOT NULL,
    node_id         VARCHAR NOT NULL,
    member_name     VARCHAR NOT NULL,
    helper_node_id  VARCHAR,
    kind            VARCHAR NOT NULL CHECK (kind IN ('liquidity_pull', 'channel_open_proposal')),
    dest_scid       VARCHAR,
    source_scid     VARCHAR,
    amount_msat     BIGINT NOT NULL CHECK (amount_msat >= 0),
    max_fee_ppm     INTEGER NOT NULL CHECK (max_fee_ppm >= 0),
    reason          VARCHAR NOT NULL CHECK (length(reason) > 0),
    requested_at    TIMESTAMPTZ NOT NULL,
    state           VARCHAR NOT NULL CHECK (state IN
        ('open', 'accepted', 'rejected', 'not_possible', 'closed')),
    health_before   DOUBLE,
    tier_before     VARCHAR,
    decided_at      TIMESTAMPTZ,
    decision_note   VARCHAR,
    closed_at       TIMESTAMPTZ,
    result          VARCHAR CHECK (result IN ('helped', 'partial', 'could_not_help', 'no_longer_needed')),
    CHECK (kind <> 'liquidity_pull' OR state = 'not_possible' OR dest_scid IS NOT NULL)
);

-- What each assistance action did: one row per action, whatever happened.
CREATE TABLE fleet_assistance_outcomes (
    assistance_id       VARCHAR PRIMARY KEY,
    node_id             VARCHAR NOT NULL,
    helper_node_id      VARCHAR,
    kind                VARCHAR NOT NULL,
    closed_at           TIMESTAMPTZ NOT NULL,
    result              VARCHAR NOT NULL CHECK (result IN
        ('helped', 'partial', 'could_not_help', 'no_longer_needed')),
    detail              VARCHAR NOT NULL CHECK (length(detail) > 0),
    attempts            INTEGER NOT NULL,
    attempts_succeeded  INTEGER NOT NULL,
    moved_msat          BIGINT NOT NULL,
    fee_msat            BIGINT NOT NULL,
    health_before       DOUBLE,
    health_after        DOUBLE,
    tier_before         VARCHAR,
    tier_after          VARCHAR
);

-- One row per member per fleet run over the trailing contribution window.
CREATE TABLE fleet_contribution (
    node_id                     VARCHAR NOT NULL,
    measured_at                 TIMESTAMPTZ NOT NULL,
    run_id                      VARCHAR NOT NULL,
    name                        VARCHAR NOT NULL,
    window_start                TIMESTAMPTZ NOT NULL,
    cycles_expected             INTEGER NOT NULL,
    cycles_up                   INTEGER NOT NULL CHECK (cycles_up <= cycles_expected),
    uptime_pct                  DOUBLE,
    forwarded_for_members_msat  BIGINT NOT NULL,
    forwarded_by_members_msat   BIGINT NOT NULL,
    assist_given_msat           BIGINT NOT NULL,
    assist_received_msat        BIGINT NOT NULL,
    contribution_ratio          DOUBLE,
    PRIMARY KEY (node_id, measured_at)
);

-- Competitors' fees toward each destination peer, merged over every member's observations.
CREATE TABLE fleet_fee_intel (
    peer_id        VARCHAR NOT NULL,
    computed_at    TIMESTAMPTZ NOT NULL,
    channels       BIGINT NOT NULL,
    sources        BIGINT NOT NULL,
    observers      BIGINT,
    median_ppm     DOUBLE,
    p25_ppm        DOUBLE,
    p75_ppm        DOUBLE,
    min_ppm        BIGINT,
    max_ppm        BIGINT,
    latest_update  BIGINT,
    PRIMARY KEY (peer_id, computed_at)
);

-- "What did the fleet try for each member, and did it help?"
CREATE VIEW fleet_assistance_report AS
SELECT a.requested_at, a.member_name, a.kind, a.state, a.dest_scid, a.amount_msat,
       h.name AS helper_name, a.reason, o.result, o.detail, o.moved_msat, o.fee_msat,
       o.health_before, o.health_after, o.tier_before, o.tier_after, o.closed_at
FROM fleet_assistance a
LEFT JOIN fleet_assistance_outcomes o USING (assistance_id)
LEFT JOIN fleet_members h ON h.node_id = a.helper_node_id;
