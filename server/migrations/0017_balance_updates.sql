-- §7.2 UpdateUserBalance, idempotent by sid: the first answer is kept.
CREATE TABLE balance_updates (
    site TEXT NOT NULL,
    sid TEXT NOT NULL,
    answer TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (site, sid)
);
