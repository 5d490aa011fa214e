-- SkyWay Channel API: channels made by createChannel, and calls per month.
CREATE TABLE skyway_channels (
    id TEXT PRIMARY KEY,
    name TEXT UNIQUE,
    metadata TEXT,
    created_at BIGINT NOT NULL
);
