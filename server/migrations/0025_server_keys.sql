-- Keys the server makes for itself at first need (e.g. the access codes' HMAC key).
CREATE TABLE server_keys (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
