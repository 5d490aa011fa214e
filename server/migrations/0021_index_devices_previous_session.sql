CREATE INDEX devices_previous_session ON devices (previous_session);
