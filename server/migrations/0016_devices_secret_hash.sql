-- The built-in site: the SHA-256 of the secret bound to a device.
ALTER TABLE devices ADD COLUMN secret_hash TEXT;
