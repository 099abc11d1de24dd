-- The node's own books (issue #19): bookkeeper's income statement is the ledger; a daily P&L per
-- node and per channel read from it; the reconciliation of forwards and sling against it;
-- per-channel returns; fee/base-fee/max-HTLC changes made outside hiveops; outcomes of opens,
-- closes and external changes.

-- bkpr-listincome, as the node reported it. Collect re-reads from an hour before the last stored
-- event and replaces everything stored after that instant (CLN's window is start < t <= end),
-- so consolidated on-chain fees that grew since the last read are replaced, never doubled.
-- income_key: a hash of the event's fields and its rank among identical events in one read.
CREATE TABLE bkpr_income (
    node_id       VARCHAR NOT NULL,
    income_key    VARCHAR NOT NULL,
    occurred_at   TIMESTAMPTZ NOT NULL,
    account       VARCHAR NOT NULL,
    tag           VARCHAR NOT NULL,
    credit_msat   BIGINT NOT NULL CHECK (credit_msat >= 0),
    debit_msat    BIGINT NOT NULL CHECK (debit_msat >= 0),
    payment_id    VARCHAR,
    txid          VARCHAR,
    outpoint      VARCHAR,
    description   VARCHAR,
    collected_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (node_id, income_key)
);
CREATE INDEX bkpr_income_day ON bkpr_income (node_id, occurred_at);

-- Bookkeeper names a channel's account by its channel_id; this maps it to the scid (collect
-- writes every channel it sees, so a closed channel keeps its mapping).
CREATE TABLE bkpr_accounts (
    node_id        VARCHAR NOT NULL,
    account        VARCHAR NOT NULL,
    scid           VARCHAR,
    peer_id        VARCHAR,
    first_seen_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (node_id, account)
);

