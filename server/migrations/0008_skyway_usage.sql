CREATE TABLE skyway_usage (
    month TEXT PRIMARY KEY,
    calls BIGINT NOT NULL
);
