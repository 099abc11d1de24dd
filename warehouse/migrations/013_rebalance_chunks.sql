-- Chunks that adapt (issue #16): a pull may run several chunks of `chunk_msat` in one sling-once
-- (onceamount = amount_msat, the reservation covers all of them at maxppm), after a chunk into
-- the same channel just worked; after a liquidity failure the next chunk is halved. NULL: one
-- chunk of amount_msat (every attempt before this migration).
ALTER TABLE rebalance_attempts ADD COLUMN chunk_msat BIGINT;
