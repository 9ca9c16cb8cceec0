-- Every task is in exactly one project (issue 7). A task had an owner; it
-- now has a project, the user who created it and, optionally, an assignee
-- who must be a member of its project. Each existing task moves into its
-- owner's Inbox, created by that owner, unassigned: what its owner saw
-- before, they still see (the Inbox is theirs alone).

ALTER TABLE tasks
    ADD COLUMN project_id  uuid,
    ADD COLUMN created_by  uuid,
    ADD COLUMN assignee_id uuid;

-- Migration 3 gave every user of its day an Inbox, and registration makes
-- one since; a user registered in between by an instance still running the
-- older code has none. Make theirs as migration 3 did (random v4 ids, the
-- Inbox and the owner's membership dating from the account), the membership
-- only for the Inboxes made here.
WITH inboxes AS (
    INSERT INTO projects (id, name, name_key, description, archived, personal, owner_id,
                          created_at, updated_at, version)
    SELECT gen_random_uuid(), 'Inbox', 'inbox', NULL, false, true, u.id,
           u.created_at, u.created_at, 1
    FROM users u
    WHERE NOT EXISTS (SELECT 1 FROM projects p WHERE p.owner_id = u.id AND p.personal)
    RETURNING id, owner_id, created_at
)
INSERT INTO project_members (project_id, user_id, role, joined_at)
SELECT id, owner_id, 'owner', created_at FROM inboxes;

-- projects_one_inbox_per_owner makes this join one row per task.
UPDATE tasks t
SET project_id = p.id,
    created_by = t.owner_id
FROM projects p
WHERE p.owner_id = t.owner_id AND p.personal;

ALTER TABLE tasks
    ALTER COLUMN project_id SET NOT NULL,
    ALTER COLUMN created_by SET NOT NULL,
    -- Deleting a project deletes its tasks.
    ADD CONSTRAINT tasks_project_id_fkey
        FOREIGN KEY (project_id) REFERENCES projects (id) ON DELETE CASCADE,
    -- Users are disabled, never deleted: the creator stays (NO ACTION, so
    -- deleting a user who created tasks is refused rather than losing them).
    ADD CONSTRAINT tasks_created_by_fkey
        FOREIGN KEY (created_by) REFERENCES users (id),
    -- The assignee is a member of the task's project, whatever writes the
    -- row: removing a member who still has tasks assigned there, or moving
    -- an assigned task to a project the assignee is not in, is refused (the
    -- domain unassigns first). A NULL assignee is not checked (MATCH
    -- SIMPLE). NO ACTION is checked at the end of the statement, after
    -- every cascade of it has run: deleting a project deletes its
    -- memberships and its tasks together without tripping over this.
    ADD CONSTRAINT tasks_assignee_is_member
        FOREIGN KEY (project_id, assignee_id)
        REFERENCES project_members (project_id, user_id);

-- The owner-based indexes go with the column.
DROP INDEX tasks_owner_created_at;
DROP INDEX tasks_owner_updated_at;
DROP INDEX tasks_owner_due_date;
DROP INDEX tasks_owner_priority;
ALTER TABLE tasks DROP COLUMN owner_id;

-- One index per sort order of the task lists, per project. A list is
-- `WHERE project_id = $1 [AND filters] [AND (key, id) > cursor] ORDER BY
-- key, id LIMIT n` (either direction): one index range scan, forward or
-- backward, for one project, and one such range per project (under a
-- LATERAL join) for the lists across a user's projects. The due-date key
-- sorts tasks without a due date last as one totally ordered value, as
-- migration 2 explains.
CREATE INDEX tasks_project_created_at ON tasks (project_id, created_at, id);
CREATE INDEX tasks_project_updated_at ON tasks (project_id, updated_at, id);
CREATE INDEX tasks_project_due_date
    ON tasks (project_id, (COALESCE(due_date, 'infinity'::timestamptz)), id);
CREATE INDEX tasks_project_priority ON tasks (project_id, priority, id);
-- A member's assigned tasks (the assignee filter, the tasks to unassign
-- when a member leaves), and the lookup behind tasks_assignee_is_member
-- when a membership is removed.
CREATE INDEX tasks_project_assignee ON tasks (project_id, assignee_id);
