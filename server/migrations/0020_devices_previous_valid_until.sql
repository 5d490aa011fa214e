ALTER TABLE devices ADD COLUMN previous_valid_until BIGINT;
