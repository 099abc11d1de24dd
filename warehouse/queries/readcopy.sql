-- Named queries of the read copy's publisher (warehouse/readcopy.py).

-- name: record_publish
INSERT INTO read_copy_publishes (published_at, loop, run_id, pid)
VALUES ($published_at, $loop, $run_id, $pid);

-- name: last_publish
SELECT published_at, loop, run_id, pid FROM read_copy_publishes
ORDER BY published_at DESC LIMIT 1;

-- name: publishes_since
SELECT count(*) AS publishes FROM read_copy_publishes WHERE published_at >= $since;

-- name: forget_publish
DELETE FROM read_copy_publishes WHERE published_at = $published_at AND pid = $pid;

-- name: run_unfinished
SELECT count(*) AS running FROM heartbeats WHERE run_id = $run_id AND status = 'running';
