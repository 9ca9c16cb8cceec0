DROP INDEX tasks_owner_due_date;
CREATE INDEX tasks_owner_due_date ON tasks (owner_id, due_date, id);
