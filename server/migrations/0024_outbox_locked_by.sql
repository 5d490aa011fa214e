ALTER TABLE outbox ADD COLUMN locked_by TEXT;