-- bkpr-channelsapy over the trailing window collect asks for (one row per account per read;
-- 'net' is bookkeeper's roll-up). CLN's APYs divide by blocks since the open, not the window.
CREATE TABLE bkpr_channel_apy (
    node_id                     VARCHAR NOT NULL,
    collected_at                TIMESTAMPTZ NOT NULL,
    window_start                TIMESTAMPTZ NOT NULL,
    account                     VARCHAR NOT NULL,
    routed_out_msat             BIGINT NOT NULL,
    routed_in_msat              BIGINT NOT NULL,
    fees_out_msat               BIGINT NOT NULL,
    fees_in_msat                BIGINT NOT NULL,
    lease_fee_paid_msat         BIGINT NOT NULL,
    lease_fee_earned_msat       BIGINT NOT NULL,
    pushed_out_msat             BIGINT NOT NULL,
    pushed_in_msat              BIGINT NOT NULL,
    our_start_balance_msat      BIGINT NOT NULL,
    channel_start_balance_msat  BIGINT NOT NULL,
    apy_total_pct               DOUBLE,
    apy_out_pct                 DOUBLE,
    PRIMARY KEY (node_id, collected_at, account)
);

-- A fee, base fee or max-HTLC that changed between two snapshots without a hiveops fee change
-- that set it: an operator's setchannel or another plugin's. The fee learner reads fee_ppm rows
-- as the level in force (fees.changes).
CREATE TABLE external_changes (
    node_id       VARCHAR NOT NULL,
    scid          VARCHAR NOT NULL,
    field         VARCHAR NOT NULL CHECK (field IN ('fee_ppm', 'fee_base_msat', 'htlc_max_msat')),
    detected_at   TIMESTAMPTZ NOT NULL,
    previous_at   TIMESTAMPTZ NOT NULL,
    old_value     BIGINT,
    new_value     BIGINT,
    PRIMARY KEY (node_id, scid, field, detected_at)
);

-- Outcomes of the actions that have no table of their own yet: channel opens (7 and 30 days),
-- closes, external changes. measured | insufficient_data (with the reason), never a silent 0.
CREATE TABLE action_outcomes (
    action_type             VARCHAR NOT NULL CHECK (action_type IN
        ('channel_open', 'channel_close', 'external_change')),
    action_id               VARCHAR NOT NULL,
    horizon_days            INTEGER NOT NULL CHECK (horizon_days > 0),
    node_id                 VARCHAR NOT NULL,
    scid                    VARCHAR,
    acted_at                TIMESTAMPTZ NOT NULL,
    measured_at             TIMESTAMPTZ NOT NULL,
    status                  VARCHAR NOT NULL CHECK (status IN ('measured', 'insufficient_data')),
    revenue_msat            BIGINT,
    cost_msat               BIGINT,
    freed_capital_msat      BIGINT,
    lost_revenue_msat       BIGINT,
    actual_benefit_msat     BIGINT,
    -- the decision's prediction pro rata to this horizon, and the horizon it was made for
    predicted_benefit_msat  BIGINT,
    decision_horizon_days   INTEGER,
    detail                  VARCHAR NOT NULL CHECK (length(detail) > 0),
    PRIMARY KEY (action_type, action_id, horizon_days)
);

-- Every bookkeeper income tag in one of three classes. Operating tags make the P&L; transfers
-- (deposits, withdrawals, invoices paid and received) move capital, not profit.
CREATE VIEW bkpr_income_classes AS
SELECT i.*,
       CASE
           WHEN tag IN ('deposit', 'withdrawal', 'invoice', 'htlc_fulfill') THEN 'transfer'
           WHEN tag IN ('routed', 'lease_fee', 'pushed', 'penalty_adj', 'journal_entry')
               AND credit_msat >= debit_msat THEN 'income'
           ELSE 'cost'
       END AS class,
       credit_msat - debit_msat AS net_msat
FROM bkpr_income i;

-- The daily P&L per node, by bookkeeper's tags (UTC days). net_msat = operating income - costs.
CREATE VIEW ledger_daily AS
SELECT i.node_id, n.name AS node_name, CAST(i.occurred_at AS DATE) AS day,
       coalesce(sum(net_msat) FILTER (WHERE tag = 'routed'), 0)::BIGINT AS routed_msat,
       coalesce(sum(net_msat) FILTER (WHERE tag = 'lease_fee'), 0)::BIGINT AS lease_fee_msat,
       coalesce(sum(net_msat) FILTER (WHERE tag = 'pushed'), 0)::BIGINT AS pushed_msat,
       coalesce(-sum(net_msat) FILTER (WHERE tag = 'onchain_fee'), 0)::BIGINT AS onchain_fee_msat,
       coalesce(-sum(net_msat) FILTER (WHERE tag = 'rebalance_fee'), 0)::BIGINT
           AS rebalance_fee_msat,
       coalesce(-sum(net_msat) FILTER (WHERE tag = 'invoice_fee'), 0)::BIGINT AS invoice_fee_msat,
       coalesce(sum(net_msat) FILTER (WHERE class <> 'transfer' AND tag NOT IN
           ('routed', 'lease_fee', 'pushed', 'onchain_fee', 'rebalance_fee', 'invoice_fee')), 0
       )::BIGINT AS other_msat,
       coalesce(sum(net_msat) FILTER (WHERE class = 'transfer'), 0)::BIGINT AS transfers_msat,
       coalesce(sum(net_msat) FILTER (WHERE class <> 'transfer'), 0)::BIGINT AS net_msat,
       count(*)::BIGINT AS events
FROM bkpr_income_classes i
LEFT JOIN nodes n USING (node_id)
GROUP BY ALL;

-- The daily P&L per channel: every operating event on a channel's account (routed income lands
-- on the channel the forward left by, rebalance fees on the channel the payment left by, on-chain
-- fees of an open or close on the channel itself, as bookkeeper attributes them).
CREATE VIEW ledger_channel_daily AS
SELECT i.node_id, a.scid, i.account, CAST(i.occurred_at AS DATE) AS day,
       coalesce(sum(net_msat) FILTER (WHERE tag = 'routed'), 0)::BIGINT AS routed_msat,
       coalesce(-sum(net_msat) FILTER (WHERE tag = 'rebalance_fee'), 0)::BIGINT
           AS rebalance_fee_msat,
       coalesce(-sum(net_msat) FILTER (WHERE tag = 'onchain_fee'), 0)::BIGINT AS onchain_fee_msat,
       coalesce(sum(net_msat) FILTER (WHERE tag NOT IN
           ('routed', 'rebalance_fee', 'onchain_fee')), 0)::BIGINT AS other_msat,
       sum(net_msat)::BIGINT AS net_msat,
       count(*) FILTER (WHERE tag = 'routed')::BIGINT AS routed_events
FROM bkpr_income_classes i
JOIN bkpr_accounts a USING (node_id, account)
WHERE class <> 'transfer'
GROUP BY ALL;

