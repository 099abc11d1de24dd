-- Every publish of the read copy (docs/WAREHOUSE.md). The row is written to the live file just
-- before it is copied, so each copy carries its own publish time and the loop run that made it;
-- a reader asks `read_copy_freshness` how old its copy is.
CREATE TABLE read_copy_publishes (
    published_at  TIMESTAMPTZ NOT NULL,
    loop          VARCHAR NOT NULL,
    run_id        VARCHAR NOT NULL,
    pid           INTEGER NOT NULL
);

CREATE VIEW read_copy_freshness AS
SELECT published_at, loop, run_id,
       epoch(now()) - epoch(published_at) AS age_s
FROM read_copy_publishes
ORDER BY published_at DESC
LIMIT 1;
