-- §6.2: a uniqueId the server has seen, and whose it was.
CREATE TABLE unique_ids (
    site TEXT NOT NULL,
    unique_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    seen_at BIGINT NOT NULL,
    PRIMARY KEY (site, unique_id)
);
