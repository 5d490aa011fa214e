CREATE TABLE outbox (
    request_id TEXT PRIMARY KEY,
    site TEXT NOT NULL,
    url TEXT NOT NULL,
    body TEXT NOT NULL,
    first_try BIGINT NOT NULL,
    failures INTEGER NOT NULL,
    next_try BIGINT NOT NULL,
    state TEXT NOT NULL
);
