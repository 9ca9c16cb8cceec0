DROP TABLE events;
ALTER TABLE projects DROP COLUMN event_seq;
