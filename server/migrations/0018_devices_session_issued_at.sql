-- Session tokens (M13): `session_token` holds the SHA-256 of the current
-- token from here on; the one a rotation replaced works until
-- `previous_valid_until`.
ALTER TABLE devices ADD COLUMN session_issued_at BIGINT;
