-- The outbox: a worker's claim on an entry it is delivering (M3).
ALTER TABLE outbox ADD COLUMN locked_until BIGINT;
