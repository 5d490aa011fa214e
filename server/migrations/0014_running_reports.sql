-- Crash-safe billing: the end report (6, 13, 29, 33) each running call,
-- live and viewing would send if the server stopped now, replaced at
-- every checkpoint; moved into the outbox when the service ends, or at
-- the next start when the server died.
CREATE TABLE running_reports (
    report_key TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    site TEXT NOT NULL,
    url TEXT NOT NULL,
    body TEXT NOT NULL,
    reason INTEGER,
    recorded_at BIGINT NOT NULL
);
