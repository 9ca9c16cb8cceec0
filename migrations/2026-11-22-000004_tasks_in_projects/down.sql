-- Back to tasks owned by users: each task's owner is the user who created
-- it. Projects, assignees and moves are forgotten (a task created in a
-- shared project goes back to its creator alone); the Inboxes the up
-- migration made stay, as migration 3 would have made them.

ALTER TABLE tasks ADD COLUMN owner_id uuid REFERENCES users (id) ON DELETE CASCADE;
UPDATE tasks SET owner_id = created_by;
ALTER TABLE tasks ALTER COLUMN owner_id SET NOT NULL;

-- The constraints and indexes on these columns go with them.
ALTER TABLE tasks
    DROP COLUMN assignee_id,
    DROP COLUMN created_by,
    DROP COLUMN project_id;

-- The indexes as migrations 1 and 2 left them.
CREATE INDEX tasks_owner_created_at ON tasks (owner_id, created_at, id);
CREATE INDEX tasks_owner_updated_at ON tasks (owner_id, updated_at, id);
CREATE INDEX tasks_owner_due_date
    ON tasks (owner_id, (COALESCE(due_date, 'infinity'::timestamptz)), id);
CREATE INDEX tasks_owner_priority ON tasks (owner_id, priority, id);
