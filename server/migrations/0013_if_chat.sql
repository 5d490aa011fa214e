CREATE TABLE if_chat (
    schedule_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    user_name TEXT NOT NULL,
    body TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (schedule_id, seq)
);
