CREATE INDEX running_reports_owner ON running_reports (owner);
