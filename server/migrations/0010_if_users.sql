CREATE TABLE if_users (
    user_id BIGINT PRIMARY KEY,
    system_id TEXT NOT NULL,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    is_master INTEGER NOT NULL,
    perm_delivery INTEGER NOT NULL,
    perm_view INTEGER NOT NULL,
    perm_schedule INTEGER NOT NULL,
    perm_user INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (system_id, email)
);
