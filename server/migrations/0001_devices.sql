CREATE TABLE devices (
    site TEXT NOT NULL,
    device_token TEXT NOT NULL,
    user_id TEXT NOT NULL,
    name TEXT NOT NULL,
    session_token TEXT NOT NULL UNIQUE,
    enable_download_effect INTEGER NOT NULL,
    phone_number TEXT,
    activated_at BIGINT NOT NULL,
    PRIMARY KEY (site, device_token)
);
