CREATE TABLE outbox_attempts (
    request_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    status INTEGER NOT NULL,
    latency_ms BIGINT NOT NULL,
    error TEXT
);