-- Forwards and sling against bookkeeper, per node and UTC day. Routed income must agree to the
-- msat. Rebalances are compared per rebalance run: bookkeeper's rebalance_fee events paid from
-- the second the run started its jobs until the next run started are that run's, against the
-- fees sling reported for its succeeded attempts (sling reports whole sats, so each attempt may
-- differ by under 1 sat: the tolerance). The run's day is the day it started; a bookkeeper
-- rebalance fee before any run is unexplained (another tool rebalanced).
CREATE VIEW ledger_reconciliation AS
WITH fwd AS (
    SELECT node_id, CAST(resolved_at AS DATE) AS day, sum(fee_msat)::BIGINT AS fee_msat,
           count(*)::BIGINT AS forwards
    FROM forwards WHERE status = 'settled' AND resolved_at IS NOT NULL GROUP BY ALL
), routed AS (
    SELECT node_id, CAST(occurred_at AS DATE) AS day,
           sum(credit_msat - debit_msat)::BIGINT AS fee_msat
    FROM bkpr_income WHERE tag = 'routed' GROUP BY ALL
), runs AS (
    SELECT node_id, run_id, date_trunc('second', min(started_at)) AS started_at,
           count(*) FILTER (WHERE state = 'succeeded')::BIGINT AS attempts,
           coalesce(sum(fee_msat) FILTER (WHERE state = 'succeeded'), 0)::BIGINT AS fee_msat
    FROM rebalance_attempts WHERE started_at IS NOT NULL
    GROUP BY node_id, run_id
), windows AS (
    SELECT *, lead(started_at) OVER (PARTITION BY node_id ORDER BY started_at) AS next_at
    FROM runs
), rfee AS (
    SELECT i.node_id, i.occurred_at, (i.debit_msat - i.credit_msat) AS fee_msat, w.run_id,
           w.started_at AS run_at
    FROM bkpr_income i
    LEFT JOIN windows w ON w.node_id = i.node_id AND i.occurred_at >= w.started_at
        AND (w.next_at IS NULL OR i.occurred_at < w.next_at)
    WHERE i.tag = 'rebalance_fee'
), sling AS (
    SELECT node_id, CAST(started_at AS DATE) AS day, sum(fee_msat)::BIGINT AS fee_msat,
           sum(attempts)::BIGINT AS attempts
    FROM runs GROUP BY ALL
), bk_rebalance AS (
    SELECT node_id, CAST(coalesce(run_at, occurred_at) AS DATE) AS day,
           sum(fee_msat)::BIGINT AS fee_msat, count(*)::BIGINT AS events,
           count(*) FILTER (WHERE run_id IS NULL)::BIGINT AS unexplained
    FROM rfee GROUP BY ALL
), days AS (
    SELECT node_id, day FROM fwd UNION SELECT node_id, day FROM routed
    UNION SELECT node_id, day FROM sling UNION SELECT node_id, day FROM bk_rebalance
)
SELECT d.node_id, d.day,
       coalesce(f.forwards, 0) AS forwards,
       coalesce(f.fee_msat, 0)::BIGINT AS forwards_fee_msat,
       coalesce(r.fee_msat, 0)::BIGINT AS bkpr_routed_msat,
       (coalesce(r.fee_msat, 0) - coalesce(f.fee_msat, 0))::BIGINT AS routed_diff_msat,
       coalesce(s.attempts, 0) AS sling_attempts,
       coalesce(s.fee_msat, 0)::BIGINT AS sling_fee_msat,
       coalesce(b.fee_msat, 0)::BIGINT AS bkpr_rebalance_fee_msat,
       coalesce(b.unexplained, 0) AS bkpr_unexplained_events,
       (coalesce(b.fee_msat, 0) - coalesce(s.fee_msat, 0))::BIGINT AS rebalance_diff_msat,
       (1000 * greatest(coalesce(s.attempts, 0), coalesce(b.events, 0)))::BIGINT
           AS rebalance_tolerance_msat
FROM days d
LEFT JOIN fwd f USING (node_id, day)
LEFT JOIN routed r USING (node_id, day)
LEFT JOIN sling s USING (node_id, day)
LEFT JOIN bk_rebalance b USING (node_id, day);

