-- Disabled users and the audit trail (issue 7).

-- A disabled user cannot log in; admins disable users instead of deleting
-- them, so what they created and did stays attributed.
ALTER TABLE users ADD COLUMN disabled boolean NOT NULL DEFAULT false;

-- Who changed what, when, from which request. Append-only: the store only
-- inserts and reads entries.
CREATE TABLE audit_entries (
    id          uuid PRIMARY KEY,
    at          timestamptz NOT NULL,
    -- Users are never deleted (NO ACTION): an entry always names its actor.
    actor_id    uuid NOT NULL REFERENCES users (id),
    -- AuditAction::as_str of every AuditAction::ALL.
    action      text NOT NULL CHECK (action IN (
        'project.created', 'project.updated', 'project.archived', 'project.unarchived',
        'project.deleted', 'project.transferred',
        'member.added', 'member.role_changed', 'member.removed', 'member.left',
        'task.created', 'task.updated', 'task.deleted',
        'user.disabled', 'user.enabled', 'user.role_changed')),
    -- EntityType::as_str of every EntityType::ALL.
    entity_type text NOT NULL CHECK (entity_type IN ('project', 'member', 'task', 'user')),
    -- A task's, project's or user's id; a member's user id. No foreign key:
    -- the entity may since have been deleted.
    entity_id   uuid NOT NULL,
    -- The project the entity is in (NULL for users). No foreign key either:
    -- a deleted project's activity outlives it.
    project_id  uuid,
    -- {"field": {"from": <value>, "to": <value>}}, values JSON null,
    -- booleans, integers or strings.
    changes     jsonb NOT NULL CHECK (jsonb_typeof(changes) = 'object'),
    -- RequestId: 1-64 ASCII letters, digits, '.', '_' or '-'.
    request_id  text CHECK (request_id ~ '^[A-Za-z0-9._-]{1,64}$'),
    -- An action is about one kind of entity (AuditAction::entity_type): the
    -- action's prefix names it.
    CONSTRAINT audit_entries_action_matches_entity
        CHECK (split_part(action, '.', 1) = entity_type),
    -- Projects, members and tasks are in a project, so their entries are
    -- in its activity. (Users are in none: the domain records their entries
    -- without one, but the port does not refuse one that names a project.)
    CONSTRAINT audit_entries_project_unless_user
        CHECK (entity_type = 'user' OR project_id IS NOT NULL)
);

-- Both reads are newest first, `ORDER BY at DESC, id DESC LIMIT n` after a
-- cursor `(at, id) < ($1, $2)`: one range of one index each.
-- A project's activity (user entries, in no project, are left out).
CREATE INDEX audit_entries_activity ON audit_entries (project_id, at DESC, id DESC)
    WHERE project_id IS NOT NULL;
-- One entity's history. The entity type is needed: a member's entity id
-- is a user id, as a user's own entries' is.
CREATE INDEX audit_entries_history ON audit_entries (entity_id, entity_type, at DESC, id DESC);
-- An entity id all but determines its type. Without this the planner takes
-- the two conditions as independent, expects a long history to have a few
-- rows, and fetches and sorts all of it instead of reading a page in index
-- order.
CREATE STATISTICS audit_entries_entity (dependencies) ON entity_id, entity_type
    FROM audit_entries;
