-- ImageFlux Live Streaming API: systems (tenants), their users, login
-- tokens (hashed), schedules and each schedule's chat.
CREATE TABLE if_systems (
    system_id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    access_code_hash TEXT NOT NULL UNIQUE
);
