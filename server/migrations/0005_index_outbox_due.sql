CREATE INDEX outbox_due ON outbox (state, next_try);