-- Return per channel and ISO week: revenue and costs on the channel against its average capacity
-- that week, annualised over the days it was seen. From bookkeeper's account for the channel when
-- the node has bookkeeper (source 'bookkeeper'); otherwise from the warehouse (settled forwards
-- out of the channel, rebalance fees of refills into it). Bookkeeper's own channelsapy figure
-- (latest read, over its own window) beside it where the node has it.
CREATE VIEW channel_returns AS
WITH cap AS (
    SELECT node_id, scid, CAST(date_trunc('week', taken_at) AS DATE) AS period_start,
           avg(capacity_msat)::BIGINT AS capacity_msat, avg(local_msat)::BIGINT AS local_msat,
           count(DISTINCT CAST(taken_at AS DATE))::BIGINT AS days_seen
    FROM channel_snapshots GROUP BY ALL
), booked AS (
    SELECT DISTINCT node_id FROM bkpr_income
), pnl AS (
    SELECT node_id, scid, CAST(date_trunc('week', day) AS DATE) AS period_start,
           sum(routed_msat)::BIGINT AS revenue_msat,
           sum(rebalance_fee_msat + onchain_fee_msat)::BIGINT AS cost_msat
    FROM ledger_channel_daily GROUP BY ALL
), fwd AS (
    SELECT node_id, out_channel AS scid, CAST(date_trunc('week', resolved_at) AS DATE)
               AS period_start,
           sum(fee_msat)::BIGINT AS revenue_msat
    FROM forwards WHERE status = 'settled' GROUP BY ALL
), sling AS (
    SELECT node_id, dest_scid AS scid, CAST(date_trunc('week', finished_at) AS DATE)
               AS period_start,
           sum(fee_msat)::BIGINT AS cost_msat
    FROM rebalance_attempts WHERE state = 'succeeded' GROUP BY ALL
), apy AS (
    SELECT a.node_id, a.scid, p.apy_total_pct, p.window_start AS bkpr_window_start,
           p.collected_at AS bkpr_collected_at
    FROM bkpr_channel_apy p JOIN bkpr_accounts a USING (node_id, account)
    QUALIFY row_number() OVER (PARTITION BY p.node_id, p.account ORDER BY p.collected_at DESC) = 1
), joined AS (
    SELECT c.*, b.node_id IS NOT NULL AS from_books,
           CASE WHEN b.node_id IS NOT NULL THEN coalesce(p.revenue_msat, 0)
                ELSE coalesce(f.revenue_msat, 0) END AS revenue_msat,
           CASE WHEN b.node_id IS NOT NULL THEN coalesce(p.cost_msat, 0)
                ELSE coalesce(s.cost_msat, 0) END AS cost_msat
    FROM cap c
    LEFT JOIN booked b USING (node_id)
    LEFT JOIN pnl p USING (node_id, scid, period_start)
    LEFT JOIN fwd f USING (node_id, scid, period_start)
    LEFT JOIN sling s USING (node_id, scid, period_start)
)
SELECT j.node_id, j.scid, j.period_start, j.days_seen, j.capacity_msat, j.local_msat,
       j.revenue_msat::BIGINT AS revenue_msat, j.cost_msat::BIGINT AS cost_msat,
       (j.revenue_msat - j.cost_msat)::BIGINT AS net_msat,
       (j.revenue_msat - j.cost_msat) * 1e6 / j.capacity_msat AS return_ppm,
       (j.revenue_msat - j.cost_msat) / j.capacity_msat * 365.0 / j.days_seen * 100
           AS annualised_pct,
       y.apy_total_pct AS bkpr_apy_total_pct, y.bkpr_window_start, y.bkpr_collected_at,
       CASE WHEN j.from_books THEN 'bookkeeper' ELSE 'warehouse' END AS source
FROM joined j
LEFT JOIN apy y USING (node_id, scid);

-- The advisor's calibration covers every type it proposes: opens (its own and the fleet's open
-- proposals) and closes are linked to their 30-day outcome in action_outcomes.
CREATE OR REPLACE VIEW advisor_calibration AS
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
    UNION ALL
    -- the longest horizon measured, pro rata to the horizon the estimate was made for (an
    -- open's 7-day row is left out: its on-chain fee is paid on day one)
    SELECT * FROM (
        SELECT d.decision_id,
               round(o.actual_benefit_msat * coalesce(o.decision_horizon_days, o.horizon_days)
                     / o.horizon_days)::BIGINT AS actual_benefit_msat,
               o.measured_at, 'measured_' || o.horizon_days || 'd' AS method
        FROM advisor_decisions d
        JOIN action_outcomes o ON o.action_id = d.decision_id
            AND o.action_type = CASE WHEN d.action = 'close' THEN 'channel_close'
                                     ELSE 'channel_open' END
        WHERE d.opportunity_type IN ('channel_open', 'channel_close', 'fleet_assistance')
          AND o.status = 'measured'
          AND (o.action_type = 'channel_close' OR o.horizon_days >= 30)
        QUALIFY row_number() OVER (PARTITION BY d.decision_id ORDER BY o.horizon_days DESC) = 1
    )
)
SELECT d.decision_id, d.opportunity_type, d.node_id, d.target, d.decided_at, l.measured_at,
       l.method, d.raw_estimate_msat, d.predicted_benefit_msat, d.confidence,
       d.calibration_factor, l.actual_benefit_msat,
       d.predicted_benefit_msat - l.actual_benefit_msat AS prediction_error_msat,
       abs(d.predicted_benefit_msat - l.actual_benefit_msat) AS abs_error_msat
FROM advisor_decisions d
JOIN linked l USING (decision_id)
QUALIFY row_number() OVER (PARTITION BY d.decision_id ORDER BY l.measured_at) = 1;
