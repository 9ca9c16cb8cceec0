DROP TABLE audit_entries;
ALTER TABLE users DROP COLUMN disabled;
