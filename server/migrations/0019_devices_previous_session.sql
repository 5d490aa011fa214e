ALTER TABLE devices ADD COLUMN previous_session TEXT;
