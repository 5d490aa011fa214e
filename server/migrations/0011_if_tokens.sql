CREATE TABLE if_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
