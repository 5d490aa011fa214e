CREATE TABLE calls (
    call_token TEXT PRIMARY KEY,
    site TEXT NOT NULL,
    caller_id TEXT NOT NULL,
    callee_id TEXT NOT NULL,
    reason INTEGER,
    overview TEXT,
    created_at BIGINT NOT NULL,
    ended_at BIGINT
);
